"""Proxy retain sets (data/proxy.py, docs/proxy.md): each kind does what its name says on real images, a proxy of the
model's own outputs comes from the teacher and never from a forget image, the options are recorded, bad names are
refused clearly, a budget measures the proxy's own validation images, and the proxy benchmark
(bench/proxy_benchmark.py, run by benchmarks/proxy.py) runs end to end."""
import json
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image
from typer.testing import CliRunner

import i2i_unlearn.controllers.validation as validation_module
from i2i_unlearn.cli import app
from i2i_unlearn.config import DataConfig, ProxyTeacherConfig, TaskConfig, UnlearnConfig, from_dict, to_dict
from i2i_unlearn.data import load_split, make_unlearn_split
from i2i_unlearn.data.datasets import FASHION_MNIST_DEFAULT_ROOT, ImageSet, _read_idx
from i2i_unlearn.data.proxy import (SEED_OFFSETS, _noise_inputs, apply_transforms, augment, binarize, pixel_keys,
                                    teacher_outputs)
from i2i_unlearn.errors import UserError
from i2i_unlearn.models import load_model
from i2i_unlearn.unlearn import check_config, unlearn
from conftest import FEW_HELD_OUT, tiny_unlearn_config

pytestmark = pytest.mark.usefixtures("one_thread", "datasets_read_once")

# a model held out 5 test and 5 validation images per class: evaluating it (the benchmark) takes seconds
DATA = DataConfig(**FEW_HELD_OUT)
runner = CliRunner()


def _fashion(count: int, label: int | None = None) -> torch.Tensor:
    """Real Fashion-MNIST test images (28x28, zero-padded to 32x32 like the dataset loader), of one class."""
    root = Path(FASHION_MNIST_DEFAULT_ROOT)
    if not root.is_dir():
        pytest.skip("reads real Fashion-MNIST images: Debian's dataset-fashion-mnist is not installed (make fashion-mnist)")
    pixels = torch.from_numpy(_read_idx(root / "t10k-images-idx3-ubyte.gz").copy()).float() / 255
    labels = torch.from_numpy(_read_idx(root / "t10k-labels-idx1-ubyte.gz").astype("int64"))
    if label is not None:
        pixels = pixels[labels == label]
    return torch.nn.functional.pad(pixels[:count], (2, 2, 2, 2)).unsqueeze(1)


def _save(images: torch.Tensor, folder: Path) -> None:
    folder.mkdir(parents=True)
    for i, image in enumerate(images):
        Image.fromarray((image[0] * 255).round().to(torch.uint8).numpy(), "L").save(folder / f"{i:02d}.png")


@pytest.fixture(scope="module")
def datasets_read_once():
    """Each dataset read from disk once in this module (the loads are deterministic; every split, unlearning and
    evaluation here reads Animal-MNIST again, about 2 s each)."""
    import i2i_unlearn.data.splits as splits
    read, memo = splits.load_dataset, {}

    def load_dataset(config):
        key = json.dumps(to_dict(config), sort_keys=True)
        if key not in memo:
            memo[key] = read(config)
        return memo[key]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(splits, "load_dataset", load_dataset)
        yield


@pytest.fixture(scope="module")
def model_dir(few_held_out_model_dir) -> Path:
    return few_held_out_model_dir   # a tiny MAE trained on DATA's split


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> DataConfig:
    """An image-folder proxy: 10 real Bags and 10 real Sandals of Fashion-MNIST, and 10 copies of the model's own Cat
    training images (forget images: they must never enter a proxy). 32x32 PNGs, so the pixels load unchanged."""
    root = tmp_path_factory.mktemp("proxy-folder")
    _save(_fashion(10, label=8), root / "Bag")
    _save(_fashion(10, label=5), root / "Sandal")
    own = load_split(DATA).train
    _save(own.images[own.labels == own.class_names.index("Cat")][:10], root / "copies")
    return DataConfig(dataset="image-folder", root=str(root), test_per_class=2, val_per_class=2)


