"""The benchmark's targets (issue 10), judged from a bench.json's tables: each a verdict with its value
and limit, data the results page renders (bench/page/). Beside targets.py, the demo's targets."""
from __future__ import annotations

from i2i_unlearn.evaluation.bench_cost import TEXT as COST_TEXT
from i2i_unlearn.evaluation.bench_cost import cost_targets
from i2i_unlearn.evaluation.metrics import can_pair, compare_rows
from i2i_unlearn.evaluation.results import lookup
from i2i_unlearn.evaluation.targets import FORGET_FID_TIMES, FORGET_RECOGNITION_TIMES
from i2i_unlearn.text import escape_markdown as md

MISSING = "–"


def _stat(row: dict, set_name: str, view: str, key: str) -> dict | None:
    return lookup(row, "scores", set_name, view, key)


def _change(key: str, change: dict) -> str:
    value = change.get("change")
    if value is None:
        return MISSING
    text = f"{value:.2f}x" if key == "fid" else f"{value:+.3f}"
    return text + (" (tie)" if change.get("verdict") == "tie" else "")


# issue 10's targets, judged on a family's main table
WORST_CLASS_RATIO, NIGHT_S = 1.3, 12 * 3600
PROXY_RETAIN_RATIO = 1.3

TARGET_TEXT = {
    "tradeoff": "on or beyond every baseline's trade-off curve (no baseline row, its alpha sweep included, has both "
                "a lower retain FID and a higher forget FID outside the intervals)",
    "retain": "retain FID within the retrained model's interval",
    "forget": "forget FID at least as far from the original as the retrained model's",
    **COST_TEXT,
    "worst-class": f"worst retain class's FID ≤ {WORST_CLASS_RATIO}x the original's (the issue asks it of the MAE)",
    "step": "the unlearning step of ours cheaper than a training step (benchmarks/step_cost.py)",
    "proxy": f"a proxy-only ours row within {PROXY_RETAIN_RATIO}x the original's retain FID while meeting the forget "
             f"targets (forget FID ≥ {FORGET_FID_TIMES}x, recognition ≤ 1/{1 / FORGET_RECOGNITION_TIMES:.0f} of the "
             "original's; the issue asks it of the MAE)",
}

FAMILIES = ["mae", "vqgan", "diffusion"]

# (target key, text, the families it is asked of, how many of them must meet it)
SUMMARY_TARGETS = [
    ("tradeoff", "ours on or beyond every baseline's trade-off curve", FAMILIES, 2),
    ("retrained-match", "ours's retain FID within the retrained interval and its forget FID at least the "
                        "retrained model's", FAMILIES, 2),
    ("cost-training", TARGET_TEXT["cost-training"], FAMILIES, 3),
    ("cost-retraining", TARGET_TEXT["cost-retraining"], FAMILIES, 3),
    ("step", "the VQ-GAN's unlearning step cheaper than its training step", ["vqgan"], 1),
    ("worst-class", f"worst retain class's FID ≤ {WORST_CLASS_RATIO}x on the MAE", ["mae"], 1),
    ("proxy", f"a proxy-only ours within {PROXY_RETAIN_RATIO}x the original's retain FID, forget targets met, on the "
              "MAE", ["mae"], 1),
]

def _mean_hw(row: dict, set_name: str) -> tuple[float, float]:
    stat = _stat(row, set_name, "whole", "fid")
    return stat["mean"], stat.get("hw") or 0.0

def _tradeoff_versus(row: dict, reference: dict) -> tuple[str, str]:
    """How a row compares with a reference on retain FID (lower is better) and forget FID (higher is better)."""
    return (compare_rows(_stat(row, "retain", "whole", "fid"), _stat(reference, "retain", "whole", "fid"), "lower"),
            compare_rows(_stat(row, "forget", "whole", "fid"), _stat(reference, "forget", "whole", "fid"), "higher"))

