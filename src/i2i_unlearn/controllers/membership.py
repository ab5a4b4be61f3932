"""Stopping a file request where its images stop standing out (docs/cli.md, "Forgetting files").

A model that never trained on an image restores it no better and no worse than any never-seen image of its
class: to the membership attack of evaluation/audit/membership.py a model retrained without the files shows an AUC near 0.5.
Unlearning a file list with the knobs of a class request overshot (the knobs before the re-tune): on the shipped MAE the forgotten files ended
restored *worse* than never-seen ones (AUC 0.40 against the retrained model's 0.51,
benchmarks/results/audit-mae.md), which the attack finds as surely as memorisation. So a file request can stop on
the attack itself. At every checkpoint: the attack's AUC of the forgotten files (members) against never-seen
*validation* images of the same classes (the test images stay for the audit), on fixed masks and randomness.
The run stops at the first checkpoint at or below `stop_at_auc` and ends on the measured model whose AUC lies
nearest 0.5; that may be the original itself, when it never told the files apart (then nothing is changed, and
the run says so).
"""
from __future__ import annotations

from pathlib import Path

import torch

from i2i_unlearn.checkpoints import CHECKPOINTS, sha256_text
from i2i_unlearn.config import UnlearnConfig
from i2i_unlearn.controllers.base import (
    echo,
    keep_weights,
    load_kept_weights,
    main_process_result,
    measure_often_enough,
)
from i2i_unlearn.data import UnlearnSplit
from i2i_unlearn.errors import UserError
from i2i_unlearn.evaluation.audit.membership import (
    DEFAULT_MASKS,
    attack_scores,
    conditions,
    restoration_errors,
    roc_summary,
)
from i2i_unlearn.loop import Monitor
from i2i_unlearn.models import I2IModel

DEFAULT_STOP_AUC = 0.52   # the default of a file request: within 0.03 of a retrained model's 0.5, with a margin

PROBE_IMAGES = 128        # members and non-members measured, each at most (evenly spread)

PROBE_SEED = 0            # masks and randomness of every measurement: the same each time

KEPT_WEIGHTS = "membership-best.safetensors"   # in the checkpoints folder

RULE_DOC = ("stop at the first checkpoint whose AUC is at most stop_at_auc; kept: the measured model (the original "
            "included) whose AUC lies nearest 0.5 (ties: the earlier one)")


def apply_default_stop(config: UnlearnConfig, *, steps_given: bool) -> str:
    """Make `config` (a file request, no forget weight given) stop at DEFAULT_STOP_AUC; returns the line that
    tells the user. A step count the user gave is measured at least MIN_MEASUREMENTS times."""
    config.stop_at_auc = DEFAULT_STOP_AUC
    measure_often_enough(config, steps_given=steps_given)
    return (f"file request (the default): stops once the membership attack tells the files from never-seen "
            f"validation images no better than AUC {DEFAULT_STOP_AUC} (--alpha for a fixed run, --stop-at-auc for "
            "another level)")

def check_membership_stop(config: UnlearnConfig) -> None:
    """Refuse a stop that cannot be run, before anything is written."""
    if config.stop_at_auc is None:
        return
    if not config.forget_files:
        raise UserError("stop_at_auc stops a file request (--forget-files) where its images stop standing out; a "
                        "class request is judged by the class's recognition: use a retain budget (--retain-budget)")
    if config.retain_budget is not None:
        raise UserError("give stop_at_auc or retain_budget, not both")
    if config.method == "retrain":
        raise UserError("retrain has nothing to stop: it trains without the files from the start")
    if not 0.5 <= config.stop_at_auc < 1:
        raise UserError(f"stop_at_auc must lie in [0.5, 1) (the membership attack's AUC; 0.5: chance), got "
                        f"{config.stop_at_auc}")
    if config.steps < config.checkpoint_every:
        raise UserError(f"the stop is measured at every checkpoint: steps {config.steps} with checkpoint_every "
                        f"{config.checkpoint_every} measures never; lower it (--checkpoint-every, or "
                        "checkpoint_every in --config)")

