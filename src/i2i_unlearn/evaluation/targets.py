"""The acceptance targets of the demo (issue: evaluation), checked on a results dict.

Unlearned vs original on held-out images: retain FID <= 1.15x and similarity >= 0.97x the
original's; forget FID >= 3x and forget-class recognition <= 1/3 of the original's. And the
original must be competent: retain FID <= 1/2 of mean-image fill, and its forget outputs
recognised at >= 0.8x the rate of the real forget images.
"""
from __future__ import annotations

# reference rows every evaluation adds beside the models
MEAN_FILL = "mean-image fill"
GROUND_TRUTH = "ground truth"


def _target(name, value, op, limit):
    met = None if value is None or limit is None else (value <= limit if op == "<=" else value >= limit)
    return {"name": name, "value": value, "op": op, "limit": limit, "met": met}


def _times(factor, value):
    return None if value is None else factor * value


def check_targets(results: dict, original: str = "original", unlearned: str = "unlearned") -> list[dict]:
    m = results["metrics"]
    if original not in m or unlearned not in m:
        return []
    o, u = m[original], m[unlearned]
    return [
        _target("retain FID <= 1.15 x original", u["retain"]["fid"], "<=", _times(1.15, o["retain"]["fid"])),
        _target("retain similarity >= 0.97 x original", u["retain"]["similarity"], ">=",
                _times(0.97, o["retain"]["similarity"])),
        _target("forget FID >= 3 x original", u["forget"]["fid"], ">=", _times(3, o["forget"]["fid"])),
        _target("forget recognition <= 1/3 of original", u["forget"]["recognition"], "<=",
                _times(1 / 3, o["forget"]["recognition"])),
        _target("original retain FID <= 1/2 of mean-image fill", o["retain"]["fid"], "<=",
                _times(0.5, m[MEAN_FILL]["retain"]["fid"])),
        _target("original forget recognition >= 0.8 x real forget images", o["forget"]["recognition"], ">=",
                _times(0.8, m[GROUND_TRUTH]["forget"]["recognition"])),
    ]
