"""bench/robust.py (run by benchmarks/robust.py): every method against LiRA, the relearning band, the tell's floor,
retain quality by the paired rule, and cost against retraining; the targets judged from those numbers."""
import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml

import i2i_unlearn.bench.robust as robust
from i2i_unlearn.checkpoints import read_config_dir, sha256_file, sha256_text
from i2i_unlearn.config import DataConfig, UnlearnConfig, load_yaml
from i2i_unlearn.data import load_split
from i2i_unlearn.errors import UserError
from i2i_unlearn.paths import relative
from conftest import FEW_HELD_OUT, tiny_train_config, tiny_unlearn_config


def _train_shadow(folder: Path, seed: int) -> Path:
    """The tiny MAE's recipe with another seed, on the split holding out few images (every never-seen image is
    scored: keep them few), trained into folder/in-<seed>."""
    from i2i_unlearn.train import train
    recipe = tiny_train_config()
    recipe.data, recipe.seed = DataConfig(**FEW_HELD_OUT), seed
    train(recipe, folder / f"in-{seed}")
    return folder / f"in-{seed}"


def test_the_targets_follow_the_numbers():
    """Hand-made rows: each target met or missed exactly at its limit."""
    held_out = {"lira": {"tpr_at_0.01_fpr": 0.02, "auc": 0.5,
                         "intervals": {"tpr_at_0.01_fpr": [0.0, 0.05], "auc": [0.45, 0.55]}}}
    row = {"relearning": {"whole": {"band_area": 0.0, "above_band": False},
                          "retain-finetune": {"band_area": 0.3, "above_band": False},   # below the band: hiding
                          "quantize-4": {"band_area": 0.12, "above_band": True}},
           "lira": {"tpr_at_0.01_fpr": 0.06, "auc": 0.3}, "probe_accuracy": 0.60, "forget_recognition": 0.25,
           "retain": {"fid": 3.0, "verdict": "tie"}, "cost": {"time_share": 0.25, "step_share": 0.3}}
    met = {t["name"]: t["met"] for t in robust.judge(row, floor=0.55, held_out=held_out, retrained_recognition=0.2)}
    assert met == {
        "relearning whole: inside the retrained band at every step": True,
        "relearning retain-finetune: inside the retrained band at every step": False,
        "relearning quantize-4: inside the retrained band at every step": False,
        "LiRA TPR at 1 % FPR inside the held-out retrained seed's interval": False,   # 0.06 > 0.05
        "LiRA AUC inside the held-out retrained seed's interval": False,              # 0.3 < 0.45: gives itself away
        "the tell: probe accuracy at most the floor + 0.05": True,                  # 0.60 <= 0.55 + 0.05
        "retain FID: not worse than the retrained seeds (paired)": True,
        "forget recognition at most the retrained models' mean + 0.05": True,       # 0.25 <= 0.2 + 0.05
        "cost: at most 25% of retraining's wall time (wall seconds: host speed not recorded)": True,
        "cost: at most 25% of retraining's optimiser steps": False}
    # every run recorded its machine's speed: the wall time is judged at the reference speed
    row["cost"]["time_share_at_reference"] = 0.26
    met = {t["name"]: t["met"] for t in robust.judge(row, floor=0.55, held_out=held_out, retrained_recognition=0.2)}
    assert met["cost: at most 25% of retraining's wall time (at 100 GFLOP/s)"] is False
    del row["cost"]["time_share_at_reference"]
    row["retain"]["verdict"] = "worse"
    row["probe_accuracy"] = 0.61
    met = {t["name"]: t["met"] for t in robust.judge(row, floor=0.55, held_out=held_out, retrained_recognition=0.2)}
    assert not met["retain FID: not worse than the retrained seeds (paired)"]
    assert not met["the tell: probe accuracy at most the floor + 0.05"]
    # nothing measured: not judged, never "met"
    assert all(t["met"] is None for t in robust.judge({}, floor=None, held_out={}, retrained_recognition=0.2)
               if "cost" in t["name"] or "LiRA" in t["name"] or "tell" in t["name"])