def _folder_part(folder: DataConfig, part: str, without_copies: bool = True):
    images = load_split(folder).part(part)
    if without_copies:
        images = images.subset([i for i, name in enumerate(images.ids) if not name.startswith("copies")])
    return images


# --- the transforms, on real images ---------------------------------------------------------------------------

def test_binarize_turns_real_images_into_white_on_black_silhouettes():
    clothes = _fashion(64)
    silhouettes = binarize(clothes)
    assert silhouettes.shape == clothes.shape and set(silhouettes.unique().tolist()) == {0.0, 1.0}
    assert silhouettes[..., 0, :].max() == 0 and silhouettes[..., :, 0].max() == 0   # black ground
    assert (silhouettes.flatten(1).sum(1) > 0).all()                                  # every garment a shape
    bright = clothes > 0.5
    assert silhouettes[bright].float().mean() > 0.97                                  # its bright parts are in it
    assert silhouettes.mean() > (clothes > 0.5).float().mean()                        # dark parts inside filled
    # a dark garment on a light ground is the same silhouette
    assert (binarize(1 - clothes) == silhouettes).float().mean() > 0.97
    # Animal-MNIST images already are silhouettes: they stay (nearly) themselves
    animals = load_split(DATA).val.images[:64]
    assert ((binarize(animals) == (animals > 0.5).float()).float().mean()) > 0.97
    # holes inside a shape are filled
    ring = torch.zeros(1, 1, 32, 32)
    ring[..., 8:24, 8:24] = 1
    ring[..., 12:20, 12:20] = 0
    filled = torch.zeros(1, 1, 32, 32)
    filled[..., 8:24, 8:24] = 1
    assert torch.equal(binarize(ring), filled)


def test_augment_flips_rotates_scales_and_shifts_real_images():
    clothes = _fashion(64)
    moved = augment(clothes, torch.Generator().manual_seed(0))
    assert moved.shape == clothes.shape and moved.min() >= 0 and moved.max() <= 1
    changed = (moved - clothes).abs().flatten(1).amax(1) > 0.1
    assert changed.all()                                                # every image moved
    assert torch.equal(moved, augment(clothes, torch.Generator().manual_seed(0)))   # seeded
    assert not torch.equal(moved, augment(clothes, torch.Generator().manual_seed(1)))
    mass = moved.flatten(1).sum(1) / clothes.flatten(1).sum(1)
    assert mass.median().item() == pytest.approx(1.0, abs=0.25)         # the garment stays in the frame
    # in a list, transforms apply in order: binarize then augment = augment of the silhouettes
    images = load_split(DATA).val.subset(range(8))
    done = apply_transforms(images, ["binarize", "augment"], seed=3)
    assert torch.equal(done.images, augment(binarize(images.images),
                                            torch.Generator().manual_seed(3 + SEED_OFFSETS["augment"])))
    assert done.ids == images.ids


def test_a_proxy_on_disk_is_transformed_as_it_is_read_each_image_by_its_own_draw(folder):
    """An image folder proxy is never read whole: its transforms apply to each batch read, binarize as on a set in
    memory, augment with a draw that depends on the run's seed and the image's id, not on the batch."""
    from i2i_unlearn.data import open_split
    on_disk = open_split(folder).train
    done = apply_transforms(on_disk, ["binarize", "augment"], seed=3)
    assert not isinstance(done, ImageSet) and done.ids == on_disk.ids
    whole = done.load(range(len(done)))
    assert torch.equal(torch.cat([done.load([i]) for i in reversed(range(len(done)))]), whole.flip(0))
    assert torch.equal(done.subset([4, 1]).load([0, 1]), whole[[4, 1]])
    assert torch.equal(apply_transforms(on_disk, ["binarize", "augment"], seed=3).load(range(len(done))), whole)
    assert not torch.equal(apply_transforms(on_disk, ["binarize", "augment"], seed=4).load(range(len(done))), whole)
    silhouettes = binarize(on_disk.load(range(len(on_disk))))
    assert torch.equal(apply_transforms(on_disk, ["binarize"], seed=3).load(range(len(done))), silhouettes)
    moved = (whole - silhouettes).abs().flatten(1).amax(1) > 0.1
    assert moved.all()                                                   # every image augmented
    assert done.content_hash() != apply_transforms(on_disk, ["binarize"], seed=3).content_hash()


