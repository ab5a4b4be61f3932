"""The report's Audit section (issue 11): a real audit of tiny models rendered into report.html and report.md."""
import json
import re
import shutil
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from i2i_unlearn.cli import app
from i2i_unlearn.errors import UserError
from i2i_unlearn.evaluation.audit import AuditOptions, run_audit
from i2i_unlearn.evaluation.report import write_report
from i2i_unlearn.evaluation.audit.relearn import RelearnConfig
from i2i_unlearn.unlearn import unlearn
from conftest import tiny_unlearn_config
from builders import make_results, write_results

runner = CliRunner()
MODELS = ["original", "unlearned", "retrained"]
FIGURES = ["roc.png", "grid_forget.png", "relearn.png"]

pytestmark = pytest.mark.usefixtures("one_thread")   # conftest.py


@pytest.fixture(scope="module")
def audit_dir(tiny_model_dir, tiny_evaluator_dir, tmp_path_factory) -> Path:
    """A real audit, as cheap as it gets: the tiny MAE, it unlearned 2 steps, and the tiny MAE again standing in
    for the retrained reference; 10 members and 10 non-members, 2 probe folds, 2 relearning steps."""
    torch.set_num_threads(1)   # the session's model fixtures, if set up just now, left two (one_thread restores)
    root = tmp_path_factory.mktemp("report-audit")
    unlearned = root / "unlearned"
    unlearn(tiny_model_dir, tiny_unlearn_config(steps=2), unlearned)
    out = root / "audit"
    run_audit({"original": tiny_model_dir, "unlearned": unlearned, "retrained": tiny_model_dir}, out,
              evaluator_spec=tiny_evaluator_dir, reference="retrained", forget_classes=["Cat"],
              options=AuditOptions(max_images=10, probe_folds=2),
              relearn=RelearnConfig(steps=2, images=4, batch_size=4, eval_steps=(0, 2), attack_seeds=(0, 1),
                                    quantize_bits=(8,)), progress=None)
    return out


@pytest.fixture(scope="module")
def results_path(tmp_path_factory) -> Path:
    """A hand-made results.json with its own grid_forget.png (test_report.py)."""
    folder = tmp_path_factory.mktemp("report-results")
    return write_results(folder, make_results(folder))


def _copy_audit(audit_dir: Path, to: Path, edit=None) -> Path:
    """A copy of the audit folder, its audit.json changed by `edit`."""
    shutil.copytree(audit_dir, to)
    audit = json.loads((to / "audit.json").read_text())
    if edit:
        edit(audit, to)
    (to / "audit.json").write_text(json.dumps(audit))
    return to / "audit.json"


def _row(cells: list[str]) -> str:
    return "<tr>" + "".join(f"<td>{re.escape(c) if c is not None else '[^<]*'}</td>" for c in cells) + "</tr>"