def test_wall_time_of_shipped_retrainings_without_a_machine_is_read_from_timed_trainings(tmp_path):
    """Shipped retrained seeds recorded no machine: retraining's time at the reference speed is read from
    `retrain_timed` (trainings of the same recipe that recorded theirs); by hand."""
    def run(name, seconds, host, kind="retrain", steps=4000, batch_size=64, config_steps=None):
        folder = tmp_path / name
        folder.mkdir()
        record = {"kind": kind, "wall_time_s": seconds, "host": host, "steps": steps,
                  "config": {"steps": config_steps, "batch_size": batch_size}}
        (folder / "run.json").write_text(json.dumps(record))
        return folder
    slow = {"cpu": "EPYC", "cpu_capability": "AVX2", "cores": 2, "torch_threads": 2, "matmul_gflops": 130.0}
    fast = {**slow, "cpu_capability": "AVX512", "matmul_gflops": 200.0}
    shipped = [run("retrained", 800.0, None), run("retrained-2", 900.0, None)]
    timed = [run("timed-fast", 600.0, fast), run("timed-train", 1500.0, slow, kind="train")]
    ours = run("ours", 150.0, slow, kind="unlearn", steps=None, config_steps=500)
    spent = robust.cost(ours, shipped, [], timed)
    assert spent["step_share"] == 0.125 and spent["time_share"] == round(150 / 850, 4)   # as measured: the seeds'
    assert spent["time_share_at_reference"] == round(150 * 1.3 / ((600 * 2.0 + 1500 * 1.3) / 2), 4)
    assert [t["wall_time_s"] for t in spent["timed"]] == [600.0, 1500.0]
    assert spent["hosts"]["retraining"] == [None, None]   # the seeds' own records, as they are
    # without retrain_timed: as measured, never at a reference speed nobody recorded
    assert "time_share_at_reference" not in robust.cost(ours, shipped, [])
    # a timed folder that is not a training of the recipe is refused, saying what it is
    for name, options in (("short", {"steps": 2000}), ("wide", {"batch_size": 128}),
                          ("unlearning", {"kind": "unlearn"})):
        with pytest.raises(UserError, match="is not a training of the retrained seeds' recipe "
                                            r"\(4000 steps of 64\)"):
            robust.cost(ours, shipped, [], [run(name, 300.0, slow, **options)])


def test_the_page_says_when_the_attack_cannot_catch_the_original():
    """LiRA's power check: the original is caught when its AUC interval excludes 0.5, on either side."""
    def lira(low, high):
        return {"auc": (low + high) / 2, "intervals": {"auc": [low, high]}}
    assert robust._original_caught(lira(0.95, 0.98)) and robust._original_caught(lira(0.20, 0.30))
    assert robust._original_caught(lira(0.43, 0.56)) is False and robust._original_caught(None) is None
    record = json.loads((Path(__file__).parents[2] / "benchmarks/results/robust-mae.json").read_text())
    assert "does not catch the original" not in robust.markdown(record)
    record["rows"]["original"]["lira"] = {**record["rows"]["original"]["lira"], **lira(0.43, 0.56)}
    assert "The attack does not catch the original here" in robust.markdown(record)

def test_a_request_without_shadows_has_one_unjudged_lira_target_and_the_page_says_why():
    """No shadows: the two LiRA targets become one, not judged, naming why; every other target as measured."""
    row = {"relearning": {"whole": {"band_area": 0.0, "above_band": False}}, "lira": None, "probe_accuracy": 0.6,
           "forget_recognition": 0.2, "retain": {"fid": 3.0, "verdict": "tie"}, "cost": {"time_share": 0.1,
                                                                                      "step_share": 0.1}}
    targets = robust.judge(row, floor=0.55, held_out={"lira": None}, retrained_recognition=0.2,
                           not_measured=robust.NOT_MEASURED_WITHOUT_SHADOWS)
    lira = [t for t in targets if "LiRA" in t["name"]]
    assert len(lira) == 1 and lira[0]["met"] is None and "no shadow models given" in lira[0]["name"]
    assert [t["met"] for t in targets if t not in lira] == [True] * 6
    record = json.loads((Path(__file__).parents[2] / "benchmarks/results/robust-mae.json").read_text())
    for name in record["rows"]:
        record["rows"][name]["lira"] = None
    record.update({"lira_shadows": None, "not_measured": robust.NOT_MEASURED_WITHOUT_SHADOWS})
    page = robust.markdown(record)
    assert "## Per-example membership (LiRA)\n\nNot measured: no shadow models given" in page
    assert "| AUC |" not in page and "per-example ROC" not in page and "Not judged (not measured for this " \
        "request): LiRA." in page