def test_a_transformed_proxy_never_holds_a_forget_image(folder):
    config = UnlearnConfig(forget_classes=["Cat"], proxy=folder, proxy_transform=["binarize"])
    split = make_unlearn_split(DATA, config)
    expected = _folder_part(folder, "train")
    assert split.retain_train.ids == expected.ids                          # Bags and Sandals only
    assert not isinstance(split.retain_train, ImageSet)   # a folder proxy stays on disk, binarized as it is read
    retain_pixels = split.retain_train.materialize().images
    assert torch.equal(retain_pixels, binarize(expected.images))
    assert split.proxy["excluded_own_images"] == 6                          # the 6 copies of Cat training images
    assert split.proxy["kind"] == "images" and split.proxy["transform"] == ["binarize"]
    assert split.proxy["source"] == "train of the proxy image-folder, binarize"
    assert not set(pixel_keys(retain_pixels)) & set(pixel_keys(split.forget_train.images))
    # the real retain images are still what the retain check scores
    assert 2 not in split.retain_eval.labels.tolist() and len(split.retain_eval) == 45
    # the model's own dataset named as the proxy: only what the real retain set may hold (here neither Cat, forgotten
    # now, nor Dog, forgotten by an earlier request), never a held-out image
    own = make_unlearn_split(DATA, UnlearnConfig(forget_classes=["Cat"], proxy=DATA), forgotten_classes=["Dog"])
    names = own.train.class_names
    assert not {names.index("Cat"), names.index("Dog")} & set(own.retain_train.labels.tolist())
    assert own.proxy["excluded_own_images"] == len(own.train) - len(own.retain_train) >= (
        torch.isin(own.train.labels, torch.tensor([names.index("Cat"), names.index("Dog")])).sum())
    held_out = load_split(DATA)
    assert not set(pixel_keys(own.retain_train.images)) & set(pixel_keys(torch.cat([held_out.val.images,
                                                                                      held_out.test.images])))
    # retain_size samples the proxy as it samples a real retain set
    assert len(make_unlearn_split(DATA, UnlearnConfig(forget_classes=["Cat"], proxy=folder, retain_size=5))
               .retain_train) == 5


# --- the model's own outputs ----------------------------------------------------------------------------------

def _spy_inputs(model, seen: list):
    real = model.generate

    def generate(x, mask, generator=None):
        seen.append(x.clone())
        return real(x, mask, generator)
    model.generate = generate


