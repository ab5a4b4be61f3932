"""results.json validation, the terminal summary and the HTML/Markdown report, on a hand-made results dict."""
import html
import json
import re
from pathlib import Path

import jsonschema
import pytest
from PIL import Image

from i2i_unlearn.errors import UserError
from i2i_unlearn.evaluation.report import write_report
from i2i_unlearn.evaluation.results import METRICS, SCHEMA_PATH, load_results, summary_table, validate_results

CLASSES = ["Bear", "Bird", "Cat", "Cow", "Dog", "Elephant", "Giraffe", "Horse", "Sheep", "Zebra"]
MODELS = ["original", "unlearned"]
REFERENCE = "mean-image fill"


def _scores(fid, kid, kid_std, is_, similarity, recognition, noise_kl, hidden_mse) -> dict:
    return {"fid": fid, "kid_mean": kid, "kid_std": kid_std, "is": is_, "similarity": similarity,
            "recognition": recognition, "noise_kl": noise_kl, "hidden_mse": hidden_mse}


def make_results(folder: Path, forget_class: str = "Cat") -> dict:
    """A valid results dict as `evaluate` writes it, with tiny PNG figures written into folder."""
    classes = [forget_class if c == "Cat" else c for c in CLASSES]
    images = {"grid_forget": "grid_forget.png", "grid_retain": "grid_retain.png", "tsne": "tsne.png"}
    for i, name in enumerate(images.values()):
        Image.new("RGB", (24, 12), (40 * i, 120, 200)).save(folder / name)
    evaluator_classes = classes + ["no object"]
    return {
        "schema_version": 1, "created": "2025-01-02T03:04:05+00:00",
        "task": {"name": "center-inpaint", "ratio": 0.5}, "seed": 0, "dataset": "animal-mnist",
        "forget_classes": [forget_class],
        "sets": {"forget": {"count": 100, "classes": [forget_class], "ids_sha256": "a" * 64},
                 "retain": {"count": 900, "classes": [c for c in classes if c != forget_class],
                            "ids_sha256": "b" * 64}},
        "evaluator": {"name": "cnn-animal-mnist", "kind": "classifier", "sha256": "c" * 64, "test_accuracy": 0.9712,
                      "class_names": evaluator_classes},
        "models": {"original": {"dir": "runs/mae", "family": "mae", "weights_sha256": "d" * 64, "method": None},
                   "unlearned": {"dir": "runs/mae-forget-cat", "family": "mae", "weights_sha256": "e" * 64,
                                 "method": "ours"}},
        "metrics": {
            "original": {"forget": _scores(12.3456, 0.01234, 0.00111, 2.345, 0.9123, 0.874, 45.678, 0.01234),
                         "retain": _scores(10.5, 0.0101, 0.0009, 5.1, 0.93, 0.021, 50.2, 0.0111)},
            "unlearned": {"forget": _scores(61.2, 0.0712, 0.0031, 1.2, 0.55, 0.05, 3.21, 0.0811),
                          "retain": _scores(11.0, 0.0109, 0.001, 5.0, 0.92, 0.019, 49.9, 0.0119)},
            REFERENCE: {"forget": _scores(40.0, 0.05, 0.002, 1.5, 0.7, 0.1, None, 0.05),
                        "retain": _scores(38.0, 0.048, 0.002, 3.3, 0.72, 0.01, None, 0.049)},
        },
        "reference_rows": [REFERENCE],
        "floors": {"forget": {"fid_real_halves": 2.5}, "retain": {"fid_real_halves": 0.9}},
        "instrument_check": {"task": {"name": "center-inpaint", "ratio": 0.5}, "count": 1000, "shares": {
            fill: {c: (0.91 if c == "no object" else 0.01) for c in evaluator_classes}
            for fill in ["noise", "uniform noise", "flat grey", "mean image"]}},
        "targets": [
            {"name": "retain FID <= 1.15 x original", "value": 11.0, "op": "<=", "limit": 12.075, "met": True},
            {"name": "forget FID >= 3 x original", "value": 30.0, "op": ">=", "limit": 37.04, "met": False},
        ],
        "images": images,
        "settings": {"sample_counts": {"forget": 100, "retain": 900}, "kid_subsets": 50},
        "versions": {"python": "3.11.9", "torch": "2.5.1"},
    }


def write_results(folder: Path, results: dict) -> Path:
    path = folder / "results.json"
    path.write_text(json.dumps(results))
    return path


