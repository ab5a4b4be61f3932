"""Controllable unlearning (docs/budget.md): the user states how much retain quality may be spent, the run
finds the most forgetting within it, instead of the user guessing the forget weight alpha.

Feng et al. (ICLR 2025, arXiv 2408.01689) frame unlearning as epsilon-constrained optimisation: forget as much
as possible subject to a bound on the damage to what is kept. Here the bound is on a number the user reads, the
retain score on held-out validation images as a multiple of the original model's (`retain_budget`, e.g. 1.10 =
retain FID at most 10 % above the original's), and the run holds it while it trains:

- At every checkpoint a fixed validation sample (the same images, masks and sampling seed each time; validation
  images only) is scored: the retain score and the forget score, each as a ratio to the original's.
- Alpha is a primal-dual weight. Training minimises retain + alpha x forget, i.e. forget + (1/alpha) x retain:
  1/alpha is the Lagrange multiplier of the retain constraint, and the dual step raises the multiplier (lowers
  alpha) when the constraint is violated and lowers it (raises alpha) when there is slack, in log space so alpha
  stays positive: log alpha -= STEP_SIZE x g, with g = (retain ratio - budget) / (budget - 1) the violation in
  units of the budget (0 on the bound, -1 with no damage at all), clipped to VIOLATION_CLIP. With slack and the
  forget goal already met, alpha is left alone and the run stops there.
- Every measured checkpoint is a candidate; the run ends on the best one (`rank`), weights restored bit for bit
  from the copy kept when it was measured. If none kept the budget, the closest is kept and marked over budget.

`unlearn_front` runs one budget after the other (the trade-off front), each starting from the previous one's model.
"""
from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import torch

from i2i_unlearn.checkpoints import CHECKPOINTS, read_json
from i2i_unlearn.config import RECORDED_ONLY_WITH, UnlearnConfig
from i2i_unlearn.controllers.base import MIN_MEASUREMENTS, echo, keep_weights, load_kept_weights, main_process_result
from i2i_unlearn.controllers.validation import ValidationProbe, resolved_forget_metric
from i2i_unlearn.errors import UserError
from i2i_unlearn.evaluation.metrics import Z_95
from i2i_unlearn.loop import Monitor
from i2i_unlearn.methods import METHODS, Method
from i2i_unlearn.models import I2IModel
from i2i_unlearn.models.base import read_model_config

BUDGET_METRICS = {"fid": "retain FID through the evaluator", "hole-mse": "retain hole error, no evaluator needed"}

FORGET_METRICS = {"recognition": "share of forget outputs the evaluator calls a forget class",
                  "hole-mse": "forget hole error, no evaluator needed (the original's over the run's: lower = "
                              "more forgotten)"}

STEP_SIZE = math.log(2)  # per measurement alpha at most doubles (no damage) ...

VIOLATION_CLIP = (-1.0, 2.0)   # ... or falls to a quarter (twice the budget's margin over it)

OVERHEAD_LIMIT = 0.2     # measuring should cost at most this share of a run's wall time (issue 13)

BEST_WEIGHTS = "budget-best.safetensors"   # in the checkpoints folder: the best checkpoint so far

FRAME_SATURATION = 0.8   # the frame alone recognised at this share of the original's: recognition cannot see forgetting

RULE_DOC = ("within the budget: the upper end of the retain ratio's 95 % interval over the sample's images at most "
            "the budget. Kept: among the measured checkpoints within the budget, the one with the lowest forget ratio (ties: "
            "the lower retain ratio); if none is within it, the one with the lowest retain ratio, marked over budget. "
            "Candidates: every measured checkpoint after the start (and the start itself when warm-started)")

UPDATE_DOC = (f"log alpha -= {STEP_SIZE:.4f} x clip((retain ratio - budget) / (budget - 1), {VIOLATION_CLIP[0]}, "
              f"{VIOLATION_CLIP[1]}) after each measurement, unless within the budget with the forget goal met "
              "(then the run stops)")