def test_retain_fid_is_compared_with_the_band_by_the_paired_rule():
    """Image noise the rows share cancels (the same hard images); the seed part is the prediction interval of one more
    retrained seed, by hand; a band seed is read against the others."""
    generator = torch.Generator().manual_seed(0)
    shared = torch.randn(200, generator=generator)
    results = {"metrics": {}, "replicates": {}}

    def add(name, fid, replicates):
        results["metrics"][name] = {"retain": {"fid": fid}}
        results["replicates"][name] = {"retain": {"whole": {"fid": replicates.tolist()}}}
    for name, fid in (("r0", 10.0), ("r1", 10.2), ("r2", 9.8), ("far", 11.0), ("near", 10.3)):
        add(name, fid, fid + shared)
    add("own-noise", 11.0, 11.0 + 3 * torch.randn(200, generator=generator))
    verdicts = robust.retain_comparison(results, ["far", "near", "own-noise", "r0"], ["r0", "r1", "r2"])
    # the band's spread: sd 0.2 over 3 seeds; t(0.975, 2) = 4.303; prediction half-width 4.303 x 0.2 x sqrt(4/3)
    assert verdicts["far"]["seed_hw"] == pytest.approx(4.3027 * 0.2 * (4 / 3) ** 0.5, abs=1e-3)
    assert verdicts["far"]["image_hw"] == pytest.approx(0.0, abs=1e-6)             # shared noise cancels
    assert verdicts["far"]["difference"] == pytest.approx(1.0) and verdicts["far"]["verdict"] == "worse"
    assert verdicts["near"]["verdict"] == "tie"                                      # 0.3 inside 0.99
    assert verdicts["own-noise"]["image_hw"] > 1 and verdicts["own-noise"]["verdict"] == "tie"
    assert verdicts["r0"]["reference_seeds"] == 2 and verdicts["r0"]["difference"] == pytest.approx(0.0)
    # read against two other seeds only: no interval from two values (t(1) = 12.7), so not judged
    assert verdicts["r0"]["verdict"] is None and verdicts["r0"]["hw"] is None
    met = {t["name"]: t["met"] for t in robust.judge({"retain": verdicts["r0"]}, floor=None, held_out={},
                                                     retrained_recognition=0.2)}
    assert met["retain FID: not worse than the retrained seeds (paired)"] is None


def test_a_config_with_one_retrained_seed_or_an_unknown_source_is_refused(tmp_path):
    base = {"original": "o", "evaluator": "e", "forget_classes": ["Cat"], "retrained": ["r0", "r1"],
            "shadows_in": ["i1", "i2"], "shadows_out": ["o1", "o2", "o3"], "methods": {"ours": {"knobs": "k"}}}
    for change, message in (({"retrained": ["r0"]}, "at least 2 seeds"),
                            ({"methods": {"undo": {"knobs": "k", "starts_from": "ours"}}}, "not a method here"),
                            ({"relearn": {"attack_seeds": [0, 0]}}, "distinct"),
                            ({"shadow_in": ["x"]}, "shadow_in")):
        path = tmp_path / "robust-x.yaml"
        path.write_text(yaml.safe_dump({**base, **change}))
        with pytest.raises(UserError, match=message):
            robust.load_spec(path, tmp_path)


def test_a_row_with_set_unlearns_with_its_knobs_and_those_overrides(tmp_path, monkeypatch):
    """A bench row such as ours-proxy (the knobs of ours, a proxy retain set over them) is audited as the bench ran
    it: its `set:` merges over the knobs file, nested keys and all; a row without one keeps the file's knobs."""
    knobs = tmp_path / "knobs.yaml"
    knobs.write_text(yaml.safe_dump({"method": "ours", "alpha": 0.1, "steps": 500, "optim": {"lr": 5e-4}}))
    path = tmp_path / "robust-x.yaml"
    path.write_text(yaml.safe_dump({
        "original": "o", "evaluator": "e", "forget_classes": ["Cat"], "retrained": ["r0", "r1", "r2"],
        "methods": {"ours": {"knobs": "knobs.yaml"},
                    "ours-proxy": {"knobs": "knobs.yaml", "set": {"proxy": {"dataset": "fashion-mnist"},
                                                                 "alpha": 0.025, "optim.lr": 1e-4}}}}))
    spec = robust.load_spec(path, tmp_path)
    made = {}
    monkeypatch.setattr(robust, "_made_and_kept",
                        lambda start, config, out, kept, root: made.setdefault(out.name, config) and out)
    robust._method_models(spec, tmp_path / "work", tmp_path)
    plain, proxied = made["method-ours"], made["method-ours-proxy"]
    assert (plain.alpha, plain.optim.lr, plain.proxy) == (0.1, 5e-4, None)
    assert (proxied.alpha, proxied.optim.lr, proxied.proxy.dataset) == (0.025, 1e-4, "fashion-mnist")
    assert proxied.steps == 500 and proxied.forget_classes == ["Cat"]
    assert robust.recorded_spec(spec)["methods"]["ours-proxy"]["set"]["alpha"] == 0.025


