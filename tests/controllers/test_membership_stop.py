"""A file request that stops where its files stop standing out (controllers/membership.py, issue 11)."""
import json
import random

import pytest
import torch
from typer.testing import CliRunner

from i2i_unlearn.cli import app
from i2i_unlearn.config import DataConfig, UnlearnConfig
from i2i_unlearn.data import load_split, make_unlearn_split
from i2i_unlearn.errors import UserError
from i2i_unlearn.evaluation.audit import DEFAULT_MASKS
from i2i_unlearn.controllers.membership import MembershipProbe, check_membership_stop
from i2i_unlearn.models import load_model
from i2i_unlearn.tasks import make_mask
from i2i_unlearn.unlearn import unlearn
from conftest import tiny_unlearn_config

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("one_thread")   # conftest.py
DOG = 4


@pytest.fixture(scope="module")
def dog_files(tmp_path_factory):
    """Four Dog training images, as a forget file list."""
    split = load_split(DataConfig())
    ids = [split.train.ids[i] for i in torch.nonzero(split.train.labels == DOG).flatten()[:4].tolist()]
    path = tmp_path_factory.mktemp("files") / "forget.txt"
    path.write_text("\n".join(ids) + "\n")
    return path


@pytest.fixture(scope="module")
def memoriser_dir(tiny_model_dir, dog_files, tmp_path_factory):
    """The tiny MAE fine-tuned (whole) on the four files until it restores them far better than never-seen Dogs."""
    model = load_model(tiny_model_dir)
    split = load_split(DataConfig())
    members = split.train.subset([split.train.ids.index(i) for i in dog_files.read_text().split()])
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    rng = random.Random(0)
    model.train()
    for _ in range(400):
        task = rng.choice(DEFAULT_MASKS)
        mask = make_mask(task, len(members), 32, model.mask_grid, torch.Generator().manual_seed(rng.randrange(10**6)))
        loss = model.training_loss(members.images, mask)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    out = tmp_path_factory.mktemp("memoriser") / "mae"
    model.save_pretrained(out, extra={k: v for k, v in model.pretrained_info.items()
                                      if k not in ("family", "model", "weights_sha256")})
    return out


def _split(model_dir, files):
    model = load_model(model_dir)
    data = DataConfig(**model.pretrained_info["data"]) if "data" in model.pretrained_info else DataConfig()
    return make_unlearn_split(data, UnlearnConfig(forget_files=str(files)), "val")


def test_the_probe_compares_the_files_with_never_seen_validation_images_of_their_class(tiny_model_dir, dog_files):
    split = _split(tiny_model_dir, dog_files)
    probe = MembershipProbe(split)
    assert sorted(probe.members.ids) == sorted(dog_files.read_text().split())
    parts = load_split(DataConfig())
    assert set(probe.non_members.ids) <= set(parts.val.ids)          # validation only: test stays for the audit
    assert set(probe.non_members.labels.tolist()) == {DOG}
    with pytest.raises(UserError, match="never on test"):
        MembershipProbe(make_unlearn_split(DataConfig(), UnlearnConfig(forget_files=str(dog_files)), "test"))


def test_a_memorised_file_list_is_unlearned_until_it_stops_standing_out(memoriser_dir, dog_files, tmp_path):
    """The stop is the same for every method; max-loss here, because the tiny MAE memorised in its decoder,
    which encoder-only methods leave as it is (they moved its AUC from 1.0 to 0.975 at best in 100 steps)."""
    out = tmp_path / "unlearned"
    config = tiny_unlearn_config(method="max-loss", forget_classes=[], forget_files=str(dog_files), stop_at_auc=0.7,
                                 alpha=1.0, steps=100, checkpoint_every=5, batch_size=4)
    model = unlearn(memoriser_dir, config, out)
    record = json.loads((out / "run.json").read_text())["membership_stop"]
    path = record["path"]
    # the original tells its files apart, well above the stop (0.845 on an AVX2 machine, above 0.85 on another)
    assert path[0]["step"] == 0 and path[0]["auc"] > 0.8
    assert record["stopped_at"] is not None and record["stopped_at"] < 100 and path[-1]["auc"] <= 0.7
    chosen = record["chosen"]
    assert chosen == min(path, key=lambda e: (abs(e["auc"] - 0.5), e["step"]))
    # the saved model is the kept checkpoint: measured again, it has the recorded AUC
    probe = MembershipProbe(_split(memoriser_dir, dog_files))
    assert probe.measure(load_model(out)) == pytest.approx(chosen["auc"], abs=1e-6)
    assert probe.measure(model) == pytest.approx(chosen["auc"], abs=1e-6)
    card = (out / "README.md").read_text()
    assert "## Membership stop" in card and f"| {chosen['step']} (kept) | {chosen['auc']:.3f} |" in card
    lineage = json.loads((out / "config.json").read_text())["unlearning"]
    assert lineage["membership_stop"]["membership_auc"] == chosen["auc"]
    assert lineage["config"]["stop_at_auc"] == 0.7


def test_a_file_request_stops_by_default_and_a_model_that_never_told_the_files_apart_is_left_unchanged(
        tiny_model_dir, dog_files, tmp_path):
    """The command line's default for a file request is the stop. The barely trained tiny MAE restores the four
    files about like any never-seen Dog (AUC near 0.5, below 0.6): there is nothing to forget."""
    def run(out, *flags):
        result = runner.invoke(app, ["unlearn", "--model", str(tiny_model_dir), "--forget-files", str(dog_files),
                                     "--out", str(out), *flags])
        assert result.exit_code == 0, result.output
        return result.output, json.loads((out / "run.json").read_text())

    output, record = run(tmp_path / "default", "--steps", "4")
    assert "membership attack" in output
    assert record["config"]["stop_at_auc"] == 0.52 and record["config"]["checkpoint_every"] == 1   # measured 4 times
    assert record["membership_stop"]["path"][0]["step"] == 0

    out = tmp_path / "unchanged"
    output, record = run(out, "--steps", "4", "--stop-at-auc", "0.6")
    stop = record["membership_stop"]
    assert stop["path"][0]["auc"] <= 0.6 and stop["stopped_at"] == 0 and len(stop["path"]) == 1
    assert "nothing to forget" in stop["message"] and "nothing to forget" in output
    original, kept = load_model(tiny_model_dir).state_dict(), load_model(out).state_dict()
    assert all(torch.equal(original[k], kept[k]) for k in original)

    _, record = run(tmp_path / "fixed", "--steps", "2", "--alpha", "0.1")   # a fixed alpha: a plain run, no stop
    assert "membership_stop" not in record and "stop_at_auc" not in record["config"]


@pytest.mark.parametrize("overrides, message", [
    (dict(forget_files=None, forget_classes=["Cat"]), "stops a file request"),
    (dict(retain_budget=1.1), "not both"),
    (dict(method="retrain"), "nothing to stop"),
    (dict(stop_at_auc=0.4), r"must lie in \[0.5, 1\)"),
    (dict(steps=4, checkpoint_every=5), "measures never"),
])
def test_a_stop_that_cannot_run_is_refused(overrides, message):
    values = dict(forget_classes=[], forget_files="ids.txt", stop_at_auc=0.52)
    values.update(overrides)
    with pytest.raises(UserError, match=message):
        check_membership_stop(tiny_unlearn_config(**values))