# What `unlearn` runs when no forget weight is given (no --alpha, config, budget or front), and what the demo
# runs. benchmarks/results/budget-{mae,vqgan,diffusion}.md compare it with the knobs tuned on validation, one run
# each, made before "within the budget" read the interval's upper end: not the run the demo makes today.
DEFAULT_RETAIN_BUDGET = 1.15

# The diffusion family measures by sampling: a smaller sample, measured less often, over a longer run keeps
# the control near a fifth of the run (budget-diffusion.md); steps only where the user gave none.
FAMILY_BUDGET_SETTINGS = {"diffusion": {"steps": 1000, "checkpoint_every": 250, "budget_images": 128}}


def evaluator_mismatch(evaluator_dir: str | Path, model_config: dict, forget_classes: list[str]) -> str | None:
    """Why a classifier evaluator folder cannot score the data of a model (its config.json, `model_config`;
    None: it can), from config files alone: it is missing, reads other data, or does not know a forget class."""
    config_file = Path(evaluator_dir) / "config.json"
    if not config_file.is_file():
        return f"no evaluator at {evaluator_dir}"
    evaluator = read_json(config_file)
    theirs = (evaluator.get("training") or {}).get("data") or {}
    ours = (model_config.get("training") or {}).get("data") or {}
    if (theirs.get("dataset"), theirs.get("root"), theirs.get("channels")) != \
            (ours.get("dataset"), ours.get("root"), ours.get("channels")):
        return (f"the evaluator {evaluator_dir} was trained on {theirs.get('dataset')!r}, the model on "
                f"{ours.get('dataset')!r}")
    unknown = [name for name in forget_classes if name not in evaluator.get("class_names", [])]
    if unknown:
        return f"the evaluator {evaluator_dir} does not know {', '.join(unknown)}"
    return None