def test_a_config_makes_exactly_one_request_and_a_file_request_trains_enough_retrained_seeds(tmp_path):
    common = {"original": "o", "evaluator": "e", "shadows_in": ["i1", "i2"], "methods": {"ours": {"knobs": "k"}}}
    classes = {"forget_classes": ["Cat"], "retrained": ["r0", "r1"], "shadows_out": ["o1", "o2", "o3"]}
    files = {"files": {"count": 100, "seed": 0, "retrain_seeds": [0, 1, 2, 3, 4]}}
    path = tmp_path / "robust-x.yaml"

    def load(values):
        path.write_text(yaml.safe_dump(values))
        return robust.load_spec(path, tmp_path)
    spec = load({**common, **files})
    assert spec.files.retrain_seeds == [0, 1, 2, 3, 4] and spec.forget_classes is None
    # the record of a file request names no class, no shipped retrained model and no relearning budget it never uses
    recorded = robust.recorded_spec(spec)
    assert recorded["files"] == {"count": 100, "retrain_seeds": [0, 1, 2, 3, 4], "seed": 0}
    assert not {"forget_classes", "retrained", "shadows_out", "relearn"} & set(recorded)
    class_spec = load({**common, **classes})   # a class request's record as it was
    # a class request without shadows: LiRA is left out (and recorded as not measured), the rest measured
    without_shadows = load({key: value for key, value in {**common, **classes}.items()
                            if key not in ("shadows_in", "shadows_out")})
    assert without_shadows.shadows_in is None and without_shadows.shadows_out is None
    assert not {"shadows_in", "shadows_out"} & set(robust.recorded_spec(without_shadows))
    assert robust.recorded_spec(class_spec) == robust.to_dict(class_spec) and "files" not in robust.to_dict(class_spec)
    for values, message in (
            ({**common, **classes, **files}, "exactly one request.*`forget_classes:` and `files:`"),
            (common, "exactly one request.*neither"),
            ({**common, **classes, "forget_classes": []}, "names no class"),
            ({**common, "forget_classes": ["Cat"], "retrained": ["r0", "r1"]}, "class request needs `shadows_out:`"),
            ({**common, **classes, "shadows_out": []}, "`shadows_out:` needs at least 3 models.*got 0"),
            ({**common, **classes, "shadows_out": ["o1", "o2"]}, "`shadows_out:` needs at least 3 models.*got 2"),
            # the shadows come in both kinds or not at all; a file request's IN shadows are always needed
            ({**classes, "original": "o", "evaluator": "e", "methods": {}},
             "`shadows_in:` needs at least 2 models.*got 0; a class request may leave out both"),
            ({**files, "original": "o", "evaluator": "e", "methods": {}},
             "`shadows_in:` needs at least 2 models.*got 0$"),
            ({**common, **files, "retrained": ["r0", "r1"]}, "trains its retrained models itself.*`retrained:`"),
            ({**common, **files, "shadows_out": ["o1", "o2", "o3"]}, "leave out `shadows_out:`"),
            ({**common, **files, "relearn": {"steps": 50}}, "`relearn:` does not apply to a file request"),
            # LiRA's OUT shadows are the seeds after the first: at least 3 of them (the null leaves one out)
            ({**common, "files": {"count": 100, "retrain_seeds": [0, 1]}}, "at least 4 distinct seeds.*\\[0, 1\\]"),
            ({**common, "files": {"count": 100, "retrain_seeds": [0, 1, 2, 2]}}, "at least 4 distinct seeds"),
            ({**common, "files": {"count": 0, "retrain_seeds": [0, 1, 2, 3]}}, "files.count must be at least 1"),
            ({**common, "files": {"count": 100}}, "missing key.*retrain_seeds"),
            ({**common, **files, "shadows_in": ["i1"]}, "`shadows_in:` needs at least 2")):
        with pytest.raises(UserError, match=message):
            load(values)
    # the shipped configs: each one request
    root = Path(__file__).resolve().parents[2]
    shipped = {p.name: robust.load_spec(p, root) for p in sorted((root / "benchmarks").glob("robust-*.yaml"))}
    assert shipped["robust-mae-files.yaml"].files.retrain_seeds == [0, 1, 2, 3, 4]
    assert all((spec.files is None) != (spec.forget_classes is None) for spec in shipped.values())