def test_a_proxy_of_the_models_own_outputs_comes_from_the_teacher(model_dir, folder):
    teacher = load_model(model_dir)
    seen = []
    _spy_inputs(teacher, seen)
    task = TaskConfig("random-patches", 0.75)
    config = UnlearnConfig(forget_classes=["Cat"], proxy=folder, proxy_teacher=ProxyTeacherConfig(task=task))
    split = make_unlearn_split(DATA, config, "val", teacher=teacher)
    inputs = _folder_part(folder, "train")
    assert split.retain_train.ids == [f"teacher:{i}" for i in inputs.ids]
    # no forget image was an input: only the proxy's own images
    fed = torch.cat(seen)
    assert torch.equal(fed, inputs.images)
    assert not set(pixel_keys(fed)) & set(pixel_keys(split.forget_train.images))
    # the teacher's completions of those inputs under 3/4 hidden patches, made once with the run's seed
    outputs, masks = teacher_outputs(teacher, inputs.images, task, config.seed + SEED_OFFSETS["teacher"])
    assert torch.equal(split.retain_train.images, outputs)
    assert masks.mean().item() == pytest.approx(0.75)
    with torch.no_grad():
        assert torch.equal(outputs, teacher.generate(inputs.images, masks))
    visible = masks.expand_as(outputs) == 0
    assert torch.equal(outputs[visible], inputs.images[visible])
    assert not torch.equal(outputs[~visible], inputs.images[~visible])    # the hidden part is the model's
    assert split.proxy["kind"] == "teacher-outputs" and split.proxy["teacher"]["seed"] == SEED_OFFSETS["teacher"]

    # noise inputs: no dataset; the retain-set size caps how many are generated
    seen.clear()
    config = UnlearnConfig(forget_classes=["Cat"], retain_size=8,
                           proxy_teacher=ProxyTeacherConfig(inputs="noise", images=20))
    split = make_unlearn_split(DATA, config, "val", teacher=teacher)
    assert len(split.retain_train) == 8 and split.retain_train.ids[0] == "teacher:noise/00000"
    fed = torch.cat(seen)
    assert len(fed) == 8 and not set(pixel_keys(fed)) & set(pixel_keys(load_split(DATA).train.images))
    assert split.proxy["source"] == "the original's outputs (random-patches 0.75 hidden) of train noise (uniform)"
    # retain_ratio too, and `images` caps it
    config.retain_size, config.retain_ratio = None, 0.01
    assert len(make_unlearn_split(DATA, config, "val", teacher=teacher).retain_train) == round(
        0.01 * len(split.forget_train))
    config.proxy_teacher.images = 3
    assert len(make_unlearn_split(DATA, config, "val", teacher=teacher).retain_train) == 3


@pytest.mark.parametrize("family", ["diffusion", "vqgan"])
def test_every_family_makes_its_own_outputs_proxy(tiny_model_dirs, family):
    teacher = load_model(tiny_model_dirs[family])
    config = UnlearnConfig(forget_classes=["Cat"], proxy_teacher=ProxyTeacherConfig(inputs="noise", images=6))
    split = make_unlearn_split(DataConfig(), config, "val", teacher=teacher)
    noise = _noise_inputs(config, 6, (1, 32, 32), "train").images
    outputs, masks = teacher_outputs(teacher, noise, config.proxy_teacher.task, SEED_OFFSETS["teacher"])
    assert torch.equal(split.retain_train.images, outputs) and masks.mean().item() == pytest.approx(0.75)
    visible = masks.expand_as(outputs) == 0
    assert torch.equal(outputs[visible], noise[visible]) and outputs.min() >= 0 and outputs.max() <= 1


# --- recorded, refused, measured ------------------------------------------------------------------------------

def test_proxy_options_are_recorded_in_run_json(model_dir, folder, tmp_path):
    # the command line: a config file names the proxy folder (its split), the flags add the transforms and the
    # model's own outputs of the transformed images
    config = tmp_path / "unlearn.yaml"
    config.write_text(yaml.safe_dump({"forget_classes": ["Cat"], "steps": 2, "batch_size": 4,
                                      "proxy": to_dict(folder)}))
    out = tmp_path / "out"
    result = runner.invoke(app, ["unlearn", "--model", str(model_dir), "--out", str(out), "--config", str(config),
                                 "--proxy-transform", "binarize", "--proxy-transform", "augment",
                                 "--proxy-teacher", "proxy", "--proxy-teacher-images", "10",
                                 "--proxy-teacher-ratio", "0.5"])
    assert result.exit_code == 0, result.output
    record = json.loads((out / "run.json").read_text())
    teacher = {"inputs": "proxy", "noise": "uniform", "task": {"name": "random-patches", "ratio": 0.5}, "images": 10}
    assert record["config"]["proxy_transform"] == ["binarize", "augment"]
    assert record["config"]["proxy_teacher"] == teacher
    proxy = record["inputs"]["proxy"]
    assert proxy["kind"] == "teacher-outputs" and proxy["count"] == 10 == record["inputs"]["retain_count"]
    assert proxy["transform"] == ["binarize", "augment"] and proxy["excluded_own_images"] == 6
    assert proxy["source"] == ("the original's outputs (random-patches 0.5 hidden) of train of the proxy "
                               "image-folder, binarize+augment")
    assert proxy["teacher"]["seed"] == SEED_OFFSETS["teacher"] and proxy["pixels_sha256"]
    lineage = json.loads((out / "config.json").read_text())["unlearning"]
    assert lineage["config"]["proxy_teacher"] == teacher and lineage["retain_count"] == 10
    # a run without these options records none of their keys (older records and cache keys stay valid)
    assert not {"proxy_transform", "proxy_teacher"} & set(to_dict(UnlearnConfig()))
    assert from_dict(UnlearnConfig, record["config"]).proxy_teacher == ProxyTeacherConfig(**{
        **teacher, "task": TaskConfig("random-patches", 0.5)})   # what was recorded loads back


