"""What every run does around its loop (runs.py): claiming an output folder without losing anything."""
import pytest
from typer.testing import CliRunner

from i2i_unlearn.cli import app
from i2i_unlearn.errors import UserError
from i2i_unlearn.checkpoints import write_text_atomic
from i2i_unlearn.outputs import OUTPUT_MARKER, read_marker
from i2i_unlearn.runs import prepare_output_dir


def test_overwrite_never_deletes_a_folder_the_tool_did_not_write(tiny_model_dir, tmp_path):
    """`--out ~ --overwrite` (a typo away from `--out ~/no-cat`) must not delete a home folder, a dataset
    or another program's model: only folders this tool wrote can be replaced."""
    precious = tmp_path / "home"
    (precious / "photos").mkdir(parents=True)
    (precious / "photos" / "cat.png").write_bytes(b"not ours")
    (precious / "config.json").write_text("{}")   # e.g. a Hugging Face model folder
    result = CliRunner().invoke(app, ["unlearn", "--model", str(tiny_model_dir), "--forget-classes", "Cat",
                                      "--steps", "1", "--alpha", "0.25", "--out", str(precious), "--overwrite"])
    assert isinstance(result.exception, UserError) and "i2i-unlearn did not write" in str(result.exception)
    assert (precious / "photos" / "cat.png").read_bytes() == b"not ours" and (precious / "config.json").exists()


def test_overwrite_replaces_what_the_tool_wrote_and_only_that(tmp_path):
    out = prepare_output_dir(tmp_path / "out", overwrite=False, resume=False)
    assert read_marker(out) == []
    write_text_atomic(out / "stale.png", "old")           # written by the tool: listed
    write_text_atomic(out / "grids" / "forget.png", "old")
    (out / "notes.txt").write_text("the user's")           # put there by the user: not listed
    assert read_marker(out) == ["grids", "stale.png"]
    prepare_output_dir(out, overwrite=True, resume=False)
    assert not (out / "stale.png").exists() and not (out / "grids").exists()
    assert (out / "notes.txt").read_text() == "the user's" and read_marker(out) == []


@pytest.mark.parametrize("case", ["project with checkpoints", "own run.json", "planted marker", "planted listing"])
def test_overwrite_never_deletes_a_users_files(tiny_model_dir, tmp_path, case):
    """The cases of issue 30: a project folder with `checkpoints/` and code, a folder holding the user's own
    `run.json` beside a thesis, and a marker made by hand: all refused, nothing deleted."""
    folder = tmp_path / "mine"
    (folder / "src").mkdir(parents=True)
    (folder / "src" / "train.py").write_text("print('mine')")
    (folder / "thesis.tex").write_text("\\section{mine}")
    if case == "project with checkpoints":
        (folder / "checkpoints").mkdir()
        (folder / "checkpoints" / "epoch1.pt").write_bytes(b"weights")
    elif case == "own run.json":
        (folder / "run.json").write_text("{}")
    elif case == "planted marker":
        (folder / OUTPUT_MARKER).write_text("written by i2i-unlearn; --overwrite may replace this folder\n")
    else:   # a listing that reaches outside its folder or names the user's files must not delete them
        (folder / OUTPUT_MARKER).write_text('{"written_by": "i2i-unlearn", "entries": ["../mine", "/etc"]}')
    before = sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
    result = CliRunner().invoke(app, ["unlearn", "--model", str(tiny_model_dir), "--forget-classes", "Cat",
                                      "--steps", "1", "--alpha", "0.25", "--out", str(folder), "--overwrite"])
    assert isinstance(result.exception, UserError), result.output
    assert "i2i-unlearn did not write" in str(result.exception) or "does not list" in str(result.exception)
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) == before
    assert (folder / "thesis.tex").exists() and (folder / "src" / "train.py").exists()


def test_a_claimed_sub_folder_is_listed_by_the_folder_around_it(tmp_path):
    outer = prepare_output_dir(tmp_path / "demo", overwrite=False, resume=False)
    inner = prepare_output_dir(outer / "unlearned", overwrite=False, resume=False)
    write_text_atomic(inner / "model.txt", "weights")
    (inner / "mine.txt").write_text("the user's")
    assert read_marker(outer) == ["unlearned"] and read_marker(inner) == ["model.txt"]
    prepare_output_dir(outer, overwrite=True, resume=False)
    assert not (inner / "model.txt").exists() and (inner / "mine.txt").exists()


def test_resume_names_the_state_of_the_run(tmp_path):
    interrupted = prepare_output_dir(tmp_path / "interrupted", overwrite=False, resume=False)
    with pytest.raises(UserError, match="interrupted before its first checkpoint: rerun with --overwrite"):
        prepare_output_dir(interrupted, overwrite=False, resume=True)
    with pytest.raises(UserError, match="interrupted before its first checkpoint: rerun with --overwrite"):
        prepare_output_dir(interrupted, overwrite=False, resume=False)
    finished = prepare_output_dir(tmp_path / "finished", overwrite=False, resume=False)
    write_text_atomic(finished / "run.json", "{}")
    with pytest.raises(UserError, match="is complete"):
        prepare_output_dir(finished, overwrite=False, resume=True)
    with pytest.raises(UserError, match="already exists: pass --overwrite"):
        prepare_output_dir(finished, overwrite=False, resume=False)


def test_an_empty_folder_is_claimed_and_a_file_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    assert prepare_output_dir(tmp_path / "empty", overwrite=False, resume=False) == tmp_path / "empty"
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="is a file"):
        prepare_output_dir(tmp_path / "file", overwrite=True, resume=False)
    assert (tmp_path / "file").read_text() == "x"
