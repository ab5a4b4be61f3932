"""The acceptance targets of the demo (issue: evaluation), checked on a results dict.

Unlearned vs original on held-out images: retain FID <= 1.15x and similarity >= 0.97x the
original's; forget FID >= 3x and forget-class recognition <= 1/3 of the original's. Where a model
retrained without the forget data is evaluated too (a row named "retrained") and itself stays above
that third (the visible frame keeps the class recognisable), recognition <= the retrained model's
+ 0.05 is the bar instead, and both are shown. And the original must be competent: retain FID <= 1/4
of mean-image fill, and its forget outputs recognised at >= 0.8x the rate of the real forget images.
A file-list request (forget_kind "files") is judged on retain quality only: its forgetting is the
membership audit's (evaluation/audit/), since forgotten images of kept classes should still be drawn.
"""
from __future__ import annotations

import math

# reference rows every evaluation adds beside the models
MEAN_FILL = "mean-image fill"
GROUND_TRUTH = "ground truth"
RETRAINED = "retrained"          # a model row of that name is the reference retrained without the forget data
RETRAINED_MARGIN = 0.05
FORGET_FID_TIMES = 3               # the forget targets: forget FID >= 3x the original's
FORGET_RECOGNITION_TIMES = 1 / 3   # and forget-class recognition <= 1/3 of the original's


# A value this close to its limit meets it: scores are stored rounded or in float32, so a recognition rate of 72 in
# 100 images against a bar of the retrained model's 67 in 100 + 0.05 compared 0.72000003 with 0.72000002.
SAME_REL_TOL = 1e-6


def _target(name, value, op, limit):
    met = None if value is None or limit is None else (
        math.isclose(value, limit, rel_tol=SAME_REL_TOL) or (value <= limit if op == "<=" else value >= limit))
    return {"name": name, "value": value, "op": op, "limit": limit, "met": met}


def _times(factor, value):
    return None if value is None else factor * value


def check_targets(results: dict, original: str = "original", unlearned: str = "unlearned") -> list[dict]:
    m = results["metrics"]
    if original not in m or unlearned not in m:
        return []
    o, u = m[original], m[unlearned]
    recognition = _target("forget recognition <= 1/3 of original", u["forget"]["recognition"], "<=",
                          _times(FORGET_RECOGNITION_TIMES, o["forget"]["recognition"]))
    recognition_targets = [recognition]
    if RETRAINED in m and recognition["limit"] is not None and m[RETRAINED]["forget"]["recognition"] is not None \
            and m[RETRAINED]["forget"]["recognition"] > recognition["limit"]:
        # the retrained reference itself stays above a third: the bar is the reference (+ margin)
        recognition_targets = [
            {**recognition, "name": recognition["name"] + " (not judged: the retrained model stays above it)",
             "met": None},
            _target(f"forget recognition <= retrained + {RETRAINED_MARGIN}", u["forget"]["recognition"], "<=",
                    m[RETRAINED]["forget"]["recognition"] + RETRAINED_MARGIN)]
    targets = [
        _target("retain FID <= 1.15 x original", u["retain"]["fid"], "<=", _times(1.15, o["retain"]["fid"])),
        _target("retain similarity >= 0.97 x original", u["retain"]["similarity"], ">=",
                _times(0.97, o["retain"]["similarity"])),
        _target("forget FID >= 3 x original", u["forget"]["fid"], ">=", _times(FORGET_FID_TIMES, o["forget"]["fid"])),
        *recognition_targets,
        _target("original retain FID <= 1/4 of mean-image fill", o["retain"]["fid"], "<=",
                _times(0.25, m[MEAN_FILL]["retain"]["fid"])),
        _target("original forget recognition >= 0.8 x real forget images", o["forget"]["recognition"], ">=",
                _times(0.8, m[GROUND_TRUTH]["forget"]["recognition"])),
    ]
    if results.get("forget_kind") == "files":
        return [target for target in targets if target["name"].startswith(("retain ", "original retain "))]
    return targets