def apply_default_budget(config: UnlearnConfig, model_dir: str | Path, *, steps_given: bool,
                         evaluator_given: bool = False) -> list[str]:
    """Make `config` (no forget weight given) the default budgeted run for the model in `model_dir`; returns
    the lines that tell the user what was chosen. When the default evaluator does not fit the model's data,
    the budget and the forget score are hole errors (no evaluator needed); an evaluator the user gave is
    used as given (and refused by the run if it does not fit)."""
    model_config = read_model_config(model_dir)
    config.retain_budget = DEFAULT_RETAIN_BUDGET
    for key, value in FAMILY_BUDGET_SETTINGS.get(model_config["family"], {}).items():
        if key != "steps" or not steps_given:
            setattr(config, key, value)
    if steps_given:   # measure at least MIN_MEASUREMENTS times however short the run (no flag sets checkpoint_every)
        config.checkpoint_every = min(config.checkpoint_every, max(1, config.steps // MIN_MEASUREMENTS))
    mismatch = None if evaluator_given else evaluator_mismatch(config.budget_evaluator, model_config,
                                                               config.forget_classes)
    if mismatch:
        config.budget_metric = "hole-mse"
    metric = "retain hole error" if mismatch else "retain FID"
    lines = [f"budgeted run (the default): the {metric} on validation images may grow to {DEFAULT_RETAIN_BUDGET}x "
             f"the original's; the forget weight is controlled (--alpha for a fixed one, --retain-budget for "
             "another budget; docs/budget.md)"]
    if mismatch:
        lines.append(f"  {mismatch}: budgeting on hole errors (--evaluator to measure FID and recognition)")
    return lines

def budget_defaults() -> dict:
    """The budget keys of UnlearnConfig and their defaults."""
    return {f.name: f.default for f in dataclasses.fields(UnlearnConfig) if f.metadata.get(RECORDED_ONLY_WITH)}

def _choices(table: dict) -> str:
    return "; ".join(f"{name} ({doc})" for name, doc in table.items())

def check_budget(config: UnlearnConfig) -> None:
    """Refuse a budget that cannot be run, before anything is written (the evaluator is checked when loaded)."""
    if config.retain_budget is None:
        given = [name for name, default in budget_defaults().items() if getattr(config, name) != default]
        if given:
            raise UserError(f"{', '.join(given)} only apply to a budgeted run: set retain_budget (--retain-budget) "
                            "or --front")
        return
    if not (math.isfinite(config.retain_budget) and config.retain_budget > 1):
        raise UserError(f"retain_budget must be a finite number > 1 (the retain score may grow to this multiple of "
                        f"the original's, e.g. 1.10), got {config.retain_budget}")
    if config.method == "retrain":
        raise UserError("retrain has no forget weight to control: a retain budget (--retain-budget, --front) works "
                        f"with {', '.join(name for name in METHODS if name != 'retrain')}")
    if config.forget_files:
        raise UserError("a retain budget measures forgetting on held-out images of the forgotten classes, and a file "
                        "list has none: forget files with a fixed alpha")
    if config.budget_metric not in BUDGET_METRICS:
        raise UserError(f"unknown budget metric {config.budget_metric!r}; available: {_choices(BUDGET_METRICS)}")
    if resolved_forget_metric(config) not in FORGET_METRICS:
        raise UserError(f"unknown forget metric {config.forget_metric!r}; available: {_choices(FORGET_METRICS)}")
    if config.forget_goal is not None and not 0 < config.forget_goal < 1:
        raise UserError(f"forget_goal must lie in (0, 1) (the forget score as a multiple of the original's, e.g. "
                        f"0.33), or be null (--forget-goal max: as far as the budget allows), got {config.forget_goal}")
    if config.budget_images < 2:
        raise UserError(f"budget_images must be >= 2, got {config.budget_images}")
    if config.steps // config.checkpoint_every < 2:
        raise UserError(f"a budgeted run measures at every checkpoint and needs at least 2: steps {config.steps} with "
                        f"checkpoint_every {config.checkpoint_every} gives {config.steps // config.checkpoint_every}; "
                        "lower it (--checkpoint-every, or checkpoint_every in --config), or give a fixed forget "
                        "weight (--alpha)")

class BudgetController(Monitor):
    """The loop's monitor in a budgeted run (loop.run_loop): it measures at every checkpoint, sets the method's
    alpha for the next steps, keeps the best checkpoint's weights, and stops once the goal is met in budget."""

    def __init__(self, config: UnlearnConfig, method: Method, probe: ValidationProbe, run_dir: Path,
                 warm_started: bool = False):
        self.budget, self.goal = config.retain_budget, config.forget_goal
        self.method = method   # the objective reads method.config.alpha at every step
        self.probe = probe
        self.best_path = Path(run_dir) / CHECKPOINTS / BEST_WEIGHTS
        self.warm_started = warm_started
        self.state = {"alpha": method.config.alpha, "original": None, "path": [], "best": None, "stopped_at": None,
                      "measurements": 0, "measure_seconds": 0.0}

    # --- the loop's monitor protocol ---
    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.method.config.alpha = self.state["alpha"]

    def start(self, teacher: I2IModel, student: I2IModel) -> None:
        """Measure the original (the reference of every ratio) and the starting point, once, before step 1."""
        self.state["original"] = self._measure(teacher)
        original = self.state["original"]
        frame = main_process_result(self.probe.frame_alone_recognition)
        if frame is not None and original["forget"] and frame >= FRAME_SATURATION * original["forget"]:
            # the class is recognised from the visible frame alone: a retrained model keeps that recognition,
            # so it cannot show forgetting; the hole error can
            echo(f"budget: the frame alone is recognised as the forgotten class {frame:.2f} of the time (the "
                 f"original's outputs {original['forget']:.2f}): measuring forgetting by the hole error instead")
            self.probe.use_hole_error_for_forgetting()
            self.state["frame_alone_recognition"] = frame
            self.state["original"] = original = self._measure(teacher)
        if self.probe.forget_metric == "recognition" and not original["forget"]:
            raise UserError("the original model's forget outputs are never recognised as a forget class on the "
                            "validation sample: recognition cannot measure forgetting here; use --forget-metric "
                            "hole-mse")
        if not original["retain"] or not original["forget"]:
            raise UserError(f"the original scores 0 on the validation sample ({original}): no ratio to budget against")
        # a fresh start is the original itself, which is the reference, not a result; a warm start is a candidate
        self._record(0, self._measure(student) if self.warm_started else original, student,
                     candidate=self.warm_started)

    def measure(self, step: int, module: I2IModel) -> bool:
        entry = self._record(step, self._measure(module), module, candidate=True)
        goal_met = self.goal is not None and entry["forget_ratio"] <= self.goal
        if entry["in_budget"] and goal_met:
            self.state["stopped_at"] = step
        else:   # over the budget (alpha goes down), or slack with the goal not met yet (alpha goes up)
            violation = (entry["retain_ratio"] - self.budget) / (self.budget - 1)
            violation = min(max(violation, VIOLATION_CLIP[0]), VIOLATION_CLIP[1])
            self.state["alpha"] = self.state["alpha"] * math.exp(-STEP_SIZE * violation)
        self.method.config.alpha = entry["next_alpha"] = self.state["alpha"]
        echo(f"budget: step {step}, retain {entry['retain_ratio']:.3f}x (budget {self.budget:g}x), forget "
              f"{entry['forget_ratio']:.3f}x, alpha {entry['alpha']:.4g} -> {entry['next_alpha']:.4g}"
              + (" (goal met: stopping)" if self.stopped else ""))
        return self.stopped

    # --- bookkeeping ---
    def rank(self, entry: dict) -> tuple:
        """Lower is better: within the budget by forgetting, else by how close the retain score stays."""
        if entry["in_budget"]:
            return (0, entry["forget_ratio"], entry["retain_ratio"])
        return (1, entry["retain_ratio"], entry["forget_ratio"])

    def _measure(self, model: I2IModel) -> dict[str, float]:
        started = time.perf_counter()
        scores = main_process_result(lambda: self.probe.measure(model))
        self.state["measurements"] += 1
        self.state["measure_seconds"] += time.perf_counter() - started
        return scores

    def _record(self, step: int, scores: dict, model: I2IModel, candidate: bool) -> dict:
        original = self.state["original"]
        retain_ratio = scores["retain"] / original["retain"]
        retain_hw = _ratio_half_width(scores["retain_replicates"], original["retain_replicates"])
        forget_ratio = self.probe.forget_ratio(scores["forget"], original["forget"])
        forget_hw = _ratio_half_width(*((scores["forget_replicates"], original["forget_replicates"])
                                        if self.probe.forget_metric == "recognition" else
                                        (original["forget_replicates"], scores["forget_replicates"])))
        entry = {"step": step, "alpha": self.state["alpha"], "retain": scores["retain"], "forget": scores["forget"],
                 "retain_ratio": retain_ratio, "retain_ratio_hi": retain_ratio + retain_hw,
                 "forget_ratio": forget_ratio, "forget_ratio_hi": forget_ratio + forget_hw,
                 "in_budget": retain_ratio + retain_hw <= self.budget, "candidate": candidate,
                 "next_alpha": self.state["alpha"]}
        self.state["path"].append(entry)
        best = self.state["best"]
        if candidate and (best is None or self.rank(entry) < self.rank(best)):
            self.state["best"] = entry
            keep_weights(self.best_path, step, model)
        return entry

    def roll_back(self, module: I2IModel) -> None:
        """Load the kept checkpoint's weights into `module` (on every process)."""
        load_kept_weights(self.best_path, self.state["best"]["step"], module)

    def message(self) -> str:
        best = self.state["best"]
        where = (f"step {best['step']}: retain {best['retain_ratio']:.3f}x the original's (at most "
                 f"{best['retain_ratio_hi']:.3f}x), forget {best['forget_ratio']:.3f}x")
        nothing = ("; FORGOT NOTHING MEASURABLE: the forget score's interval reaches the original's "
                   f"({best['forget_ratio_hi']:.3f}x)" if not forgot_measurably(best) else "")
        if best["in_budget"]:
            return f"kept {where} (budget {self.budget:g}x){nothing}"
        return (f"over budget: no checkpoint kept the retain budget {self.budget:g}x; kept the closest, {where}"
                f"{nothing}. Lower alpha or the learning rate, or allow a larger budget")

    def record(self, wall_time_s: float) -> dict:
        """What run.json records: the settings, the sample, the controller's path and the kept checkpoint."""
        best = self.state["best"]
        return {"retain_budget": self.budget, "metric": self.probe.retain_metric,
                "forget_metric": self.probe.forget_metric, "forget_goal": self.goal, "sample": self.probe.describe(),
                "frame_alone_recognition": self.state.get("frame_alone_recognition"),
                "forgot_measurably": forgot_measurably(best),
                "update": UPDATE_DOC, "rule": RULE_DOC, "original": self.state["original"],
                "path": self.state["path"], "chosen": best, "in_budget": best["in_budget"],
                "stopped_early_at": self.state["stopped_at"], "final_alpha": self.state["alpha"],
                "message": self.message(), "warm_started": self.warm_started,
                "control": {"measurements": self.state["measurements"],   # the original's included
                            "measure_seconds": round(self.state["measure_seconds"], 2),
                            "share_of_wall_time": round(self.state["measure_seconds"] / wall_time_s, 4)
                            if wall_time_s > 0 else None}}

    def closing_lines(self, record: dict) -> list[str]:
        """What the run says when it ends: the kept checkpoint (or that it is over budget), and a measuring cost
        above OVERHEAD_LIMIT with the knobs that lower it."""
        lines = [f"budget: {record['message']}"]
        share = record["control"]["share_of_wall_time"]
        if share is not None and share > OVERHEAD_LIMIT:
            lines.append(f"budget: measuring took {share:.0%} of the run's time (more than {OVERHEAD_LIMIT:.0%}): "
                         "measure less often (a larger checkpoint_every) or fewer images (budget_images)")
        return lines

    def summary(self) -> dict:
        """What config.json's lineage step (and so the model card) keeps of the budget."""
        best = self.state["best"]
        return {"retain_budget": self.budget, "metric": self.probe.retain_metric,
                "forget_metric": self.probe.forget_metric, "forget_goal": self.goal, "chosen_step": best["step"],
                "in_budget": best["in_budget"], "retain_ratio": round(best["retain_ratio"], 4),
                "retain_ratio_hi": round(best["retain_ratio_hi"], 4), "forget_ratio": round(best["forget_ratio"], 4),
                "forgot_measurably": forgot_measurably(best), "final_alpha": self.state["alpha"]}


def _ratio_half_width(replicates: list[float], reference_replicates: list[float]) -> float:
    """Half-width of the 95 % interval of a score's ratio to the original's: the spread of the per-resample ratios
    (paired: resample r draws the same images for both)."""
    ratios = torch.tensor(replicates, dtype=torch.float64) / torch.tensor(reference_replicates, dtype=torch.float64)
    ratios = ratios[torch.isfinite(ratios)]
    return Z_95 * float(ratios.std()) if len(ratios) >= 2 else 0.0

def forgot_measurably(entry: dict) -> bool:
    """Whether a checkpoint's forget score is below the original's beyond its interval."""
    return entry["forget_ratio_hi"] < 1.0
