"""What every run does around its loop (runs.py): claiming an output folder without losing anything."""
import pytest
from typer.testing import CliRunner

from i2i_unlearn.cli import app
from i2i_unlearn.errors import UserError
from i2i_unlearn.runs import OUTPUT_MARKER, prepare_output_dir


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


def test_overwrite_replaces_what_the_tool_wrote(tmp_path):
    out = prepare_output_dir(tmp_path / "out", overwrite=False, resume=False)
    assert (out / OUTPUT_MARKER).is_file()
    (out / "stale.png").write_bytes(b"old")
    prepare_output_dir(out, overwrite=True, resume=False)
    assert not (out / "stale.png").exists() and (out / OUTPUT_MARKER).is_file()
    older = tmp_path / "older"          # an output from before the marker: its run record marks it
    older.mkdir()
    (older / "run.json").write_text("{}")
    prepare_output_dir(older, overwrite=True, resume=False)
    assert not (older / "run.json").exists()


def test_an_empty_folder_is_claimed_and_a_file_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    assert prepare_output_dir(tmp_path / "empty", overwrite=False, resume=False) == tmp_path / "empty"
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="is a file"):
        prepare_output_dir(tmp_path / "file", overwrite=True, resume=False)
    assert (tmp_path / "file").read_text() == "x"
