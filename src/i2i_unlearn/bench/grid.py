"""The tuning grid and the rule that chooses in it (bench/tune.py runs the trials): the grid's points and chains,
successive halving, and the rule's order over scored trials."""
from __future__ import annotations

import itertools
import json
import math

RULE_DOC = ("among the trials whose retain FID ratio to the original's has a 95 % upper end <= retain_fid_max_x "
            "(paired: the per-resample ratio over the same bootstrap resamples of the validation images) and whose "
            "retain similarity >= retain_similarity_min_x x the original's (validation), the one with the lowest forget recognition, ties broken by the highest "
            "forget FID; if none keeps the retain set, the one with the lowest retain FID ratio, marked as such")

LIKE_RETRAINED_DOC = ("a second choice from the same trials, for an auditor rather than the paper's scores: among the "
                      "trials that keep the retain set by the rule, the one whose forget recognition and forget FID "
                      "are closest to the retrained models' (validation, the mean over like_retrained_reference: other "
                      "seeds than the held-out one the test and the audit read against; the sum of the two relative "
                      "distances). With like_retrained_max_step_share, only the trials whose optimiser steps, with "
                      "those of the model they start from, are at most that share of retraining's (the robustness "
                      "audit's optimiser-step target, known before any run; its wall-time target is judged after). "
                      "The rule rewards the most forgetting, which an auditor can see: a model that forgets more than "
                      "one retrained without the data stands out")

HALVING_DOC = ("successive halving: every chain of trials (the same knobs but the length) runs its shortest "
               "trial; after each length only the best `keep` share of the chains (at least one) by the rule's order "
               "continues to the next length (the trials that keep the retain set by least forgetting recognition, "
               "then the others by retain FID); a chain not continued is recorded as pruned and cannot be chosen")


def grid_points(grid: dict) -> list[dict]:
    """Every combination of a method's grid, as nested UnlearnConfig overrides ("optim.lr" -> optim: {lr})."""
    keys = list(grid)
    points = []
    for values in itertools.product(*(grid[k] for k in keys)):
        point: dict = {}
        for key, value in zip(keys, values):
            *parents, leaf = key.split(".")
            node = point
            for parent in parents:
                node = node.setdefault(parent, {})
            node[leaf] = value
        points.append(point)
    return points


def chains(grid: dict) -> list[list[dict]]:
    """The grid's points grouped by every knob but `steps` (a chain: the same run at each length), shortest first."""
    grouped: dict[str, list[dict]] = {}
    for point in grid_points(grid):
        grouped.setdefault(json.dumps({k: v for k, v in point.items() if k != "steps"}, sort_keys=True), []).append(point)
    return [sorted(points, key=lambda p: p.get("steps", 0)) for points in grouped.values()]


def continued(count: int, keep: float) -> int:
    """How many of `count` chains continue to the next length under successive halving."""
    return max(1, math.ceil(keep * count - 1e-9))


def planned_steps(grid: dict, keep: float = 1.0) -> int:
    """The optimiser steps one method's grid costs: a trial continues its shorter twin, so each chain costs its
    longest trial; with successive halving only `continued` chains pay for each further length."""
    lengths = [point.get("steps", 0) for point in chains(grid)[0]]
    alive, total, done = len(chains(grid)), 0, 0
    for rung, steps in enumerate(lengths):
        alive = alive if rung == 0 else continued(alive, keep)
        total, done = total + alive * (steps - done), steps
    return total


def halving_keep(spec: dict) -> float:
    """The share of chains that continue to each next length (1.0: no halving)."""
    return float((spec.get("halving") or {}).get("keep", 1.0))


def successive_halving(grid_chains: list[list[dict]], keep: float, rule: dict, run, prune) -> list[dict]:
    """Run the chains length by length; after each, only the `continued` best by `rule_order` go on, and the
    rest of each other chain is pruned. `run(overrides)` returns a scored trial, `prune(overrides, after_steps,
    rank, of)` a pruned one; returns every trial of the grid, scored or pruned (the chain order is the grid's,
    so ties keep the earlier chain)."""
    settled, alive, last = [], list(range(len(grid_chains))), {}
    for rung in range(len(grid_chains[0])):
        if rung > 0:
            ranked = sorted(alive, key=lambda c: rule_order(last[c], rule))
            survivors = ranked[:continued(len(ranked), keep)]
            for rank, c in enumerate(ranked[len(survivors):], start=len(survivors) + 1):
                after = grid_chains[c][rung - 1].get("steps", 0)
                settled += [prune(point, after, rank, len(ranked)) for point in grid_chains[c][rung:]]
            alive = sorted(survivors)
        last = {c: run(grid_chains[c][rung]) for c in alive}
        settled += last.values()
    return settled


def ratios(trial: dict, original: dict) -> dict:
    """A trial's scores over the original's; the retain FID's upper end from the paired ratio's half-width (trials
    scored before the pairing: the trial's own FID interval over the original's point value)."""
    t, o = trial["scores"], original
    retain_fid_x = t["retain"]["fid"] / o["retain"]["fid"]
    hi_x = (retain_fid_x + t["retain"]["fid_ratio_hw"] if "fid_ratio_hw" in t["retain"]
            else (t["retain"]["fid"] + t["retain"].get("fid_hw", 0.0)) / o["retain"]["fid"])
    return {"retain_fid_x": round(retain_fid_x, 4), "retain_fid_hi_x": round(hi_x, 4),
            "retain_similarity_x": round(t["retain"]["similarity"] / o["retain"]["similarity"], 4),
            "forget_fid_x": round(t["forget"]["fid"] / o["forget"]["fid"], 4),
            "forget_recognition_x": round(t["forget"]["recognition"] / o["forget"]["recognition"], 4)
            if o["forget"]["recognition"] else None}


def keeps_retain(trial: dict, rule: dict) -> bool:
    ratios = trial["ratios"]
    return (ratios.get("retain_fid_hi_x", ratios["retain_fid_x"]) <= rule["retain_fid_max_x"]
            and trial["ratios"]["retain_similarity_x"] >= rule["retain_similarity_min_x"])


def rule_order(trial: dict, rule: dict) -> tuple:
    """The rule as a sort key: first the trials that keep the retain set, by least forgetting recognition (ties:
    the highest forget FID), then the others by retain FID."""
    if keeps_retain(trial, rule):
        return 0, trial["scores"]["forget"]["recognition"], -trial["scores"]["forget"]["fid"]
    return 1, trial["ratios"]["retain_fid_x"], 0.0


def choose(trials: list[dict], rule: dict) -> tuple[dict, bool]:
    """(the chosen trial, whether it keeps the retain set by the rule)."""
    chosen = min(trials, key=lambda t: rule_order(t, rule))
    return chosen, keeps_retain(chosen, rule)


def distance_to_retrained(trial: dict, retrained: dict) -> float:
    """How far a trial's forgetting is from the retrained model's: the relative distances of forget recognition
    and forget FID (validation), summed (a score the retrained model has at 0: the plain distance)."""
    scores, reference = trial["scores"]["forget"], retrained["forget"]
    return sum(abs(scores[key] - reference[key]) / (reference[key] or 1.0) for key in ("recognition", "fid")
               if reference.get(key) is not None and scores.get(key) is not None)


def choose_like_retrained(trials: list[dict], rule: dict, retrained: dict) -> dict | None:
    """Among the trials that keep the retain set by the rule, the one that forgets most like the retrained model
    (LIKE_RETRAINED_DOC); None when none keeps it."""
    keeping = [t for t in trials if keeps_retain(t, rule)]
    return min(keeping, key=lambda t: distance_to_retrained(t, retrained), default=None)
