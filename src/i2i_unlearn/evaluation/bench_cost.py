"""The bench's cost targets (issue 10), with wall times that travel between machines (issue 32).

A wall time is the machine's as much as the method's: two identical diffusion retrainings took 8316 s and 3470 s.
Since host.py, runs and bench cells record the machine's measured float32 matmul speed, so a time can also be
given at a reference speed: seconds x measured GFLOP/s / REFERENCE_GFLOPS. Records from before have no speed;
their seconds stay as measured, and the page says so (NOT_RECORDED). A cost target is judged on reference seconds
when both of its sides recorded their speed (a side whose shipped trainings did not may be read from the bench's
`timed` (re)trainings of the same steps that did), else on wall seconds as before, and its verdict names the basis;
the optimizer steps stand beside the seconds, and, where benchmarks/step_cost.py counted the family's FLOPs per
step, the FLOPs of both sides (steps times a step's count, at the shipped recipes' batches: training 64 images,
unlearning 32 forget + 32 retain).
"""
from __future__ import annotations

import statistics

REFERENCE_GFLOPS = 100.0
NOT_RECORDED = "host speed not recorded"
COST_OF_TRAINING, COST_OF_RETRAINING = 0.05, 0.10

TEXT = {
    "cost-training": f"unlearning wall time ≤ {COST_OF_TRAINING:.0%} of the original's training",
    "cost-retraining": f"unlearning wall time ≤ {COST_OF_RETRAINING:.0%} of retraining",
}


def at_reference(seconds: float | None, host: dict | None) -> float | None:
    """`seconds` on a machine of REFERENCE_GFLOPS (None without a recorded speed)."""
    gflops = (host or {}).get("matmul_gflops")
    return seconds * gflops / REFERENCE_GFLOPS if seconds and gflops else None


def row_unlearning_at_reference(bench: dict, table: dict, row_name: str) -> float | None:
    """Median over a row's cells on the table's task (its seeds) of the unlearning time at the reference speed,
    as the row's wall time is their median; None if any of them did not record its machine's speed."""
    costs = [c["cost"]["unlearning"] for c in bench.get("cells") or []
             if c["family"] == table["family"] and c["row"] == row_name and c["task"] == table["task"]
             and (c.get("cost") or {}).get("unlearning")]
    values = [at_reference(cost.get("wall_time_s"), cost.get("host")) for cost in costs]
    return statistics.median(values) if values and None not in values else None


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _typical(values: list[float]) -> float:
    """The trainings' time a cost is read against: their median. Identical trainings on machines of unrecorded speed
    differ several-fold (Fashion-MNIST's three retrainings: 988, 994 and 7288 s); the mean would let one slow
    machine turn a miss into a pass."""
    return statistics.median(values)


def _counted_flops(step_costs, bench: dict, table: dict) -> tuple[float, float] | None:
    """(GFLOP of one `ours` step, of one training step) counted for the table's original model, or None."""
    original = ((bench.get("families") or {}).get(table["family"]) or {}).get("original")
    for record in step_costs or ():
        ours = (record.get("unlearning_step_gflop") or {}).get("ours")
        if record.get("model") == original and ours and record.get("training_step_gflop"):
            return ours, record["training_step_gflop"]
    return None


def _cost_target(key: str, limit: float, unlearning: tuple, trainings: list[dict], timed: list[dict] = (),
                 flops: tuple[float, float] | None = None) -> dict:
    """One cost target: unlearning (wall s, reference s, steps) against the median of `trainings` (run records).
    Where not every training recorded its machine's speed, the reference seconds are read from `timed`: trainings of
    the same recipe (the same steps) that did, named in the text."""
    seconds, seconds_ref, steps = unlearning
    wall = _typical([t["wall_time_s"] for t in trainings])
    refs = [at_reference(t["wall_time_s"], t.get("host")) for t in trainings]
    from_timed = ""
    if None in refs and timed and {t.get("steps") for t in timed} == {t.get("steps") for t in trainings}:
        refs = [at_reference(t["wall_time_s"], t["host"]) for t in timed]
        which = f"the median of {len(timed)} (re)trainings" if len(timed) > 1 else "a (re)training"
        from_timed = (f" ({which} of the same steps that recorded their machine: "
                      + ", ".join(t.get("dir", "?") for t in timed) + ")")
    train_steps = [t.get("steps") for t in trainings]
    # each training's own seconds beside their mean: trainings of one recipe on different machines differ widely
    mean_of = (f" (median of {len(trainings)}: " + ", ".join(f"{t['wall_time_s']:.0f}" for t in trainings) + ")"
               if len(trainings) > 1 else "")
    measured = f"{seconds:.0f} s (median over seeds) of {wall:.0f} s{mean_of} = {seconds / wall:.1%}"
    if steps and None not in train_steps:
        measured += f"; {steps:.0f} optimizer steps of {_mean(train_steps):.0f}"
        if flops:
            step_gflop, train_gflop = flops
            measured += (f"; counted FLOPs: {steps:.0f} x {step_gflop:.1f} GFLOP of {_mean(train_steps):.0f} x "
                         f"{train_gflop:.1f} GFLOP = {steps * step_gflop / (_mean(train_steps) * train_gflop):.1%}")
    if seconds_ref is not None and None not in refs:   # both sides' speed known: judged at the reference speed
        share, basis = seconds_ref / _typical(refs), f" (judged at {REFERENCE_GFLOPS:.0f} GFLOP/s)"
        measured += (f"; at {REFERENCE_GFLOPS:.0f} GFLOP/s: {seconds_ref:.0f} s of {_typical(refs):.0f} s"
                     f"{from_timed} = {share:.1%}")
    else:
        share, basis = seconds / wall, " (wall seconds)"
        missing = [side for side, known in (("unlearning", seconds_ref is not None), ("training", None not in refs))
                   if not known]
        measured += f"; wall seconds: {NOT_RECORDED} for the {' and the '.join(missing)}"
    verdict = ("met" if share <= limit else f"missed by {share - limit:.1%} points") + basis
    return {"key": key, "target": TEXT[key], "measured": measured, "verdict": verdict,
            "status": "met" if share <= limit else "missed", "value": share, "limit": f"<= {limit:g}{basis}",
            "interval": None}


def cost_targets(bench: dict, table: dict, ours: dict, step_costs=()) -> list[dict]:
    """Unlearning ≤ 5 % of the original's training and ≤ 10 % of retraining (the median of the retrained models),
    for ours's row of a main table."""
    training = ((bench.get("families") or {}).get(table["family"]) or {}).get("training") or {}
    cost = ours.get("cost") or {}
    seconds = cost.get("unlearning_wall_time_s")
    if not seconds:
        return []
    unlearning = (seconds, row_unlearning_at_reference(bench, table, ours["name"]), cost.get("steps"))
    original = [t for t in [training.get("original")] if t and t.get("wall_time_s")]
    retrained = [t for t in training.get("retrained") or [] if t and t.get("wall_time_s")]
    timed = [t for t in training.get("timed") or [] if t and t.get("wall_time_s") and t.get("host")]
    targets, flops = [], _counted_flops(step_costs, bench, table)
    if original:
        targets.append(_cost_target("cost-training", COST_OF_TRAINING, unlearning, original, timed, flops))
    if retrained:
        targets.append(_cost_target("cost-retraining", COST_OF_RETRAINING, unlearning, retrained, timed, flops))
    return targets
