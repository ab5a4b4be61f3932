"""bench/audit_benchmark.py (run by benchmarks/audit.py): both requests audited against retraining, every model
made once."""
import json

import pytest
import torch
import yaml

import i2i_unlearn.bench.audit_benchmark as audit_benchmark
from i2i_unlearn.config import DataConfig
from i2i_unlearn.data import load_split
from conftest import FEW_HELD_OUT, tiny_train_config, tiny_unlearn_config

pytestmark = pytest.mark.slow   # real processes or a whole benchmark: more than about 20 s on 2 cores



def test_the_audit_benchmark_audits_classes_and_files_against_retraining(few_held_out_model_dir, tiny_evaluator_dir,
                                                                         tmp_path):
    # a tiny MAE holding out 5 test and 5 validation images per class: the file request's retain quality
    # is scored on every never-seen image, and 1,500 of them would make this test minutes long
    tiny_model_dir = few_held_out_model_dir
    knobs = tmp_path / "knobs.yaml"
    config = tiny_unlearn_config(steps=2)
    knobs.write_text(yaml.safe_dump({"steps": config.steps, "batch_size": config.batch_size, "alpha": 0.5,
                                     "checkpoint_every": 1, "tasks": [{"name": "center-inpaint", "ratio": 0.5}]}))
    spec = tmp_path / "audit-tiny.yaml"
    spec.write_text(yaml.safe_dump({
        "original": str(tiny_model_dir), "retrained": str(tiny_model_dir), "evaluator": str(tiny_evaluator_dir),
        "knobs": str(knobs), "forget_classes": ["Cat"], "methods": ["ours"],
        "relearn": {"steps": 2, "images": 4, "batch_size": 4, "lr": 1e-3, "eval_steps": [0, 2]},
        "files": {"count": 10, "seed": 0, "stop_at_auc": 0.6}, "max_images": 6, "seed": 0,
        "bootstrap": 0,   # the retain quality of every never-seen image, without its intervals
        "permutations": 4, "probe_folds": 2}))   # the tell's permutation test: 4 x 2 probe fits, not 100 x 5

    def run_benchmark():   # what `python benchmarks/audit.py --config ... --work ... --results ...` does
        return audit_benchmark.audit_benchmark(spec, tmp_path / "work", tmp_path, root=tmp_path,
                                               command="python benchmarks/audit.py")
    record = run_benchmark()

    assert set(record["settings"]) == {"classes", "files"}
    classes = record["settings"]["classes"]["summary"]
    assert set(classes) == {"original", "ours", "retrained"} and classes["ours"]["relearn_steps_to_half"]
    # the file list: training images only, and the retrained reference never saw them
    ids = (tmp_path / "work" / "forget-files.txt").read_text().split()
    split = load_split(DataConfig(**FEW_HELD_OUT))
    assert len(ids) == 10 and set(ids) <= set(split.train.ids)
    retrain_run = json.loads((tmp_path / "work" / "files-retrain" / "run.json").read_text())
    assert retrain_run["inputs"]["train_count"] == len(split.train) - 10
    files = record["settings"]["files"]
    assert set(files["summary"]) == {"original", "ours", "ours-stop", "retrained"}
    assert set(files["retain"]) == set(files["summary"])
    # ours-stop: the same knobs stopped on the attack, measured from the original (step 0) on
    stop = files["stops"]["ours-stop"]
    assert stop["stop_at_auc"] == 0.6 and stop["path"][0]["step"] == 0 and stop["chosen"] in stop["path"]
    stop_run = json.loads((tmp_path / "work" / "files-ours-stop" / "run.json").read_text())
    assert stop_run["config"]["stop_at_auc"] == 0.6 and "stop_at_auc" not in \
        json.loads((tmp_path / "work" / "files-ours" / "run.json").read_text())["config"]
    assert json.loads((tmp_path / "audit-tiny.json").read_text())["settings"] == json.loads(json.dumps(record["settings"]))
    assert "## files" in (tmp_path / "audit-tiny.md").read_text()
    assert "`ours-stop` stopped on the attack at AUC <= 0.6" in (tmp_path / "audit-tiny.md").read_text()

    page = (tmp_path / "audit-tiny.md").read_text()
    assert "steps to half / back to the original's recog." in page
    # the audits and their figures are published beside the page, which links them
    for setting in ("classes", "files"):
        published = tmp_path / "audit-tiny" / setting
        audit = json.loads((published / "audit.json").read_text())
        assert audit["kind"] == "audit" and record["settings"][setting]["figures"] == list(audit["images"].values())
        assert {name: entry["dir"] for name, entry in audit["models"].items()} == record["settings"][setting]["models"]
        probes = [entry["probe_vs_reference"] for entry in audit["tell"]["models"].values()]
        assert all(p["folds"] == 2 and p["permutation"]["permutations"] == 4 for p in probes if p) and any(probes)
        for figure in audit["images"].values():
            assert (published / figure).read_bytes()[:4] == b"\x89PNG" and f"](audit-tiny/{setting}/{figure})" in page
    assert all(set(row["relearn_steps_to_original"]) == {"whole", "decoder-frozen", "retain-finetune", "quantize-8",
                                                         "quantize-4"} for row in classes.values())

    # a second run reuses every model and every audit (nothing is trained or audited again) ...
    made = {p: p.stat().st_mtime_ns for p in (tmp_path / "work").glob("*/model.safetensors")}
    audits = {p: p.stat().st_mtime_ns for p in [*(tmp_path / "work").glob("audit-*/audit.json"),
                                                 tmp_path / "work" / "evaluate-files" / "results.json"]}
    assert len(audits) == 3
    run_benchmark()
    assert made and all(p.stat().st_mtime_ns == t for p, t in made.items())
    assert all(p.stat().st_mtime_ns == t for p, t in audits.items())
    # ... until a setting of the audits changes: then both are computed again, the models still reused
    spec.write_text(spec.read_text().replace("max_images: 6", "max_images: 5"))
    run_benchmark()
    assert all(p.stat().st_mtime_ns != t for p, t in audits.items())
    assert all(p.stat().st_mtime_ns == t for p, t in made.items())