class MembershipProbe:
    """The forgotten files and never-seen validation images of their classes, and the attack's AUC on them."""

    def __init__(self, split: UnlearnSplit):
        if split.eval_split != "val":
            raise UserError("the membership stop measures on validation images, never on test ones")
        held_out = split.retain_eval
        labels = torch.tensor(held_out.class_indices(split.forget_class_names))
        non_members = held_out.subset(torch.nonzero(torch.isin(held_out.labels, labels)).flatten())
        if len(non_members) < 2:
            raise UserError(f"the membership stop compares the files with never-seen validation images of "
                            f"{', '.join(split.forget_class_names)}, and there are {len(non_members)}: the model's "
                            "data split needs validation images (val_per_class), or give a fixed alpha without a stop")
        # small samples, measured at every checkpoint: held in memory (read once, whatever the data's size)
        self.members = split.forget_train.evenly(PROBE_IMAGES).materialize()
        self.non_members = non_members.evenly(PROBE_IMAGES).materialize()

    def measure(self, model: I2IModel) -> float:
        conds = conditions(model, DEFAULT_MASKS)
        members = attack_scores(restoration_errors(model, self.members, conds, PROBE_SEED, stream=0,
                                                   description="membership stop: the forgotten files"))
        non_members = attack_scores(restoration_errors(model, self.non_members, conds, PROBE_SEED, stream=1,
                                                       description="membership stop: never-seen images"))
        return roc_summary(members, non_members)["auc"]

    def describe(self) -> dict:
        return {"masks": [f"{task.name} {task.ratio:g}" for task in DEFAULT_MASKS], "seed": PROBE_SEED,
                "members": {"count": len(self.members), "source": "train: the forgotten files",
                            "ids_sha256": sha256_text("\n".join(self.members.ids))},
                "non_members": {"count": len(self.non_members), "source": "val: never seen, same classes",
                                "ids_sha256": sha256_text("\n".join(self.non_members.ids))}}

class MembershipStop(Monitor):
    """The loop's monitor (loop.run_loop) of a file request with stop_at_auc: it measures the attack at every
    checkpoint, keeps the weights nearest 0.5, and stops once the AUC is at most the target."""

    def __init__(self, config: UnlearnConfig, probe: MembershipProbe, run_dir: Path):
        self.target = config.stop_at_auc
        self.probe = probe
        self.kept_path = Path(run_dir) / CHECKPOINTS / KEPT_WEIGHTS
        self.state = {"path": [], "best": None, "stopped_at": None}

    def start(self, student: I2IModel) -> None:
        """Measure the starting model (the original) before step 1: if it already does not tell the files apart,
        the run stops there."""
        self.measure(0, student)

    def measure(self, step: int, module: I2IModel) -> bool:
        auc = main_process_result(lambda: self.probe.measure(module))
        entry = {"step": step, "auc": auc}
        self.state["path"].append(entry)
        best = self.state["best"]
        if best is None or abs(auc - 0.5) < abs(best["auc"] - 0.5):
            self.state["best"] = entry
            keep_weights(self.kept_path, step, module)
        if auc <= self.target:
            self.state["stopped_at"] = step
        echo(f"membership: step {step}, AUC {auc:.3f} (stop at {self.target:g})"
             + (" (stopping)" if self.stopped else ""))
        return self.stopped

    def roll_back(self, module: I2IModel) -> None:
        load_kept_weights(self.kept_path, self.state["best"]["step"], module)

    def message(self) -> str:
        best, original = self.state["best"], self.state["path"][0]
        if best["step"] == 0:
            return (f"the original already does not tell the files from never-seen images (membership AUC "
                    f"{original['auc']:.3f}, stop at {self.target:g}): nothing to forget, the model is unchanged")
        where = f"step {best['step']}: membership AUC {best['auc']:.3f} (the original's {original['auc']:.3f})"
        if self.stopped:
            return f"kept {where}"
        return (f"the AUC never reached {self.target:g} in {self.state['path'][-1]['step']} steps; kept the nearest "
                f"0.5, {where}: more steps or a larger alpha forget further")

    def record(self) -> dict:
        """What run.json records."""
        return {"stop_at_auc": self.target, "rule": RULE_DOC, "probe": self.probe.describe(),
                "path": self.state["path"], "chosen": self.state["best"], "stopped_at": self.state["stopped_at"],
                "message": self.message()}

    def summary(self) -> dict:
        """What config.json's lineage step (and so the model card) keeps."""
        best = self.state["best"]
        return {"stop_at_auc": self.target, "chosen_step": best["step"], "membership_auc": best["auc"],
                "original_membership_auc": self.state["path"][0]["auc"]}