def _target(key: str, target: str, measured: str, verdict: str, value: float | None = None, limit: str | None = None,
            interval: list[float] | None = None) -> dict:
    """`measured` and `verdict` are the page's text; `value` (a number), `limit` (its bar, as text: some bars are
    another row's interval) and `interval` (the value's 95 % interval, where it has one) are targets.json's."""
    status = "met" if verdict.startswith("met") else "tie" if verdict.startswith("tie") else "missed"
    return {"key": key, "target": target, "measured": measured, "verdict": verdict, "status": status,
            "value": value, "limit": limit, "interval": interval}


def _interval(mean: float, hw: float) -> list[float]:
    return [round(mean - hw, 6), round(mean + hw, 6)]

def judge_targets(bench: dict, table: dict, step_costs=()) -> list[dict]:
    """Each of issue 10's targets on one main table: what was measured and a verdict (met, missed by how
    much, or tie), with its status. Rows are `ours` as configured; the references are the original and the
    retrained models. `step_costs`: benchmarks/step_cost.py's records (the cost targets add counted FLOPs)."""
    rows = {r["name"]: r for r in table["rows"] if r.get("scores") and _stat(r, "retain", "whole", "fid")}
    ours, retrained = rows.get("ours"), rows.get("retrained")
    if ours is None:
        return []
    targets = []
    # a forgetting verdict needs forgetting: ours must forget more than the original, beyond the interval
    original = rows.get("original")
    versus_original = compare_rows(_stat(ours, "forget", "whole", "fid"),
                                   _stat(original, "forget", "whole", "fid"), "higher") if original else "better"
    baselines = [r for r in rows.values() if r["group"] != "reference" and r["method"] not in ("ours", "retrain")]
    if baselines:
        against_ours = {r["name"]: _tradeoff_versus(r, ours) for r in baselines}
        beaten_by = [name for name, pair in against_ours.items() if pair == ("better", "better")]
        # the rule needs both; a row better on one score and tied on the other still beats ours, said plainly
        ahead = [f"{md(name)} ({'retain' if pair[0] == 'better' else 'forget'} FID)"
                 for name, pair in against_ours.items() if sorted(pair) == ["better", "tie"]]
        verdict = "missed: beaten by " + ", ".join(md(n) for n in beaten_by) if beaten_by else "met"
        if ahead:
            verdict += "; better on one score and tied on the other: " + ", ".join(ahead)
        # the rule judges ours at its chosen knobs; where a baseline beats ours's other sweep points, say so too
        for point in (r for r in rows.values() if r["method"] == "ours" and r.get("vary")):
            by = sorted({r["method"] for r in baselines if _tradeoff_versus(r, point) == ("better", "better")})
            if by:
                verdict += f"; {md(point['name'])} (not the chosen knobs) beaten by " + ", ".join(md(m) for m in by)
        # a trade-off point that forgets nothing is no trade-off
        if versus_original != "better":
            rest = verdict[len("met"):] if verdict.startswith("met") else "; " + verdict
            verdict = (f"missed: ours {'ties' if versus_original == 'tie' else 'is behind'} the original on forget "
                       "FID (no measurable forgetting)" + rest)
        targets.append(_target("tradeoff", TARGET_TEXT["tradeoff"], f"{len(baselines)} baseline rows compared",
                               verdict, value=len(beaten_by), limit="= 0 baseline rows better on both FIDs"))
    if retrained:
        (o_r, o_r_hw), (t_r, t_r_hw) = _mean_hw(ours, "retain"), _mean_hw(retrained, "retain")
        ours_retain, retrained_retain = _stat(ours, "retain", "whole", "fid"), _stat(retrained, "retain", "whole", "fid")
        if can_pair(ours_retain, retrained_retain):   # the paired rule (compare_rows pairs exactly these)
            versus = compare_rows(ours_retain, retrained_retain, "lower")
            verdict = ("met (better by the paired rule)" if versus == "better" else "met (tie by the paired rule)"
                       if versus == "tie" else f"missed (worse by the paired rule, by {o_r - t_r:.2f})")
        else:
            verdict = ("met (below the interval)" if o_r < t_r - t_r_hw else "met" if o_r <= t_r + t_r_hw
                       else f"missed by {o_r - (t_r + t_r_hw):.2f}")
        targets.append(_target("retain", TARGET_TEXT["retain"], f"{o_r:.2f} vs {t_r:.2f} ± {t_r_hw:.2f}", verdict,
                               value=o_r, limit=f"tied with or below the retrained models' {t_r:.2f} ± {t_r_hw:.2f}",
                               interval=_interval(o_r, o_r_hw)))
        (o_f, o_f_hw), (t_f, t_f_hw) = _mean_hw(ours, "forget"), _mean_hw(retrained, "forget")
        versus = compare_rows(_stat(ours, "forget", "whole", "fid"), _stat(retrained, "forget", "whole", "fid"), "higher")
        verdict = "met" if o_f >= t_f else "tie (inside the intervals)" if versus == "tie" else \
            f"missed by {t_f - o_f:.2f}"
        # as far from the original as retraining, yet not measurably from it: missed, where retraining itself is
        # measurably apart (else the bar is one the reference does not clear either, and the verdict above stands)
        retrained_apart = compare_rows(_stat(retrained, "forget", "whole", "fid"),
                                       _stat(original, "forget", "whole", "fid"), "higher") if original else None
        if versus_original != "better" and retrained_apart == "better":
            verdict = (f"missed: ours {'ties' if versus_original == 'tie' else 'is behind'} the original on forget "
                       "FID (no measurable forgetting)")
        targets.append(_target("forget", TARGET_TEXT["forget"], f"{o_f:.2f} ± {o_f_hw:.2f} vs {t_f:.2f} ± {t_f_hw:.2f}",
                               verdict, value=o_f, limit=f">= the retrained models' {t_f:.2f} ± {t_f_hw:.2f}",
                               interval=_interval(o_f, o_f_hw)))
    targets += cost_targets(bench, table, ours, step_costs)
    worst = (table.get("collateral") or {}).get("ours") or {}
    change = next((c for c in worst.get("classes", []) if c["class"] == worst.get("worst")), None)
    if change and change["fid"].get("change") is not None:
        ratio = change["fid"]["change"]
        targets.append(_target("worst-class", TARGET_TEXT["worst-class"],
                               f"{md(worst['worst'])}: {_change('fid', change['fid'])}",
                               "met" if ratio <= WORST_CLASS_RATIO else f"missed by {ratio - WORST_CLASS_RATIO:.2f}x"
                               + (" (the rise itself is inside the intervals)"
                                  if change["fid"].get("verdict") == "tie" else ""),
                               value=ratio, limit=f"<= {WORST_CLASS_RATIO}"))
    methods = bench.get("methods") or {}
    proxies = [r for name, r in rows.items() if ((methods.get(name) or {}).get("set") or {}).get("proxy")]
    if proxies and "original" in rows:
        targets.append(_proxy_target(rows["original"], proxies))
    return targets