def test_report_shows_the_audits_tables_numbers_and_figures(audit_dir, results_path, tmp_path):
    audit = json.loads((audit_dir / "audit.json").read_text())
    assert list(audit["membership"]["models"]) == MODELS and audit["relearning"]
    out = tmp_path / "report"
    html_path, markdown_path = write_report(results_path, out, audit_paths=[audit_dir / "audit.json"])
    page, text = html_path.read_text(), markdown_path.read_text()

    section = page[page.index("<h2>Audit</h2>"):page.index("<h2>Outputs</h2>")]  # after the targets, before figures
    assert page.index("<h2>Targets</h2>") < page.index("<h2>Audit</h2>")
    assert "<h3>Forget Cat</h3>" in section and "the target is the retrained model&#x27;s AUC, not 0.5" in section
    markdown = text[text.index("## Audit"):text.index("## Outputs")]
    assert "### Forget Cat" in markdown
    membership, tell = audit["membership"]["models"], audit["tell"]["models"]
    reference_auc = membership["retrained"]["attack"]["auc"]
    for name in MODELS:
        attack, calibrated = membership[name]["attack"], membership[name]["calibrated"]
        label = "retrained (reference)" if name == "retrained" else name
        cells = [label, f"{attack['auc']:.3f}", f"{attack['tpr_at_0.01_fpr']:.3f}", f"{attack['tpr_at_0.05_fpr']:.3f}",
                 "–" if calibrated is None else f"{calibrated['auc']:.3f}",
                 "–" if name == "retrained" else f"{attack['auc'] - reference_auc:+.3f}"]
        assert re.search(_row(cells), section), (name, cells)
        assert "| " + " | ".join(cells) + " |" in markdown
        entry = tell[name]
        probe = entry["probe_vs_reference"]
        cells = [label, f"{entry['forget_recognition']:.3f}", f"{entry['no_object_share']:.3f}",
                 f"{entry['low_confidence_share']:.3f}",
                 "–" if probe is None else f"{probe['accuracy']:.3f} ± {probe['accuracy_std']:.3f}",
                 f"{entry['forget_fid']:.2f}",
                 "–" if probe is None else f"{probe['permutation']['p_value']:.3f}"]   # the permutation test's
        assert re.search(_row(cells), section), (name, cells)
        assert "| " + " | ".join(cells) + " |" in markdown
        for variant, result in audit["relearning"]["models"][name]["variants"].items():
            curve = [f"{point['recognition']:.3f}" for point in result["curve"]]
            paces = [f"> {audit['relearning']['config']['steps']}" if steps is None else str(steps)
                     for steps in (result["steps_to_half_original"], result["steps_to_original"])]
            outside = f"{result['band_area']:.3f}" + (" (above)" if result["above_band"] else "")
            speedups = [None] if any(entry["variants"][variant]["speedup_vs_reference"] is not None
                                     for entry in audit["relearning"]["models"].values()) else []
            assert re.search(_row([label, *curve, *paces, *speedups, outside]), section), (name, variant)
    assert membership["unlearned"]["calibrated"]["auc"] is not None   # a real calibrated score is shown
    assert "<th>AUC − retrained&#x27;s</th>" in section and "<th>probe vs retrained</th>" in section
    assert section.count("<caption>Relearning, ") == 4   # whole, encoder alone, retain images, 8 bits
    assert "<caption>Relearning, the weights quantized to 8 bits" in section and "<th>step 0</th><th>step 2</th>" in section
    # the figures: inlined in the HTML, copied beside report.md under names of their own and linked
    assert section.count("data:image/png;base64,") == 3
    assert page.count("data:image/png;base64,") == 3 + len(make_results(tmp_path)["images"])
    for name in FIGURES:
        assert (out / f"audit-{name}").read_bytes() == (audit_dir / name).read_bytes()
        assert f"](audit-{name})" in markdown
    assert (out / "grid_forget.png").read_bytes() == (results_path.parent / "grid_forget.png").read_bytes()


def test_the_speed_up_column_is_shown_only_when_a_model_has_a_speed_up(audit_dir):
    """A column of dashes only widens a relearning table past the page (hiding the band column): it is left out."""
    from i2i_unlearn.evaluation.report.audit_tables import relearn_tables
    audit = json.loads((audit_dir / "audit.json").read_text())
    for entry in audit["relearning"]["models"].values():
        for result in entry["variants"].values():
            result["speedup_vs_reference"] = None
    tables = relearn_tables(audit)
    assert not any(cell.text.startswith("speed-up") for table in tables for cell in table.header)
    assert all(len(row) == len(table.header) for table in tables for row in table.rows)
    audit["relearning"]["models"]["unlearned"]["variants"]["whole"]["speedup_vs_reference"] = 2.0
    whole = relearn_tables(audit)[0]
    column = [cell.text for cell in whole.header].index("speed-up vs retrained")
    assert [row[column].text for row in whole.rows][MODELS.index("unlearned")] == "2.00x"
    assert "outside the retrained band (mean distance)" in [cell.text for cell in whole.header]


def test_a_report_without_an_audit_has_no_audit_section(results_path, tmp_path):
    html_path, markdown_path = write_report(results_path, tmp_path)
    assert "Audit" not in html_path.read_text() and "Audit" not in markdown_path.read_text()
    assert not list(tmp_path.glob("audit-*"))


def test_two_audits_get_a_subsection_and_file_names_each(audit_dir, results_path, tmp_path):
    def dogs_without_relearning(audit, folder):
        audit["forget"]["forget_classes"] = ["Dog"]
        audit["relearning"] = None
        del audit["images"]["relearn"]
        (folder / "relearn.png").unlink()
    dogs = _copy_audit(audit_dir, tmp_path / "dogs", dogs_without_relearning)
    out = tmp_path / "report"
    result = runner.invoke(app, ["report", "--results", str(results_path), "--out", str(out),
                                 "--audit", str(audit_dir / "audit.json"), "--audit", str(dogs)])
    assert result.exit_code == 0, result.output
    page, text = (out / "report.html").read_text(), (out / "report.md").read_text()
    assert page.count("<h2>Audit</h2>") == 1 and page.index("<h3>Forget Cat</h3>") < page.index("<h3>Forget Dog</h3>")
    assert page.count("<caption>Relearning, the whole model fine-tuned (") == 1   # only the first audit has relearning
    for k, folder in ((1, audit_dir), (2, dogs.parent)):
        for name in FIGURES[:2]:
            assert (out / f"audit-{k}-{name}").read_bytes() == (folder / name).read_bytes()
            assert f"](audit-{k}-{name})" in text
    assert (out / "audit-1-relearn.png").is_file() and not (out / "audit-2-relearn.png").exists()


