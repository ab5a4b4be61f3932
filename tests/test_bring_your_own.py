"""Bring your own (issue 34): a folder of the user's own photos, a Hugging Face ViTMAE saved with save_pretrained, and a
natural-image feature backbone (DINOv2, CLIP) as the evaluator, through every command a user runs: import -> unlearn
(the budgeted default) -> evaluate -> audit -> report. Everything tiny and random; the full-size shape is in
benchmarks/scale_step.py."""
import json
import math
from pathlib import Path

import pytest
from builders import make_mae, write_photos
from typer.testing import CliRunner

from i2i_unlearn.cli import app

pytestmark = pytest.mark.usefixtures("one_thread")   # conftest.py
runner = CliRunner()


def _run(*args) -> str:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    return result.output


def save_backbones(root: Path) -> dict[str, str]:
    """A tiny random DINOv2 and CLIP vision model, as `save_pretrained` writes them: the evaluator specs."""
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection, Dinov2Config, Dinov2Model
    Dinov2Model(Dinov2Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, mlp_ratio=2, image_size=32,
                             patch_size=8)).save_pretrained(root / "dinov2")
    CLIPVisionModelWithProjection(CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                                   num_attention_heads=2, image_size=32, patch_size=8,
                                                   projection_dim=16)).save_pretrained(root / "clip")
    return {"hf": f"hf:{root / 'dinov2'}", "clip": f"clip:{root / 'clip'}"}


def test_own_photos_and_checkpoint_through_import_unlearn_evaluate_audit_report(tmp_path):
    photos = write_photos(tmp_path / "photos")
    (tmp_path / "data.yaml").write_text("test_per_class: 4\nval_per_class: 4\n")
    make_mae(tmp_path / "hf-mae", num_channels=3)
    backbone = save_backbones(tmp_path / "backbones")
    model, unlearned = tmp_path / "my-mae", tmp_path / "no-cat"

    _run("import", "--family", "mae", "--from-pretrained", tmp_path / "hf-mae", "--out", model, "--dataset",
         "image-folder", "--data-root", photos, "--data-config", tmp_path / "data.yaml")
    assert json.loads((model / "config.json").read_text())["class_names"] == ["cat", "dog", "owl"]

    # no --alpha: the default budgeted run, its retain FID on DINOv2 features; forgetting by hole error, since a
    # backbone without a classifier head recognises no class
    output = _run("unlearn", "--model", model, "--out", unlearned, "--forget-classes", "cat", "--steps", 4,
                  "--batch-size", 4, "--evaluator", backbone["hf"], "--forget-metric", "hole-mse")
    assert "budgeted run (the default)" in output
    record = json.loads((unlearned / "run.json").read_text())
    assert record["config"]["retain_budget"] == 1.15 and record["config"]["budget_evaluator"] == backbone["hf"]
    assert record["budget"]["control"]["measurements"] >= 2 and record["budget"]["metric"] == "fid"
    assert record["inputs"]["forget_classes"] == ["cat"]

    _run("evaluate", "--model", f"original={model}", "--model", f"unlearned={unlearned}", "--evaluator",
         backbone["hf"], "--out", tmp_path / "eval")
    results = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert results["forget_classes"] == ["cat"] and results["evaluator"]["kind"] == "embedder"
    assert results["sets"]["forget"]["count"] == 4 and results["sets"]["retain"]["count"] == 8
    for name in ("original", "unlearned"):
        scores = results["metrics"][name]["forget"]
        assert math.isfinite(scores["fid"]) and scores["fid"] >= 0 and 0 <= scores["hidden_mse"] < 1
        assert scores["recognition"] is None and scores["is"] is None   # no classifier head: no class to recognise

    _run("audit", "--model", f"original={model}", "--model", f"unlearned={unlearned}", "--reference-model",
         "original", "--evaluator", backbone["clip"], "--max-images", 4, "--probe-folds", 2, "--out",
         tmp_path / "audit")
    audit = json.loads((tmp_path / "audit" / "audit.json").read_text())
    assert audit["forget"]["members"]["classes"] == ["cat"] and audit["evaluator"]["name"] == "clip:clip"
    probe = audit["tell"]["models"]["unlearned"]["probe_vs_reference"]   # a probe on the CLIP features
    assert 0 <= probe["accuracy"] <= 1 and audit["tell"]["models"]["unlearned"]["no_object_share"] is None
    assert 0 <= audit["membership"]["models"]["unlearned"]["attack"]["auc"] <= 1

    _run("report", "--results", tmp_path / "eval" / "results.json", "--audit", tmp_path / "audit" / "audit.json")
    html = (tmp_path / "eval" / "report.html").read_text()
    assert "cat" in html and "clip:clip" in html