@pytest.mark.slow
def test_a_file_request_is_audited_against_retrained_seeds_the_benchmark_trains(tiny_evaluator_dir, tmp_path,
                                                                                monkeypatch, one_thread):
    """The retrained seeds are trained here without exactly the listed files; LiRA's IN shadows are `shadows_in`, its
    OUT shadows the retrained seeds after the first (held out: the ideal row); recognition and relearning are not
    judged (the files are of every class)."""
    data = DataConfig(**FEW_HELD_OUT)
    # eight models are trained and seven evaluated: their run records' host speed probe (0.3 s each) and
    # evaluate's T-SNE map (seconds), which nothing here reads, are left out to keep the suite's time
    monkeypatch.setattr("i2i_unlearn.runs.host_speed", lambda: {})
    monkeypatch.setattr("i2i_unlearn.evaluation.evaluate.tsne_plot", lambda *a, **k: None)

    original = _train_shadow(tmp_path, seed=0)
    shadows_in = [_train_shadow(tmp_path, seed) for seed in (1, 2)]
    knobs = tmp_path / "knobs.yaml"
    knobs.write_text(yaml.safe_dump({"forget_classes": ["Cat"],   # a class's knobs: the request empties the class
                                     "steps": 2, "batch_size": 8, "alpha": 0.5, "checkpoint_every": 1,
                                     "tasks": [{"name": "center-inpaint", "ratio": 0.5}]}))
    spec = tmp_path / "robust-tiny-files.yaml"
    spec.write_text(yaml.safe_dump({
        "original": str(original), "evaluator": str(tiny_evaluator_dir),
        "files": {"count": 8, "seed": 0, "retrain_seeds": [0, 1, 2, 3], "keep_in": "kept"},
        "keep_methods_in": "kept-methods",
        "shadows_in": [str(d) for d in shadows_in], "methods": {"ours": {"knobs": str(knobs)}},
        "max_images": 6, "bootstrap": 20, "permutations": 0, "probe_folds": 2}))

    def run_benchmark():
        return robust.robust_benchmark(spec, tmp_path / "work", tmp_path, root=tmp_path,
                                       command="python benchmarks/robust.py")
    record = run_benchmark()
    rows, models = record["rows"], record["models"]
    assert list(rows) == ["original", "retrained", "ours", "retrained-2", "retrained-3", "retrained-4"]
    assert record["request"].startswith("forget 8 training images of every class")
    # the list: training images of several classes; every retrained seed trained without exactly those images
    ids = (tmp_path / record["forget_files"]).read_text().split()
    train_part = load_split(data).train
    label = dict(zip(train_part.ids, train_part.labels.tolist()))
    assert len(set(ids)) == 8 and set(ids) <= set(label) and len({label[i] for i in ids}) > 1
    for name, seed in (("retrained", 0), ("retrained-2", 1), ("retrained-3", 2), ("retrained-4", 3)):
        folder = tmp_path / models[name]   # kept in `files.keep_in`, whole, without its checkpoints
        assert folder == tmp_path / "kept" / (
            f"{original.name}-without-files-{sha256_file(tmp_path / record['forget_files'])[:12]}-seed{seed}")
        assert (folder / "SHA256").read_text().split()[0] == sha256_file(folder / "model.safetensors")
        assert not (folder / "checkpoints").exists() and not (folder.parent / f"{folder.name}.tmp").exists()
        made_from = json.loads((folder / "config.json").read_text())["unlearning"]   # named as in any checkout
        assert made_from["parent_dir"] == original.name and not Path(made_from["config"]["forget_files"]).is_absolute()
        run = json.loads((folder / "run.json").read_text())
        assert run["kind"] == "retrain" and run["config"]["seed"] == seed
        assert run["inputs"]["forget_count"] == 8 and run["inputs"]["train_count"] == len(train_part) - 8
        assert run["inputs"]["forget_ids_sha256"] == sha256_text("\n".join(ids))
        assert set((folder / "forgotten_ids.sha256").read_text().split()) == {sha256_text(i) for i in ids}
    ours = json.loads((tmp_path / models["ours"] / "run.json").read_text())
    assert ours["config"]["forget_classes"] == [] and ours["inputs"]["forget_count"] == 8
    assert models["ours"] == "kept-methods/ours"   # kept, and its list named relative to the root: found anywhere
    assert ours["config"]["forget_files"] == record["forget_files"] and not Path(record["forget_files"]).is_absolute()
    # LiRA: IN the shadows_in, OUT the retrained seeds after the first; the first is audited (held out), as are the
    # original and the method
    lira = json.loads((tmp_path / record["audits"]["lira"]).read_text())
    assert lira["forget"]["kind"] == "files"
    assert lira["lira"]["shadow_dirs"] == {"in": ["in-1", "in-2"],
                                           "out": [models[f"retrained-{i}"] for i in (2, 3, 4)]}
    assert record["lira_shadows"] == {"in": 2, "out": 3}
    for name in ("original", "retrained", "ours"):
        assert set(rows[name]["lira"]["intervals"]) == {"auc", "tpr_at_0.01_fpr", "tpr_at_0.001_fpr"}
    assert all(rows[f"retrained-{i}"]["lira"] is None for i in (2, 3, 4))
    # the band: every retrained seed, the floor its seeds after the first
    assert record["band"] == ["retrained", "retrained-2", "retrained-3", "retrained-4"]
    assert record["floor"]["models"] == ["retrained-2", "retrained-3", "retrained-4"]
    # recognition and relearning: not measured, not judged, and said so
    assert all(row["forget_recognition"] is None and row["relearning"] is None for row in rows.values())
    assert record["retrained_recognition"] is None and record["relearn_config"] is None
    targets = {t["name"].split(":")[0]: t for t in rows["ours"]["targets"]}
    assert targets["forget recognition"]["met"] is None and targets["relearning"]["met"] is None
    assert "not measured" in targets["forget recognition"]["name"]
    assert not any(t["name"].startswith("forget recognition at most") for t in rows["ours"]["targets"])
    assert targets["the tell"]["met"] is not None and rows["ours"]["cost"]["retrain_steps"] == 4
    page = (tmp_path / "robust-tiny-files.md").read_text()
    assert "Request: forget 8 training images of every class" in page
    assert "## Relearning\n\nNot measured: " in page and "Forget recognition: not measured" in page
    assert "## Relearning against the retrained band" not in page and "shadows trained with the files" in page
    # a second run computes nothing again, on a machine whose work folder lost the retrainings and the method's model
    # too: the kept ones serve
    for made in (*(tmp_path / "work").glob("files-*/retrain-seed*"), *(tmp_path / "work").glob("files-*/method-*")):
        shutil.rmtree(made)
    monkeypatch.setattr(robust, "run_audit", lambda *a, **k: pytest.fail("an audit ran again"))
    monkeypatch.setattr("i2i_unlearn.bench.audit_benchmark.unlearn", lambda *a, **k: pytest.fail("a model again"))
    assert run_benchmark()["rows"] == json.loads(json.dumps(rows))
    # the kept method's model is this request wherever the list lies (another work folder), by the ids it names
    kept_ours, request = tmp_path / models["ours"], load_yaml(UnlearnConfig, knobs)
    elsewhere = tmp_path / "elsewhere" / "forget-files.txt"
    elsewhere.parent.mkdir()
    for listed in (ids, ids[1:]):
        elsewhere.write_text("\n".join(listed) + "\n")
        request.forget_classes, request.forget_files = [], relative(elsewhere, tmp_path)
        assert robust._is_kept_unlearning(kept_ours, request, original, tmp_path) is (listed == ids)
    # a kept folder is used only when it is whole and is this retraining: this seed, this list, this original
    forgotten, original_sha256 = {sha256_text(i) for i in ids}, read_config_dir(original)["weights_sha256"]
    seed0, seed1 = tmp_path / models["retrained"], tmp_path / models["retrained-2"]
    assert robust._is_retraining(seed0, original_sha256, 0, forgotten)
    assert not robust._is_retraining(seed1, original_sha256, 0, forgotten)
    assert not robust._is_retraining(seed0, original_sha256, 0, forgotten - {sha256_text(ids[0])})
    assert not robust._is_retraining(seed0, "0" * 64, 0, forgotten)
    (seed0 / "model.safetensors").write_bytes(b"cut short")
    assert not robust._is_retraining(seed0, original_sha256, 0, forgotten)