def test_schema_is_valid_draft_2020_12():
    jsonschema.Draft202012Validator.check_schema(json.loads(SCHEMA_PATH.read_text()))


def test_example_validates_and_loads(tmp_path):
    results = make_results(tmp_path)
    validate_results(results)
    assert load_results(write_results(tmp_path, results)) == results


def test_missing_required_field_is_named(tmp_path):
    results = make_results(tmp_path)
    del results["seed"]
    with pytest.raises(UserError, match="'seed' is a required property"):
        validate_results(results)
    results = make_results(tmp_path)
    del results["metrics"]["unlearned"]["retain"]["hidden_mse"]
    with pytest.raises(UserError, match=r"metrics\.unlearned\.retain: 'hidden_mse' is a required property"):
        validate_results(results)


def test_string_for_number_is_named(tmp_path):
    results = make_results(tmp_path)
    results["metrics"]["original"]["forget"]["fid"] = "12.3"
    with pytest.raises(UserError, match=r"metrics\.original\.forget\.fid: '12\.3' is not of type"):
        validate_results(results)
    results = make_results(tmp_path)
    results["targets"][1]["limit"] = "37"
    with pytest.raises(UserError, match=r"targets\[1\]\.limit"):
        validate_results(results)


def test_rows_must_be_models_or_references(tmp_path):
    results = make_results(tmp_path)
    results["reference_rows"].append("ground truth")
    with pytest.raises(UserError, match="'ground truth' is not a row of metrics"):
        validate_results(results)
    results = make_results(tmp_path)
    del results["models"]["unlearned"]
    with pytest.raises(UserError, match=r"metrics\.unlearned: neither a model nor a reference row"):
        validate_results(results)


def test_load_results_rejects_missing_and_invalid_files(tmp_path):
    with pytest.raises(UserError, match="results file not found"):
        load_results(tmp_path / "nope.json")
    bad = tmp_path / "results.json"
    bad.write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        load_results(bad)


def test_html_has_tables_numbers_and_inlined_images(tmp_path):
    results = make_results(tmp_path)
    html_path, _ = write_report(write_results(tmp_path, results))
    page = html_path.read_text()
    for metric in METRICS:
        assert f"<th>{metric.label}\u00a0{metric.arrow('forget')}</th>" in page
    assert "<th>forget-class recognition</th>" in page  # no direction on the retain set
    tables = re.findall(r"<table[^>]*>\n<caption>(?:Forget|Retain) set.*?</table>", page, flags=re.S)
    assert len(tables) == 2
    # a wide table scrolls sideways in a box of its own instead of running past the page's edge
    assert page.count("<table") == page.count('<div class="table-box"><table') == page.count("</table></div>") > 2
    assert re.search(r"\.table-box \{[^}]*overflow-x: auto", page)
    # both results tables share one column grid, each column as wide as its widest cell in either table
    grids = [re.search(r"<colgroup>.*?</colgroup>", table).group() for table in tables]
    assert grids[0] == grids[1] and grids[0].count("<col ") == 1 + len(METRICS)
    assert '<col style="width: 23ch">' in grids[0]   # "mean-image fill (ref)", 21 characters, and the padding
    for name in ["original", "unlearned", f"{REFERENCE} (ref)"]:
        assert all(f"<td>{name}</td>" in table for table in tables)
    assert '<tr class="ref first-ref"><td>mean-image fill (ref)</td>' in page
    for number in ["12.35", "0.0123 ± 0.0011", "2.35", "0.912", "0.874", "45.68", "61.20", "3.21"]:
        assert f"<td>{number}</td>" in page
    assert "<td>–</td>" in page  # null noise_kl of the reference row
    assert page.count("data:image/png;base64,") == len(results["images"])
    assert 'src="http' not in page and 'href="http' not in page and "url(" not in page
    assert '<td class="missed">MISSED</td>' in page and '<td class="met">met</td>' in page
    assert "≥ 37.04" in page
    assert '<td class="forget strong">' not in page  # "no object" is the largest share, not Cat
    assert '<td class="strong">91.0%</td>' in page and '<td class="forget">1.0%</td>' in page


def test_names_from_results_are_escaped(tmp_path):
    evil = "<script>alert(1)</script>"
    results = make_results(tmp_path, forget_class=evil)
    results["settings"]["note"] = '<img src=x onerror="alert(2)">'
    results["models"]["unlearned"]["dir"] = "runs/<b>bold</b>"
    page = write_report(write_results(tmp_path, results))[0].read_text()
    assert "<script" not in page.lower() and "<img src=x" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=&quot;alert(2)&quot;&gt;" in page


