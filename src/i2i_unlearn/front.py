"""A front: one budgeted model per retain budget (`unlearn --front 1.02,1.05,1.10`), tightest first, each
starting from the last; front.json and front.png beside them."""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from i2i_unlearn.checkpoints import CHECKPOINTS, read_json, write_json_atomic
from i2i_unlearn.config import UnlearnConfig
from i2i_unlearn.distributed import on_main_process
from i2i_unlearn.errors import UserError
from i2i_unlearn.lineage import input_folders, training_data_config
from i2i_unlearn.models import load_model
from i2i_unlearn.plotting import pyplot, save_figure
from i2i_unlearn.runs import FRONT_PLOT, FRONT_RECORD, RUN_RECORD, prepare_output_dir
from i2i_unlearn.unlearn import check_config, unlearn

FRONT_ORDER_DOC = ("tightest budget first; each later budget starts from the previous one's last alpha (at least the "
                   "config's alpha) and, if it kept its budget (then it is within the looser one too), from the model "
                   "it kept")


def parse_budgets(text: str, option: str = "--front") -> list[float]:
    """'1.02,1.05,1.10' -> [1.02, 1.05, 1.1]; each must be a number (checked > 1 with the config)."""
    budgets = []
    for part in text.split(","):
        try:
            budgets.append(float(part))
        except ValueError:
            raise UserError(f"{option} expects budgets separated by commas, e.g. 1.02,1.05,1.10; "
                            f"got {text!r}") from None
    if not budgets or len(set(budgets)) != len(budgets) or not all(math.isfinite(b) for b in budgets):
        raise UserError(f"{option} expects distinct finite budgets separated by commas, got {text!r}")
    return budgets

def front_member_dir(out_dir: Path, budget: float) -> Path:
    return Path(out_dir) / f"budget-{budget:g}"

def unlearn_front(model_dir: str | Path, config: UnlearnConfig, budgets: list[float], out_dir: str | Path, *,
                  resume: bool = False, overwrite: bool = False, data_root: str | None = None) -> dict:
    """One budgeted model per budget in out_dir/budget-<b>/, then front.json and front.png beside them.
    `resume` continues a killed front: finished budgets are kept, the one in progress resumes."""
    # Tightest first: the model a tight budget keeps is within every looser budget, so the next run starts from a
    # point it may keep and only goes on forgetting; loosest first would start tight budgets over their bound, and
    # their retain term would first have to undo forgetting the looser run had paid for.
    budgets = sorted(budgets)
    configs = [dataclasses.replace(config, retain_budget=budget) for budget in budgets]
    for member in configs:
        check_config(member)
    teacher = load_model(model_dir)
    data = training_data_config(teacher)
    if data_root is not None:
        data.root = data_root
    out_dir = prepare_output_dir(out_dir, overwrite=overwrite, resume=resume, protected=input_folders(model_dir, data),
                                 checkpointed=False)   # its members hold the checkpoints
    members, previous = [], None
    for member in configs:
        member_dir = front_member_dir(out_dir, member.retain_budget)
        warm_start = None
        if previous is not None:
            # the weights only if they kept their budget; alpha where the controller left it, but never below
            # the config's: a tight budget turns alpha far down (measured on the MAE: 0.25 -> 0.03 for 1.02), and
            # a looser budget starting there forgot less in its steps than the tighter one had
            member.alpha = max(previous["final_alpha"], config.alpha)
            warm_start = previous["dir"] if previous["in_budget"] else None
        finished = (member_dir / RUN_RECORD).is_file() and not (member_dir / CHECKPOINTS).exists()
        if not (resume and finished):
            unlearn(model_dir, member, member_dir, resume=resume and (member_dir / CHECKPOINTS).is_dir(),
                    overwrite=True, data_root=data_root, warm_start=warm_start)
        record = read_json(member_dir / RUN_RECORD)
        budget = record["budget"]
        previous = {"dir": member_dir, "in_budget": budget["in_budget"], "final_alpha": budget["final_alpha"]}
        members.append({"retain_budget": member.retain_budget, "dir": member_dir.name,
                        "warm_start": Path(warm_start).name if warm_start else None,
                        "start_alpha": member.alpha, "final_alpha": budget["final_alpha"],
                        "in_budget": budget["in_budget"], "chosen": budget["chosen"],
                        "wall_time_s": record.get("wall_time_total_s", record["wall_time_s"])})
    first = read_json(front_member_dir(out_dir, budgets[0]) / RUN_RECORD)["budget"]
    front = {"kind": "front", "model": str(model_dir), "method": config.method,
             "forget_classes": config.forget_classes, "metric": first["metric"],
             "forget_metric": first["forget_metric"],
             "forget_goal": config.forget_goal, "order": FRONT_ORDER_DOC, "sample": first["sample"],
             "original": first["original"], "members": members}

    def write() -> None:
        write_json_atomic(out_dir / FRONT_RECORD, front)
        plot_front(front, out_dir / FRONT_PLOT)
    on_main_process(write)
    return front

def plot_front(front: dict, path: Path) -> Path:
    """Forget ratio against retain ratio of each budget's kept model (lower is better on both)."""
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(6, 4.5), dpi=110)
    axis.scatter([1.0], [1.0], marker="*", s=90, color="black", label="original")
    for kept, style in ((True, {"marker": "o", "label": "kept its budget"}),
                        (False, {"marker": "x", "label": "over budget (closest kept)"})):
        chosen = [m for m in front["members"] if m["in_budget"] == kept]
        if chosen:
            axis.scatter([m["chosen"]["retain_ratio"] for m in chosen], [m["chosen"]["forget_ratio"] for m in chosen],
                         s=45, color="tab:blue" if kept else "tab:red", **style)
    for member in front["members"]:
        axis.axvline(member["retain_budget"], color="grey", linestyle=":", linewidth=0.8)
        axis.annotate(f"{member['retain_budget']:g}", (member["chosen"]["retain_ratio"],
                                                       member["chosen"]["forget_ratio"]),
                      textcoords="offset points", xytext=(5, 5), fontsize=8)
    axis.set_xlabel(f"retain {front['metric']} / original's (validation)")
    axis.set_ylabel(f"forget {front['forget_metric']} ratio (lower = more forgotten)")
    axis.set_title("What each retain budget buys (dotted: the budgets)")
    axis.legend(fontsize=8)
    return save_figure(figure, path, tight=True)