def _proxy_target(original: dict, proxies: list[dict]) -> dict:
    """Item 7 of the issue, on the means: the proxy rows that meet the forget targets, the lowest retain FID
    ratio among them decides (or, if none meets them, the lowest of all, missed)."""
    mean = lambda row, set_name, key: _stat(row, set_name, "whole", key)["mean"]   # noqa: E731
    judged = []
    for row in proxies:
        forget_met = (mean(row, "forget", "fid") >= FORGET_FID_TIMES * mean(original, "forget", "fid")
                      and mean(row, "forget", "recognition")
                      <= FORGET_RECOGNITION_TIMES * mean(original, "forget", "recognition"))
        judged.append((not forget_met, mean(row, "retain", "fid") / mean(original, "retain", "fid"), row["name"]))
    judged.sort()
    forget_missed, ratio, best = judged[0]
    measured = "; ".join(f"{md(name)} {r:.2f}x ({'forget targets missed' if missed else 'forget targets met'})"
                         for missed, r, name in judged)
    verdict = ("missed: no proxy row meets the forget targets" if forget_missed
               else "met" if ratio <= PROXY_RETAIN_RATIO
               else f"missed by {ratio - PROXY_RETAIN_RATIO:.2f}x ({md(best)}, the best)")
    return _target("proxy", TARGET_TEXT["proxy"], measured, verdict, value=ratio,
                   limit=f"<= {PROXY_RETAIN_RATIO}, forget targets met")
