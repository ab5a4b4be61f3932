"""The commands that start a model (train, import) read an image folder batch by batch: what they generate and check
equals what the in-memory path gives, and their record names the data by its files' hashes."""
import json

import pytest
import torch
from builders import make_mae
from conftest import TINY_MAE, tiny_train_config, tiny_unlearn_config
from test_streamed import write_folder
from typer.testing import CliRunner

from i2i_unlearn.cli import app
from i2i_unlearn.config import DataConfig, TaskConfig
from i2i_unlearn.data import load_split, make_unlearn_split, open_split
from i2i_unlearn.data.file_hashes import FILE_HASHES
from i2i_unlearn.lineage import training_data_config
from i2i_unlearn.models import build_model, load_model
from i2i_unlearn.models.generation import GENERATION_BATCH, generate_batches, generate_outputs, hidden_mse
from i2i_unlearn.tasks import degrade
from i2i_unlearn.train import train, validation_check

pytestmark = pytest.mark.usefixtures("one_thread")   # conftest.py


@pytest.fixture(scope="module")
def grey_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("grey") / "photos"
    write_folder(root, {"cats": 90, "dogs": 80}, size=32)
    return DataConfig(dataset="image-folder", root=str(root), image_size=32, channels=1, test_per_class=5,
                      val_per_class=70)


def test_generating_batch_by_batch_gives_what_generating_the_tensor_gives(grey_folder):
    torch.manual_seed(0)
    model = build_model(TINY_MAE).eval()
    streamed = open_split(grey_folder).val
    assert len(streamed) > GENERATION_BATCH   # two batches: the second batch's randomness follows its position
    task = TaskConfig("random-patches", 0.5)
    outputs, masks = generate_outputs(model, streamed.materialize().images, task, seed=3)
    parts = list(generate_batches(model, (b.images for b in streamed.batches(GENERATION_BATCH)), task, seed=3))
    assert torch.equal(torch.cat([p[1] for p in parts]), outputs) and torch.equal(torch.cat([p[2] for p in parts]), masks)


def test_the_validation_check_reads_batches_and_gives_the_whole_tensors_numbers(grey_folder):
    torch.manual_seed(0)
    model = build_model(TINY_MAE).eval()
    streamed, in_memory = open_split(grey_folder), load_split(grey_folder)
    check = validation_check(model, streamed.val, streamed.train)
    assert check == validation_check(model, in_memory.val, in_memory.train)
    # what the check computed before it read batches: every output and the mean image of the whole tensors
    truth = in_memory.val.images
    outputs, masks = generate_outputs(model, truth, TaskConfig("center-inpaint", 0.5))
    fill = degrade(truth, masks, in_memory.train.images.mean(dim=0, keepdim=True))
    assert check["hidden_mse"] == pytest.approx(hidden_mse(outputs, truth, masks), abs=1e-5)
    assert check["mean_fill_hidden_mse"] == pytest.approx(hidden_mse(fill, truth, masks), abs=1e-5)


def test_training_on_a_folder_streams_it_and_records_its_files_hash(grey_folder, tmp_path):
    config = tiny_train_config(steps=2)
    config.data = grey_folder
    train(config, tmp_path / "model")
    inputs = json.loads((tmp_path / "model" / "run.json").read_text())["inputs"]
    assert inputs["train_images_hash"] == "files" and inputs["train_count"] == 170 - 2 * 75
    assert inputs["split"] == load_split(grey_folder).describe()
    cached = json.loads((tmp_path / "model" / FILE_HASHES).read_text())["files"]
    assert len(cached) == 20 and inputs["train_images"] == open_split(grey_folder).train.content_hash()


def test_import_with_a_hashed_split_records_it_and_unlearning_finds_the_same_parts(grey_folder, tmp_path):
    make_mae(tmp_path / "hf-mae")
    (tmp_path / "data.yaml").write_text("split: hashed\ntest_fraction: 0.2\nval_fraction: 0.1\nsplit_seed: 4\n")
    result = CliRunner().invoke(app, ["import", "--family", "mae", "--from-pretrained", str(tmp_path / "hf-mae"),
                                      "--out", str(tmp_path / "mae"), "--dataset", "image-folder", "--data-root",
                                      grey_folder.root, "--data-config", str(tmp_path / "data.yaml")])
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    recorded = training_data_config(load_model(tmp_path / "mae"))
    assert (recorded.split, recorded.test_fraction, recorded.split_seed) == ("hashed", 0.2, 4)
    inputs = json.loads((tmp_path / "mae" / "run.json").read_text())["inputs"]
    parts = load_split(recorded)
    assert inputs["split"] == parts.describe() and inputs["train_images_hash"] == "files"
    request = make_unlearn_split(recorded, tiny_unlearn_config(forget_classes=["cats"]))
    assert set(request.forget_eval.ids) == {i for i in parts.test.ids if i.startswith("cats/")}