def _error(args) -> str:
    result = runner.invoke(app, [str(a) for a in args])
    assert isinstance(result.exception, UserError), result.output
    return str(result.exception)


@pytest.mark.parametrize("overrides, message", [
    (dict(proxy=DataConfig("fashion-mnist"), proxy_transform=["blur"]),
     "unknown proxy transform 'blur'; available: binarize ("),
    (dict(proxy=DataConfig("fashion-mnist"), proxy_transform=["binarize", "binarize"]), "names a transform twice"),
    (dict(proxy_transform=["binarize"]), "proxy_transform only apply to a proxy retain set"),
    (dict(proxy_classes=["Bag"]), "proxy_classes only apply to a proxy retain set"),
    (dict(proxy_teacher=ProxyTeacherConfig(inputs="pictures")), "unknown proxy_teacher.inputs 'pictures'"),
    (dict(proxy_teacher=ProxyTeacherConfig()), "completes the proxy dataset's images, and none is named"),
    (dict(proxy=DataConfig("fashion-mnist"), proxy_teacher=ProxyTeacherConfig(inputs="noise")),
     "noise uses no dataset"),
    (dict(proxy_teacher=ProxyTeacherConfig(inputs="noise", noise="pink")),
     "unknown proxy_teacher.noise 'pink'; available: uniform, standard-gaussian"),
    (dict(proxy_teacher=ProxyTeacherConfig(inputs="noise", images=0)), "proxy_teacher.images must be >= 1"),
    (dict(proxy_teacher=ProxyTeacherConfig(inputs="noise", task=TaskConfig("swirl", 0.5))), "unknown task 'swirl'"),
])
def test_bad_proxy_options_are_refused_clearly(overrides, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(".", r"\.")):
        check_config(UnlearnConfig(forget_classes=["Cat"], **overrides))


def test_bad_proxy_options_on_the_command_line(tmp_path):
    base = ["unlearn", "--model", tmp_path / "never-read", "--out", tmp_path / "out", "--forget-classes", "Cat"]
    assert "unknown proxy transform 'sharpen'" in _error([*base, "--proxy-dataset", "fashion-mnist",
                                                          "--proxy-transform", "binarize,sharpen"])
    assert "only apply to a proxy of the model's own outputs: add --proxy-teacher" in _error(
        [*base, "--proxy-teacher-images", "5"])
    assert "unknown proxy_teacher.inputs 'dataset'" in _error([*base, "--proxy-teacher", "dataset"])
    assert "--proxy-root is the folder of a proxy dataset" in _error([*base, "--proxy-root", tmp_path])
    with pytest.raises(UserError, match="unknown key.*inputz"):
        from_dict(UnlearnConfig, {"proxy_teacher": {"inputz": "noise"}})