def test_markdown_has_tables_with_arrows_and_image_links(tmp_path):
    results = make_results(tmp_path)
    _, markdown_path = write_report(write_results(tmp_path, results))
    text = markdown_path.read_text()
    header = "| model | " + " | ".join(m.header("forget") for m in METRICS) + " |"
    assert header in text
    assert ("| model | FID ↓ | KID ↓ | IS ↑ | similarity ↑ | forget-class recognition | KL to noise outputs ↑ "
            "| hole MSE ↓ |") in text
    assert "| original | 12.35 | 0.0123 ± 0.0011 | 2.35 | 0.912 | 0.874 | 45.68 | 0.0123 |" in text
    assert f"| {REFERENCE} (ref) |" in text
    for name in results["images"].values():
        assert f"]({name})" in text
    assert "**MISSED**" in text


def test_html_and_markdown_have_the_same_sections_in_the_same_order(tmp_path):
    results = make_results(tmp_path, forget_class="C*t_<1>")
    results["dataset"] = "animals & [more]"
    html_path, markdown_path = write_report(write_results(tmp_path, results))
    page, text = html_path.read_text(), markdown_path.read_text()
    in_html = [(int(level), html.unescape(title)) for level, title in re.findall(r"<h([1-3])>(.*?)</h\1>", page)]
    in_markdown = [(len(hashes), re.sub(r"\\(.)", r"\1", title))
                   for hashes, title in re.findall(r"^(#{1,3}) (.*)$", text, flags=re.M)]
    assert in_html == in_markdown
    assert in_html[0] == (1, "Unlearning results: animals & [more]") and (3, "Versions") in in_html
    assert [title for level, title in in_html if level == 2] == [
        "Results", "Targets", "Outputs", "T-SNE", "Instrument check", "Settings and provenance"]


def test_markdown_escapes_pipes_in_cells(tmp_path):
    results = make_results(tmp_path)
    results["models"]["a|b"] = results["models"].pop("unlearned")
    results["metrics"]["a|b"] = results["metrics"].pop("unlearned")
    lines = write_report(write_results(tmp_path, results))[1].read_text().splitlines()
    assert sum(line.startswith("| a\\|b |") for line in lines) == 3  # two results tables, the models table
    header_separators = None  # every row of a table has as many unescaped "|" as its header
    for line in lines:
        if not line.startswith("|"):
            header_separators = None  # between tables
            continue
        separators = len(re.findall(r"(?<!\\)\|", line))
        header_separators = header_separators or separators
        assert separators == header_separators, line


def test_report_into_another_folder_copies_images(tmp_path):
    results = make_results(tmp_path)
    out = tmp_path / "report"
    html_path, markdown_path = write_report(write_results(tmp_path, results), out)
    assert html_path == out / "report.html" and markdown_path == out / "report.md"
    for name in results["images"].values():
        assert (out / name).read_bytes() == (tmp_path / name).read_bytes()


def test_missing_image_is_named(tmp_path):
    results = make_results(tmp_path)
    path = write_results(tmp_path, results)
    (tmp_path / "tsne.png").unlink()
    with pytest.raises(UserError, match="tsne.png"):
        write_report(path)


def test_image_outside_results_folder_is_refused(tmp_path):
    results = make_results(tmp_path)
    results["images"]["tsne"] = "../tsne.png"
    with pytest.raises(UserError, match=r"images\.tsne"):
        write_report(write_results(tmp_path, results))


def test_summary_table_shows_rows_arrows_and_missed_targets(tmp_path):
    results = make_results(tmp_path)
    text = summary_table(results)
    for name in ["original", "unlearned", f"{REFERENCE} (ref)"]:
        assert len(re.findall(rf"^{re.escape(name)} ", text, flags=re.M)) == 2
    assert "forget set (100 images)" in text and "retain set (900 images)" in text
    assert "FID ↑" in text and "FID ↓" in text and "recog ↓" in text and "hole MSE ↑" in text
    assert "0.0123 ± 0.0011" in text and "–" in text
    assert "forget FID >= 3 x original: 30 vs limit ≥ 37.04 — MISSED" in text
    assert "retain FID <= 1.15 x original: 11 vs limit ≤ 12.07 — met" in text
    assert max(len(line) for line in text.splitlines()) <= 100