def test_unlearning_evaluating_and_auditing_a_folder_never_read_a_whole_set(grey_folder, tmp_path, monkeypatch,
                                                                           tiny_evaluator_dir):
    """Issue 34: the request's sets stay on disk. Reading a folder whole (load_split) fails here, as does holding
    more images than the small samples the budget, the retain check and the audit keep (at most 64 here)."""
    import i2i_unlearn.data.splits as splits
    from i2i_unlearn.data import FolderImages
    from i2i_unlearn.evaluation.audit import AuditOptions, run_audit
    from i2i_unlearn.evaluation.evaluate import evaluate_model_dirs
    from i2i_unlearn.unlearn import unlearn
    config = tiny_train_config(steps=2)
    config.data = grey_folder
    train(config, tmp_path / "model")
    materialize = FolderImages.materialize

    def small_only(images):
        assert len(images) <= 64, f"{len(images)} images read at once"
        return materialize(images)
    monkeypatch.setattr(splits, "load_dataset", lambda config: pytest.fail("the folder was read whole"))
    monkeypatch.setattr(FolderImages, "materialize", small_only)
    unlearn(tmp_path / "model", tiny_unlearn_config(forget_classes=["cats"], retain_budget=1.5,
                                                    budget_metric="hole-mse", budget_images=64),
            tmp_path / "unlearned")
    assert json.loads((tmp_path / "unlearned" / "config.json").read_text())["unlearning"]["retain_check"]
    # the evaluator is 1-channel 32 px like the folder's images; its classes are not the folder's (no recognition)
    results = evaluate_model_dirs({"original": tmp_path / "model", "unlearned": tmp_path / "unlearned"},
                                  TaskConfig("center-inpaint", 0.5), tiny_evaluator_dir, tmp_path / "evaluation",
                                  bootstrap=10)
    assert results["sets"]["retain"]["count"] == 5 and results["metrics"]["unlearned"]["retain"]["fid"] is not None
    audit = run_audit({"original": tmp_path / "model", "unlearned": tmp_path / "unlearned"}, tmp_path / "audit",
                      evaluator_spec=tiny_evaluator_dir, reference="original",
                      options=AuditOptions(max_images=None, split="val", probe_folds=2, permutations=0),
                      progress=None)
    assert audit["forget"]["members"]["count"] == 15 and audit["forget"]["non_members"]["count"] == 70


def test_data_workers_read_the_steps_images_and_the_run_ends_bit_identical(grey_folder, tmp_path, monkeypatch):
    """`data_workers`: worker processes read the coming steps' images from the folder; the batches, and so the
    trained and the unlearned weights, are those of a run that reads them itself."""
    import os

    from safetensors.torch import load_file

    from i2i_unlearn.data import FolderImages
    from i2i_unlearn.unlearn import unlearn
    readers = tmp_path / "readers.txt"
    read = FolderImages.read

    def logged(images, positions):
        with readers.open("a") as log:
            log.write(f"{os.getpid()}\n")
        return read(images, positions)
    monkeypatch.setattr(FolderImages, "read", logged)
    weights = {}
    for workers in (0, 2):
        readers.write_text("")
        config = tiny_train_config(steps=3)
        config.data, config.data_workers = grey_folder, workers or None
        train(config, tmp_path / f"model-{workers}")
        unlearn(tmp_path / f"model-{workers}", tiny_unlearn_config(forget_classes=["cats"], steps=3,
                                                                   data_workers=workers or None),
                tmp_path / f"unlearned-{workers}")
        pids = set(readers.read_text().split())
        assert (pids == {str(os.getpid())}) if workers == 0 else (len(pids - {str(os.getpid())}) >= 2), pids
        weights[workers] = [load_file(tmp_path / f"{kind}-{workers}" / "model.safetensors")
                            for kind in ("model", "unlearned")]
    recorded = json.loads((tmp_path / "unlearned-2" / "run.json").read_text())["config"]
    assert recorded["data_workers"] == 2
    assert "data_workers" not in json.loads((tmp_path / "unlearned-0" / "run.json").read_text())["config"]
    for serial, parallel in zip(weights[0], weights[2]):
        assert serial.keys() == parallel.keys() and all(torch.equal(serial[k], parallel[k]) for k in serial)