def test_the_file_list_is_drawn_from_the_classes_the_model_was_trained_on(tmp_path):
    # the Cat+Dog VQ-GAN's list once held images of all ten classes, and the audit refused 85 of 100 ids
    from i2i_unlearn.train import train
    recipe = tiny_train_config()
    recipe.classes, recipe.data = ["Cat", "Dog"], DataConfig(test_per_class=5, val_per_class=5)
    train(recipe, tmp_path / "cat-dog")
    ids = audit_benchmark.forget_list(tmp_path / "cat-dog", 40, 0, tmp_path / "ids.txt").read_text().split()
    split = load_split(recipe.data)
    names = dict(zip(split.train.ids, (split.train.class_names[label] for label in split.train.labels.tolist())))
    assert len(set(ids)) == 40 and {names[i] for i in ids} == {"Cat", "Dog"}


def test_a_killed_unlearning_of_a_benchmark_resumes_and_one_of_another_config_starts_again(tiny_model_dir, tmp_path,
                                                                                          monkeypatch):
    """The audit and robust benchmarks train their unlearned and retrained models through _unlearned: a run killed
    after a checkpoint goes on from it (it used to start from step 0), and a folder left by another config, killed or
    finished, starts again (a finished one used to be reused whatever its config)."""
    from safetensors.torch import load_file

    from i2i_unlearn.unlearn import unlearn
    calls = []

    def recorded(*args, **kwargs):
        calls.append({k: kwargs.get(k, False) for k in ("resume", "overwrite")})
        return unlearn(*args, **kwargs)
    monkeypatch.setattr(audit_benchmark, "unlearn", recorded)
    config = tiny_unlearn_config(steps=4, checkpoint_every=2)
    out = tmp_path / "method-ours"
    unlearn(tiny_model_dir, config, out, keep_checkpoint=True)
    finished = load_file(out / "model.safetensors")
    (out / "run.json").unlink()   # as a kill after the last checkpoint leaves it: checkpoints, no record
    assert audit_benchmark._unlearned(tiny_model_dir, config, out) == out
    assert calls == [{"resume": True, "overwrite": False}] and (out / "run.json").is_file()
    resumed = load_file(out / "model.safetensors")
    assert all(torch.equal(resumed[k], finished[k]) for k in finished)
    calls.clear()
    assert audit_benchmark._unlearned(tiny_model_dir, config, out) == out and calls == []   # finished: reused
    unlearn(tiny_model_dir, config, out, keep_checkpoint=True, overwrite=True)
    (out / "run.json").unlink()
    other = tiny_unlearn_config(steps=4, checkpoint_every=2, alpha=config.alpha * 2)
    audit_benchmark._unlearned(tiny_model_dir, other, out)
    assert calls == [{"resume": True, "overwrite": False}, {"resume": False, "overwrite": True}]
    assert json.loads((out / "run.json").read_text())["config"]["alpha"] == other.alpha
    # a finished folder of another config (the knobs were re-tuned since) is not reused: it starts again
    calls.clear()
    audit_benchmark._unlearned(tiny_model_dir, config, out)
    assert calls == [{"resume": False, "overwrite": True}]
    assert json.loads((out / "run.json").read_text())["config"]["alpha"] == config.alpha


def test_a_finished_retraining_is_reused_for_its_own_request_only(tiny_model_dir, tmp_path, monkeypatch):
    """A retraining's run.json records its training recipe, not the request: _unlearned reads the request from the
    model's lineage (config.json), so a retraining of another seed is not taken for this one."""
    from i2i_unlearn.unlearn import unlearn
    calls = []

    def recorded(*args, **kwargs):
        calls.append(args[1].seed)
        return unlearn(*args, **kwargs)
    monkeypatch.setattr(audit_benchmark, "unlearn", recorded)
    out = tmp_path / "retrain"
    seed0, seed1 = (tiny_unlearn_config(method="retrain", seed=seed) for seed in (0, 1))
    audit_benchmark._unlearned(tiny_model_dir, seed0, out)
    audit_benchmark._unlearned(tiny_model_dir, seed0, out)   # finished, same request: reused
    assert calls == [0]
    audit_benchmark._unlearned(tiny_model_dir, seed1, out)
    assert calls == [0, 1]
    assert json.loads((out / "config.json").read_text())["unlearning"]["config"]["seed"] == 1