@pytest.mark.slow
def test_the_robust_benchmark_audits_every_method_against_shadows_and_the_band(few_held_out_model_dir,
                                                                               tiny_evaluator_dir, tmp_path,
                                                                               monkeypatch, one_thread):
    from i2i_unlearn.unlearn import unlearn

    original = few_held_out_model_dir   # what _train_shadow(tmp_path, seed=0) would train
    shadows_in = [_train_shadow(tmp_path, seed) for seed in (1, 2)]
    retrained = []
    for seed in range(4):
        unlearn(original, tiny_unlearn_config(method="retrain", steps=2, seed=seed), tmp_path / f"out-{seed}")
        retrained.append(tmp_path / f"out-{seed}")
    knobs = tmp_path / "knobs.yaml"
    knobs.write_text(yaml.safe_dump({"steps": 2, "batch_size": 8, "alpha": 0.5, "checkpoint_every": 1,
                                     "tasks": [{"name": "center-inpaint", "ratio": 0.5}]}))
    undo_knobs = tmp_path / "undo.yaml"
    undo_knobs.write_text(yaml.safe_dump({"method": "undo", "steps": 3, "batch_size": 8, "alpha": 1.0,
                                          "checkpoint_every": 1, "tasks": [{"name": "center-inpaint", "ratio": 0.5}]}))
    spec = tmp_path / "robust-tiny.yaml"
    spec.write_text(yaml.safe_dump({
        "original": str(original), "evaluator": str(tiny_evaluator_dir), "forget_classes": ["Cat"],
        "retrained": [str(retrained[0]), str(retrained[1])], "shadows_in": [str(d) for d in shadows_in],
        "shadows_out": [str(d) for d in retrained[1:]],   # a band seed may be a shadow: LiRA audits only the first
        "methods": {"ours": {"knobs": str(knobs)}, "undo": {"knobs": str(undo_knobs), "starts_from": "ours"},
                    # like-retrained rows whose tune wrote no knobs: not audited, and said (not a stopped run)
                    "ours-like-retrained": {"knobs": "configs/like-retrained/absent.yaml", "optional": True},
                    "undo-like-retrained": {"knobs": str(undo_knobs), "starts_from": "ours-like-retrained",
                                            "optional": True}},
        "relearn": {"steps": 2, "images": 4, "batch_size": 4, "lr": 1e-3, "eval_steps": [0, 2],
                    "attack_seeds": [0, 1], "quantize_bits": [8]},
        "max_images": 6, "bootstrap": 20, "permutations": 4, "probe_folds": 2, "keep_methods_in": "kept"}))

    def run_benchmark():
        return robust.robust_benchmark(spec, tmp_path / "work", tmp_path, root=tmp_path,
                                       command="python benchmarks/robust.py")
    record = run_benchmark()
    rows = record["rows"]
    assert record["not_audited"] == {
        "ours-like-retrained": "no knobs file configs/like-retrained/absent.yaml (its tune kept the retain set at no "
                               "trial it could choose)",
        "undo-like-retrained": "it starts from ours-like-retrained, not audited"}
    assert not set(record["not_audited"]) & set(rows) and set(record["spec"]["methods"]) >= set(record["not_audited"])
    assert "Not audited: `ours-like-retrained`: no knobs file" in (tmp_path / "robust-tiny.md").read_text()
    assert list(rows) == ["original", "retrained", "ours", "undo", "retrained-2"]
    # each method's model kept whole in `keep_methods_in`, named by its row, its start recorded relative to the root
    for name, start in (("ours", original), ("undo", tmp_path / "kept" / "ours")):
        kept = tmp_path / "kept" / name
        assert record["models"][name] == f"kept/{name}"
        assert (kept / "SHA256").read_text().split()[0] == sha256_file(kept / "model.safetensors")
        assert not (kept / "checkpoints").exists()
        lineage = json.loads((kept / "config.json").read_text())["unlearning"]
        assert lineage["parent_weights_sha256"] == read_config_dir(start)["weights_sha256"]
        assert lineage["parent_dir"] == relative(start, tmp_path)   # "kept/ours" for undo
    # LiRA on the original, the held-out retrained seed and the methods, with intervals; not on the band's other seed
    assert record["lira_shadows"] == {"in": 2, "out": 3}
    for name in ("original", "retrained", "ours", "undo"):
        assert set(rows[name]["lira"]["intervals"]) == {"auc", "tpr_at_0.01_fpr", "tpr_at_0.001_fpr"}
    assert rows["retrained-2"]["lira"] is None
    # relearning: every attack, each model read against the band (a band seed against the other's)
    assert set(rows["ours"]["relearning"]) == {"whole", "decoder-frozen", "retain-finetune", "quantize-8"}
    band = json.loads((tmp_path / "robust-tiny" / "band" / "audit.json").read_text())["relearning"]
    assert band["band"]["members"] == ["retrained", "retrained-2"]
    assert band["models"]["retrained"]["variants"]["whole"]["band_held_out"]
    assert band["config"]["attack_seeds"] == [0, 1]
    # undo started from ours: its cost counts both runs' steps, against the retrained seeds' training steps
    undo_run = json.loads((tmp_path / "work" / "method-undo" / "run.json").read_text())
    assert undo_run["config"]["method"] == "undo" and rows["undo"]["cost"]["steps"] == 2 + 3
    # (retraining follows the original's recipe: 4 steps)
    assert rows["ours"]["cost"]["steps"] == 2 and rows["ours"]["cost"]["retrain_steps"] == 4
    assert rows["ours"]["cost"]["step_share"] == 0.5 and rows["undo"]["cost"]["step_share"] == 1.25
    # every run here recorded its machine's speed: the time share at the reference speed, by hand
    from i2i_unlearn.evaluation.bench_cost import at_reference
    ours_run = json.loads((tmp_path / "work" / "method-ours" / "run.json").read_text())
    retrains = [json.loads((folder / "run.json").read_text()) for folder in retrained[:2]]
    expected = at_reference(ours_run["wall_time_s"], ours_run["host"]) / (
        sum(at_reference(r["wall_time_s"], r["host"]) for r in retrains) / len(retrains))
    assert rows["ours"]["cost"]["time_share_at_reference"] == pytest.approx(expected, abs=1e-4)
    # the floor and the targets
    assert record["floor"]["models"] == ["retrained-2"]
    assert {t["name"] for t in rows["ours"]["targets"]} >= {"the tell: probe accuracy at most the floor + 0.05"}
    # every number of the tell table with its interval: the probe's and the recognition's (Wilson), the FID's
    for name in ("ours", "undo"):
        row = rows[name]
        for value, interval in ((row["probe_accuracy"], row["probe_interval"]),
                                (row["forget_recognition"], row["forget_recognition_interval"]),
                                (row["forget_fid"], row["forget_fid_interval"])):
            assert interval[0] <= value <= interval[1] and interval[0] < interval[1], name
        tell = next(t for t in row["targets"] if t["name"].startswith("the tell"))
        assert tell["interval"] == row["probe_interval"]
    assert "targets" not in rows["original"]
    page = (tmp_path / "robust-tiny.md").read_text()
    for heading in ("## Per-example membership (LiRA)", "## Relearning against the retrained band", "## Targets"):
        assert heading in page
    assert (tmp_path / record["figures"]["relearning"]).is_file()
    # a second run computes nothing again
    with monkeypatch.context() as patched:
        patched.setattr(robust, "run_audit", lambda *a, **k: pytest.fail("an audit ran again"))
        patched.setattr("i2i_unlearn.bench.audit_benchmark.unlearn", lambda *a, **k: pytest.fail("a model again"))
        assert run_benchmark()["rows"] == json.loads(json.dumps(rows))
    # the audits' work folders gone (a fresh machine keeps no runs/) but the results' cache kept: the audits run
    # again without relearning or scoring any model for LiRA, and say the same (a file per model of the band audit,
    # and per audited model and shadow of LiRA's)
    cache = tmp_path / "robust-tiny" / "cache"
    assert len(list(cache.glob("relearn-*.json"))) == 5 and len(list(cache.glob("lira-*.json"))) == 4 + 2 + 3
    for audit in ("audit-band", "audit-lira"):
        shutil.rmtree(tmp_path / "work" / audit)
    monkeypatch.setattr("i2i_unlearn.evaluation.audit.relearn.relearn_curves",
                        lambda *a, **k: pytest.fail("a model relearned again"))
    monkeypatch.setattr("i2i_unlearn.evaluation.audit.run.restoration_errors",
                        lambda *a, **k: pytest.fail("a model scored again for LiRA"))
    assert run_benchmark()["rows"] == json.loads(json.dumps(rows))
    # the whole work folder gone, as on another machine: the kept models serve, no method unlearns again (their
    # weights, so the cached relearning and LiRA, are the same); a kept model of other knobs is not used
    shutil.rmtree(tmp_path / "work")
    monkeypatch.setattr("i2i_unlearn.bench.audit_benchmark.unlearn", lambda *a, **k: pytest.fail("a model again"))
    assert run_benchmark()["rows"] == json.loads(json.dumps(rows))
    knobs_now = load_yaml(UnlearnConfig, knobs)
    knobs_now.forget_classes = ["Cat"]
    assert robust._is_kept_unlearning(tmp_path / "kept" / "ours", knobs_now, original, tmp_path)
    knobs_now.alpha = 0.25
    assert not robust._is_kept_unlearning(tmp_path / "kept" / "ours", knobs_now, original, tmp_path)
    # a tuning run's trials of the same knobs from the same start (named <method>-<key>) serve instead of unlearning
    # again (unlearn still fails here), and are kept; one of other knobs beside them is passed over
    trials = tmp_path / "tune-work"
    for name, key in (("ours", "1f"), ("undo", "2e")):
        shutil.copytree(tmp_path / "kept" / name, trials / f"{name}-{key}")
    shutil.copytree(tmp_path / "out-1", trials / "ours-0a")   # a retraining: another method, not this row's knobs
    weights = {name: sha256_file(tmp_path / "kept" / name / "model.safetensors") for name in ("ours", "undo")}
    shutil.rmtree(tmp_path / "kept")
    values = yaml.safe_load(spec.read_text())
    spec.write_text(yaml.safe_dump({**values, "reuse_models_from": [str(trials)]}))
    assert robust._made_before([trials], load_yaml(UnlearnConfig, knobs), original, tmp_path) is None  # no class
    assert run_benchmark()["rows"] == json.loads(json.dumps(rows))
    assert {name: sha256_file(tmp_path / "kept" / name / "model.safetensors") for name in weights} == weights
    # the same request naming no shadows (a family trained with one seed): every other measurement is the cached one
    # above (nothing relearns or is scored again), LiRA is not run, and the record and its targets say so
    values = yaml.safe_load(spec.read_text())
    del values["shadows_in"], values["shadows_out"]
    spec.write_text(yaml.safe_dump(values))
    without = run_benchmark()
    assert without["not_measured"] == robust.NOT_MEASURED_WITHOUT_SHADOWS and without["lira_shadows"] is None
    assert "lira" not in without["audits"] and "lira_roc" not in without["figures"]
    for name, row in without["rows"].items():
        assert row["lira"] is None
        assert {k: v for k, v in row.items() if k not in ("lira", "targets")} == \
            {k: v for k, v in json.loads(json.dumps(rows[name])).items() if k not in ("lira", "targets")}
    assert [t["met"] for t in without["rows"]["ours"]["targets"] if "LiRA" in t["name"]] == [None]
    assert "Not measured: no shadow models given" in (tmp_path / "robust-tiny.md").read_text()