def test_a_read_error_in_a_data_worker_is_the_runs_own_error():
    from i2i_unlearn.errors import UserError
    from i2i_unlearn.loop import step_batches

    def make_batch(step, generator):
        if step == 2:
            raise UserError("photos/cats/002.jpg: cannot read this image (truncated)")
        return {"x": torch.rand(2, generator=generator), "generator": generator}
    batches = step_batches(make_batch, seed=0, start=0, steps=4, workers=1)
    first = next(batches)
    serial = next(step_batches(make_batch, seed=0, start=0, steps=4))
    assert torch.equal(first["x"], serial["x"])
    assert torch.equal(first["generator"].get_state(), serial["generator"].get_state())   # the objective draws on
    next(batches)
    with pytest.raises(UserError, match="002.jpg: cannot read this image"):
        next(batches)


def test_train_evaluator_reads_a_folder_batch_by_batch_and_trains_what_the_tensor_trains(grey_folder, tmp_path,
                                                                                        monkeypatch):
    from safetensors.torch import load_file

    import i2i_unlearn.evaluation.evaluator as evaluator_module
    from i2i_unlearn.config import EvaluatorConfig
    from i2i_unlearn.data import ImageSet, ImageSource
    config = EvaluatorConfig(data=grey_folder, steps=3, batch_size=16, width=4, feature_dim=8, log_every=1)
    # the mean image (the no-object fill) of a folder is summed batch by batch in float64, the tensor's at once in
    # float32: equal to 1e-7, which Adam's first steps can turn into a whole step; both runs take the tensor's
    mean = load_split(grey_folder).train.mean_image()
    assert torch.allclose(open_split(grey_folder).train.mean_image(), mean, atol=1e-6)
    monkeypatch.setattr(ImageSource, "mean_image", lambda images, batch_size=256: mean)
    monkeypatch.setattr(ImageSet, "mean_image", lambda images, batch_size=256: mean)
    in_memory = tmp_path / "in-memory"
    with monkeypatch.context() as patch:
        patch.setattr(evaluator_module, "open_split", load_split)
        evaluator_module.train_evaluator(config, in_memory)
    import i2i_unlearn.data.splits as splits
    monkeypatch.setattr(splits, "load_dataset", lambda config: pytest.fail("the folder was read whole"))
    streamed = evaluator_module.train_evaluator(config, tmp_path / "streamed")
    a, b = (load_file(folder / "model.safetensors") for folder in (in_memory, tmp_path / "streamed"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    recorded = json.loads((in_memory / "config.json").read_text())
    assert streamed.info["test_accuracy_by_class"] == recorded["test_accuracy_by_class"]


def test_tuning_scores_a_folders_validation_images_batch_by_batch(grey_folder, tmp_path, monkeypatch,
                                                                   tiny_evaluator_dir):
    """bench tune on a folder model: its validation sets are read in batches, and score what the tensors score."""
    import i2i_unlearn.data.requests as requests
    from i2i_unlearn.bench.tune import score
    from i2i_unlearn.config import UnlearnConfig
    from i2i_unlearn.evaluation.evaluator import load_evaluator
    config = tiny_train_config(steps=2)
    config.data = grey_folder
    model = train(config, tmp_path / "model").eval()
    evaluator = load_evaluator(tiny_evaluator_dir)
    request = UnlearnConfig(forget_classes=["cats"])
    streamed = make_unlearn_split(grey_folder, request, eval_split="val")
    from i2i_unlearn.data import ImageSet
    assert not isinstance(streamed.retain_eval, ImageSet)   # on disk
    task = TaskConfig("center-inpaint", 0.5)
    on_disk = score(model, streamed, evaluator, task, [], seed=0)
    monkeypatch.setattr(requests, "open_split", load_split)
    in_memory = score(model, make_unlearn_split(grey_folder, request, eval_split="val"), evaluator, task, [], seed=0)
    assert on_disk == in_memory and on_disk["retain"]["count"] == 70 and on_disk["retain"]["fid_hw"] > 0