def test_a_report_into_the_audit_folder_links_the_audits_own_figures(audit_dir, tmp_path):
    folder = _copy_audit(audit_dir, tmp_path / "audit").parent
    results = make_results(tmp_path)
    del results["images"]["grid_forget"]   # the audit's grid_forget.png is in the folder the report goes to
    markdown = write_report(write_results(tmp_path, results), folder, audit_paths=[folder / "audit.json"])[1]
    text = markdown.read_text()
    assert all(f"]({name})" in text for name in FIGURES) and not list(folder.glob("audit-*"))


def test_a_results_figure_that_would_overwrite_the_audits_is_refused(audit_dir, results_path, tmp_path):
    folder = _copy_audit(audit_dir, tmp_path / "audit").parent
    before = (folder / "grid_forget.png").read_bytes()
    with pytest.raises(UserError, match="would both be .*grid_forget.png"):
        write_report(results_path, folder, audit_paths=[folder / "audit.json"])
    assert (folder / "grid_forget.png").read_bytes() == before and not (folder / "report.html").exists()


def _not_png(audit, folder):
    (folder / "roc.png").write_text("not a picture")


@pytest.mark.parametrize("case, message", [
    ("results", "is not an audit.json written by `i2i-unlearn audit`"),
    ("missing", "audit file not found"),
    ("no-roc", r"the audit's figure 'roc' not found: .*roc\.png"),
    ("not-png", r"the audit's figure 'roc' is not a PNG file"),
    ("outside", r"images\.grid_forget: '\.\./grid_forget\.png' is not a file name beside audit\.json"),
    ("unnamed", "names no roc figure"),
])
def test_a_wrong_audit_file_is_refused_on_one_line_and_nothing_is_written(audit_dir, results_path, tmp_path, case,
                                                                          message):
    edits = {"no-roc": lambda audit, folder: (folder / "roc.png").unlink(), "not-png": _not_png,
             "outside": lambda audit, folder: audit["images"].update(grid_forget="../grid_forget.png"),
             "unnamed": lambda audit, folder: audit["images"].pop("roc")}
    if case == "results":
        path = results_path
    elif case == "missing":
        path = tmp_path / "nowhere" / "audit.json"
    else:
        path = _copy_audit(audit_dir, tmp_path / "audit", edits[case])
    out = tmp_path / "report"
    result = runner.invoke(app, ["report", "--results", str(results_path), "--out", str(out), "--audit", str(path)])
    assert isinstance(result.exception, UserError), result.output
    assert re.search(message, str(result.exception)) and "\n" not in str(result.exception)
    assert not out.exists()


def test_the_per_example_attack_is_a_table_with_its_intervals(audit_dir, results_path, tmp_path):
    """An audit run with shadow models (audit.json's `lira`, evaluation/audit/lira.py) gets its table, each value
    with its interval over the images, in both renderings; an audit without shadows has none."""
    def with_lira(audit, _folder):
        audit["lira"] = {"shadows": {"in": 4, "out": 4}, "members": 200, "conditions": 5, "models": {
            "original": {"auc": 0.912, "tpr_at_0.01_fpr": 0.41, "tpr_at_0.001_fpr": 0.2,
                         "intervals": {"auc": [0.88, 0.94], "tpr_at_0.01_fpr": [0.33, 0.5],
                                       "tpr_at_0.001_fpr": [0.12, 0.28]}},
            "unlearned": {"auc": 0.51, "tpr_at_0.01_fpr": 0.01, "tpr_at_0.001_fpr": 0.0}}}
    path = _copy_audit(audit_dir, tmp_path / "with-lira", with_lira)
    html_path, markdown_path = write_report(results_path, tmp_path / "report", audit_paths=[path])
    page, text = html_path.read_text(), markdown_path.read_text()
    assert "Per-example membership inference (LiRA)" in page and "Per-example membership inference (LiRA)" in text
    assert "0.912 (0.880 to 0.940)" in page and "0.410 (0.330 to 0.500)" in text
    assert "0.510" in page and "4 shadow models trained with it and 4 without it" in text
    plain, _ = write_report(results_path, tmp_path / "plain", audit_paths=[audit_dir / "audit.json"])
    assert "Per-example membership inference" not in plain.read_text()