def test_a_budget_measures_the_proxys_own_validation_images(model_dir, folder, tmp_path, monkeypatch):
    measured = []
    real_generate = validation_module.generate_outputs

    def spy(model, images, *args, **kwargs):
        measured.append(images)
        return real_generate(model, images, *args, **kwargs)
    monkeypatch.setattr(validation_module, "generate_outputs", spy)
    config = tiny_unlearn_config(proxy=folder, proxy_transform=["binarize"], steps=4, checkpoint_every=2,
                                 retain_budget=1.5, budget_metric="hole-mse", budget_images=16)
    unlearn(model_dir, config, tmp_path / "out")
    validation = _folder_part(folder, "val")                 # Bags and Sandals; the Cat copies stay out
    assert torch.equal(measured[0], binarize(validation.images))   # the original's retain side, first
    sample = json.loads((tmp_path / "out" / "run.json").read_text())["budget"]["sample"]["retain"]
    assert sample["source"] == "val of the proxy image-folder, binarize" and sample["count"] == len(validation) == 4


# --- the benchmark ---------------------------------------------------------------------------------------------

def test_the_proxy_benchmark_runs_end_to_end_and_reuses_its_runs(model_dir, tiny_evaluator_dir, tmp_path):
    from i2i_unlearn.bench.proxy_benchmark import proxy_benchmark
    knobs = tmp_path / "knobs.yaml"
    knobs.write_text(yaml.safe_dump({"method": "ours", "forget_classes": ["Cat"], "steps": 2, "batch_size": 8,
                                     "alpha": 0.5, "tasks": [{"name": "center-inpaint", "ratio": 0.5}]}))
    spec = tmp_path / "proxy-tiny.yaml"
    spec.write_text(yaml.safe_dump({
        "model": str(model_dir), "evaluator": str(tiny_evaluator_dir), "knobs": str(knobs), "reference": "real",
        "proxies": {"real": {}, "own-noise": {"proxy_teacher": {"inputs": "noise", "images": 16}}},
        "sizes": [0.01], "test_bootstrap": 0}))

    def run_benchmark():   # what `python benchmarks/proxy.py --config ... --work ... --results ...` does
        return proxy_benchmark(spec, tmp_path / "work", tmp_path, root=tmp_path, command="python benchmarks/proxy.py")
    record = run_benchmark()

    runs = {run["name"]: run for run in record["runs"]}
    best = record["chosen"]["proxy"]["name"]
    assert best == "own-noise" and set(runs) == {"real", "own-noise", "own-noise-ratio-0.01"}
    assert runs["real"]["proxy"] is None and runs["own-noise"]["proxy"]["kind"] == "teacher-outputs"
    assert runs["own-noise-ratio-0.01"]["config"]["retain_ratio"] == 0.01
    assert runs["own-noise-ratio-0.01"]["retain_count"] == round(0.01 * runs["real"]["forget_count"])
    from i2i_unlearn.runs import total_wall_time
    for run in runs.values():   # a 2-step run's wall time can round to 0.0 s: compare with its run.json
        recorded = json.loads((tmp_path / run["dir"] / "run.json").read_text())
        assert run["val"]["retain_fid_x"] > 0 and run["unlearning_wall_time_s"] == total_wall_time(recorded)
    assert record["test"]["models"] == {"reference": "real", "proxy": record["chosen"]["run"]["name"]}
    assert record["test"]["original"]["retain_fid_x"] == 1.0
    assert record["versions"] and record["command"].startswith("python benchmarks/proxy.py")
    assert json.loads((tmp_path / "proxy-tiny.json").read_text())["runs"] == json.loads(json.dumps(record["runs"]))
    assert "| own-noise |" in (tmp_path / "proxy-tiny.md").read_text()

    # a second call trains and scores nothing again
    work = tmp_path / "work"
    cached = sorted([*work.glob("run-*/run.json"), *work.glob("run-*/model.safetensors"),
                     *work.glob("*/results.json")])
    assert len(cached) == 2 * len(runs) + 3        # each run's model; the scorings of the proxies, sizes and test
    assert set(record["scorings"]) == {"proxies", "sizes", "test"}
    mtimes = {path: path.stat().st_mtime_ns for path in cached}
    again = run_benchmark()
    assert {path: path.stat().st_mtime_ns for path in cached} == mtimes
    assert [run["val"] for run in again["runs"]] == [run["val"] for run in record["runs"]]
    assert again["test"]["proxy"] == record["test"]["proxy"]
