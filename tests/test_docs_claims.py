"""Every number and comparative claim of the docs pages, checked against the JSON it comes from (issue 32: no
typed claim). docs/results.md is generated (benchmarks/make_results_page.py) and the README's numbers are
tests/test_readme.py's; this file holds the rest of docs/*.md.

Each claim below is a phrase of a page (matched with its whitespace collapsed) and a check that reads the JSON in
benchmarks/results (or the code, for a setting): when a page's words change, or a benchmark is rerun and its JSON
no longer says what the page does, the claim fails and says which. A number in a page's prose must lie in one
of its claims' phrases (counted with repeats), or be one the page names without measuring it (NOT_MEASURED,
each with why); so a new typed number fails until it is checked here.
"""
from __future__ import annotations

import json
import math
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

from test_readme import prose_numbers

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PAGES = ["docs/findings.md", "docs/budget.md", "docs/proxy.md", "docs/results-notes.md", "docs/distributed.md",
         "docs/cli.md", "docs/families.md", "docs/your-own-data.md", "docs/robustness.md"]


def said(page: str) -> str:
    return " ".join((ROOT / page).read_text().split())


def results(name: str) -> dict:
    return json.loads((RESULTS / name).read_text())


def main_rows(bench: str) -> dict[str, dict]:
    """The main table of bench-<bench> by row name (rows with scores)."""
    from i2i_unlearn.bench.page.tables import _main_table
    table = _main_table(results(f"bench-{bench}/bench.json"))
    return {r["name"]: r for r in table["rows"] if r.get("scores")}


def stat(row: dict, set_name: str, key: str = "fid", view: str = "whole") -> dict:
    return row["scores"][set_name][view][key]


def mean(row: dict, set_name: str, key: str = "fid", view: str = "whole") -> float:
    return stat(row, set_name, key, view)["mean"]


def versus(a: dict, b: dict, set_name: str, key: str = "fid", view: str = "whole") -> str:
    """The page's rule (evaluation/metrics.py compare_rows): better, worse or tie for a against b."""
    from i2i_unlearn.evaluation.metrics import compare_rows
    good = "lower" if (set_name, key) in (("retain", "fid"), ("forget", "recognition")) else "higher"
    return compare_rows(stat(a, set_name, key, view), stat(b, set_name, key, view), good)


def bench_target(bench: str, key: str) -> dict:
    from i2i_unlearn.bench.page.tables import _main_table
    from i2i_unlearn.evaluation.bench_targets import judge_targets
    record = results(f"bench-{bench}/bench.json")
    return next(t for t in judge_targets(record, _main_table(record)) if t["key"] == key)


def method_verdicts(source: str, run: str) -> Counter:
    """The verdicts of a run's method targets in docs/targets.json (competence checks apart)."""
    targets = json.loads((ROOT / "docs" / "targets.json").read_text())["targets"]
    return Counter(e["verdict"] for e in targets if e["json"] == f"benchmarks/results/{source}"
                   and e.get("run") == run and e["kind"] == "method")


def demo_test(tune: str, method: str) -> dict:
    """A tuned method's one test scoring: metrics of the unlearned model, the original and the retrained."""
    return results(f"tune-{tune}.json")["test"][method]["metrics"]


def ratio(record: dict, model: str, set_name: str, key: str = "fid") -> float:
    return record[model][set_name][key] / record["original"][set_name][key]


def baseline_points(rows: dict) -> list[dict]:
    return [r for r in rows.values() if r["group"] != "reference" and r["method"] not in ("ours", "retrain")]


CLAIMS: list[tuple[str, tuple[str, ...], object]] = []


def claim(page: str, *phrases: str):
    """Register the decorated check as the evidence for these phrases of `page`."""
    def register(check):
        CLAIMS.append((page, phrases, check))
        return check
    return register


# --- README.md (its numbers are tests/test_readme.py's; these are its words about time) --------------------------

@claim("README.md", "`unlearn` writes a new folder (about a minute on two CPU cores)",
       "(this runs from the repository root in a few minutes)")
def the_readme_run_times():
    # the quick start's knobs (configs/unlearn-mae-animal-mnist.yaml) are the tuning's choice for ours: its trial
    # on two threads, the whole run (the API example adds an evaluation of two models)
    knobs = yaml.safe_load((ROOT / "configs" / "unlearn-mae-animal-mnist.yaml").read_text())
    tune = results("tune-mae.json")
    (trial,) = [t for t in tune["trials"] if t["key"] == tune["chosen"]["ours"]["key"]]
    assert {k: trial["config"][k] for k in ("alpha", "steps", "optim")} == {k: knobs[k] for k in ("alpha", "steps",
                                                                                                   "optim")}
    assert 40 < trial["unlearning_wall_time_s"] < 90


# --- docs/findings.md ----------------------------------------------------------------------------------------

@claim("docs/findings.md", "All four are.")
def competence_of_the_four_originals():
    models = results("competence.json")["models"]
    assert len(models) == 4 and all(m["competent"] for m in models.values())


@claim("docs/findings.md", "the eight methods chosen on validation for the MAE over issue 32's one grid (24 points "
       "per method, of which successive halving runs 16: 10,000 optimiser steps per method)",
       "Every method but `undo` keeps the retain set by the rule somewhere on that grid, `max-loss` and "
       "`retain-label` only at one point (forget weight 0.01), where they forget little; `noisy-label` and `ours` "
       "forget the most within the bound.",
       "the paired upper end of its retain FID ratio is 1.17x at best, so its choice is its trial with the lowest "
       "retain FID.")
def mae_tuned_on_one_grid():
    from i2i_unlearn.bench.grid import keeps_retain
    tune = results("tune-mae.json")
    chosen, methods = tune["chosen"], tune["budget"]["methods"]
    assert len(methods) == 8 and set(chosen) == set(methods) and tune["budget"]["trials_per_method"] == 24
    assert tune["budget"]["steps_per_method"] == 10_000 and tune["budget"]["halving"]
    run = {m: [t for t in tune["trials"] if t["method"] == m and "scores" in t] for m in methods}
    for method in methods:   # 12 trials of 500 steps, 4 of them continued to 1500
        assert len(run[method]) == 16 and sum(t["config"]["steps"] for t in run[method]) - 500 * 4 == 10_000, method
    assert [m for m in methods if not chosen[m]["keeps_retain_by_rule"]] == ["undo"]
    assert chosen["undo"]["starts_from"]["key"] == chosen["ours-substitute"]["key"]
    assert not any(keeps_retain(t, tune["rule"]) for t in run["undo"])
    assert round(min(t["ratios"]["retain_fid_hi_x"] for t in run["undo"]), 2) == 1.17
    assert chosen["undo"]["key"] == min(run["undo"], key=lambda t: t["ratios"]["retain_fid_x"])["key"]
    for method in ("max-loss", "retain-label"):
        kept = [t for t in run[method] if keeps_retain(t, tune["rule"])]
        assert [t["overrides"]["alpha"] for t in kept] == [min(tune["budget"]["grid"]["alpha"])] == [0.01]
        assert chosen[method]["ratios"]["forget_recognition_x"] > 0.85   # forgets little
    by_forgetting = sorted(chosen, key=lambda m: chosen[m]["ratios"]["forget_recognition_x"])
    assert set(by_forgetting[:2]) == {"noisy-label", "ours"}


@claim("docs/findings.md", "On test, on one unlearning seed, `ours` and `noisy-label` meet all 4 judged method "
       "targets; every other method misses the forget FID target (3x the original's), and `max-loss` also the Cat "
       "recognition one.")
def mae_tuned_on_test():
    targets = json.loads((ROOT / "docs" / "targets.json").read_text())["targets"]
    tests = results("tune-mae.json")["test"]
    assert len(tests) == 8
    for method in tests:
        missed = {e["target"] for e in targets if e["json"] == "benchmarks/results/tune-mae.json"
                  and e.get("run") == method and e["kind"] == "method" and e["verdict"] == "missed"}
        judged = method_verdicts("tune-mae.json", method)
        if method in ("ours", "noisy-label"):
            assert judged == {"met": 4, "not judged": 1}, method
        else:
            assert "forget FID >= 3 x original" in missed, method
            assert (missed == {"forget FID >= 3 x original", "forget recognition <= retrained + 0.05"}) == (
                method == "max-loss"), method


@claim("docs/findings.md", "The Animal-MNIST and Fashion-MNIST benches were run again with these knobs; "
       "[`audit-mae.md`](../benchmarks/results/audit-mae.md) was run with the knobs from before this re-tune "
       "(`ours`: 1500 steps, now 500).")
def mae_pages_before_the_retune():
    knobs = yaml.safe_load((ROOT / "configs" / "unlearn-mae-animal-mnist.yaml").read_text())
    assert knobs["steps"] == 500
    for bench, steps in (("mae", 500), ("mae-fashion", 500)):
        ran = {c["steps"] for c in results(f"bench-{bench}/bench.json")["cells"] if c["row"] == "ours" and c["unlearn_key"]}
        assert ran == {steps}, bench
    audited = results("audit-mae.json")["knobs_config"]
    assert (audited["steps"], audited["alpha"]) == (1500, 0.1) and knobs["alpha"] != 0.1


@claim("docs/findings.md", "`retain-label` meet all 4 judged method targets; `ours` ends nearest the retrained "
       "model's Cat recognition, while `noisy-label` forgets far past it")
def vqgan_tuned_methods():
    for method in ("ours", "noisy-label", "retain-label"):
        assert method_verdicts("tune-vqgan.json", method) == {"met": 4, "not judged": 1}
    distance = {m: abs(demo_test("vqgan", m)["unlearned"]["forget"]["recognition"]
                       - demo_test("vqgan", m)["retrained"]["forget"]["recognition"])
                for m in results("tune-vqgan.json")["test"]}
    assert min(distance, key=distance.get) == "ours"
    noisy = demo_test("vqgan", "noisy-label")
    assert noisy["unlearned"]["forget"]["recognition"] < noisy["retrained"]["forget"]["recognition"] - 0.2


@claim("docs/findings.md", "No method meets all 4 judged method targets there: `ours`, `random-encoder` and "
       "`max-loss` keep the retain set but forget little, while `noisy-label` and `retain-label` forget far at "
       "about 2.5x the retain FID.", "(3 of 4 method targets)")
def diffusion_tuned_methods():
    tests = results("tune-diffusion.json")["test"]
    assert all(method_verdicts("tune-diffusion.json", m)["missed"] > 0 for m in tests)
    for method in ("ours", "random-encoder", "max-loss"):
        metrics = demo_test("diffusion", method)
        assert ratio(metrics, "unlearned", "retain") <= 1.15 and ratio(metrics, "unlearned", "forget") < 2
    for method in ("noisy-label", "retain-label"):
        metrics = demo_test("diffusion", method)
        assert round(ratio(metrics, "unlearned", "retain"), 1) == 2.5 and ratio(metrics, "unlearned", "forget") > 10
    assert method_verdicts("tune-diffusion-noise-context.json", "ours") == {"met": 3, "missed": 1, "not judged": 1}


@claim("docs/findings.md", "(three seeds each of the original and of `retrain`)",
       "its retain FID lies inside the original's training spread")
def mae_training_spread():
    spread = results("retrain_spread_mae_animal_mnist.json")
    assert len(spread["seeds"]) == 3 and len(spread["metrics"]) == 6
    original, retrained = spread["summary"]["original"]["retain_fid"], spread["summary"]["retrained"]["retain_fid"]
    assert original["min"] <= retrained["mean"] <= original["max"]


@claim("docs/findings.md", "(four seeds each); the retrained models' Cat recognition spans 0.57 to 0.67.")
def vqgan_training_spread():
    spread = results("retrain_spread_vqgan_cat_dog.json")
    recognition = spread["summary"]["retrained"]["forget_recognition"]
    assert spread["seeds"] == [0, 1, 2, 3] and (recognition["min"], recognition["max"]) == (0.57, 0.67)


@claim("docs/findings.md", "(thin strokes: no; Fashion-MNIST with the default recipe: yes)",
       "the MAE recipe does not clearly leave the mean-image plateau within 4000 steps")
def mae_plateau():
    outlines = results("mae_plateau.json")["runs"]
    assert not any(r["validation_check"]["learned"] for r in outlines) and max(r["steps"] for r in outlines) == 4000
    (fashion,) = results("mae_plateau_fashion.json")["runs"]
    assert fashion["overrides"] == {} and fashion["validation_check"]["learned"]


@claim("docs/findings.md", "for a class and, on the MAE and the VQ-GAN, for 100 files.")
def audited_settings():
    for family, settings in (("mae", {"classes", "files"}), ("vqgan", {"classes", "files"}),
                             ("diffusion", {"classes"})):
        audit = results(f"audit-{family}.json")["settings"]
        assert set(audit) == settings
        assert "files" not in audit or audit["files"]["request"].startswith("forget 100 training images")


@claim("docs/findings.md", "and issue 10's targets judged from its JSON")
def the_bench_targets_are_issue_10s():
    targets = json.loads((ROOT / "docs" / "targets.json").read_text())["targets"]
    assert {e["issue"] for e in targets if e.get("bench")} == {10}


@claim("docs/findings.md", "The MAE bench is complete with the re-tuned knobs (every method, `ours-substitute`, "
       "`ours-decoder` and `undo` too, over three unlearning seeds, three retrained models, the alpha, retain-size and "
       "hole-size ablations), and so is the Fashion-MNIST MAE bench (`ours` with the real and with a proxy retain set, "
       "the Animal-MNIST knobs). The VQ-GAN bench (the same ablations) and the diffusion bench (the hole-size "
       "ablation on one unlearning seed), each with three retrained models, are complete for the rows and knobs "
       "they had before their re-tunes, without issue 33's methods.")
def the_benches_are_complete():
    issue_33 = {"ours-substitute", "ours-decoder", "undo"}
    for name in ("mae", "vqgan", "mae-fashion", "diffusion"):
        bench = results(f"bench-{name}/bench.json")
        assert bench["progress"]["done"] == bench["progress"]["cells"] and bench["seeds"] == [0, 1, 2]
        assert [len(f["retrained"]) for f in bench["families"].values()] == [3]
        assert (issue_33 <= set(bench["methods"])) == (name == "mae"), name
    for name in ("mae", "vqgan"):
        assert set(results(f"bench-{name}/bench.json")["ablations"]) == {"alpha", "retain-size", "hole-size"}
    for name in ("vqgan", "diffusion"):   # their configs have the new rows; their JSON predates them
        configured = yaml.safe_load((ROOT / "benchmarks" / f"bench-{name}.yaml").read_text())["methods"]
        assert issue_33 & set(configured) and not issue_33 & set(results(f"bench-{name}/bench.json")["methods"])
    fashion = results("bench-mae-fashion/bench.json")["methods"]
    assert set(fashion) == {"ours", "ours-proxy"}
    assert {m["knobs"] for m in fashion.values()} == {"configs/unlearn-mae-animal-mnist.yaml"}
    assert results("bench-diffusion/bench.json")["ablations"]["hole-size"]["seeds"] == [0]

@claim("docs/findings.md", "On the MAE, by the paired rule, `ours`, `max-loss`, `noisy-label`, `ours-substitute`, "
       "`ours-decoder` and `undo` tie the retrained models' retain FID, while `retain-label`, `random-encoder` and both "
       "proxy rows are worse; `ours` forgets more than the retrained models (a higher forget FID) and ties every other "
       "real-retain method row on forget FID except `ours-substitute`, which forgets less.",
       "By the paired rule no baseline point (a method row or its alpha sweep) beats `ours` on both FIDs, so the "
       "trade-off target is met, but `noisy-label` at alpha 0.1, 0.25 and 0.5 forgets more at a tied retain FID, and "
       "`noisy-label` alpha=0.025 beats `ours` on both means (inside the intervals).")
def mae_bench_comparisons():
    rows = main_rows("mae")
    methods = {r["name"]: r for r in rows.values() if r["group"] == "main"}
    retain = {name: versus(r, rows["retrained"], "retain") for name, r in methods.items()}
    assert {n for n, v in retain.items() if v == "tie"} == {"ours", "max-loss", "noisy-label", "ours-substitute",
                                                           "ours-decoder", "undo"}
    assert {n for n, v in retain.items() if v == "worse"} == {"retain-label", "random-encoder", "ours-proxy",
                                                             "ours-proxy-binarized"}
    from i2i_unlearn.evaluation.metrics import can_pair
    assert all(can_pair(stat(r, "retain"), stat(rows["retrained"], "retain")) for r in methods.values())
    assert versus(rows["ours"], rows["retrained"], "forget") == "better"
    forget = {name: versus(r, rows["ours"], "forget") for name, r in methods.items()
              if name != "ours" and not name.startswith("ours-proxy")}
    assert forget == {**{name: "tie" for name in forget}, "ours-substitute": "worse"}
    ours = rows["ours"]
    points = {r["name"]: (versus(r, ours, "retain"), versus(r, ours, "forget")) for r in baseline_points(rows)}
    assert ("better", "better") not in points.values()
    verdict = bench_target("mae", "tradeoff")["verdict"]
    ahead = [f"noisy-label alpha={a} (forget FID)" for a in ("0.1", "0.25", "0.5")]
    assert verdict == "met; better on one score and tied on the other: " + ", ".join(ahead)
    on_means = [name for name, r in ((r["name"], r) for r in baseline_points(rows))
                if mean(r, "retain") < mean(ours, "retain") and mean(r, "forget") > mean(ours, "forget")]
    assert on_means == ["noisy-label alpha=0.025"] and points[on_means[0]] == ("tie", "tie")

@claim("docs/findings.md", "On the VQ-GAN `ours` ends inside the retrained models' interval on both FIDs, while "
       "`noisy-label` forgets more at a tied retain FID, and on the means `max-loss` alpha=0.025, `noisy-label` "
       "alpha=0.05 to 0.25 and `random-encoder` alpha=0.5 beat `ours` on both FIDs (inside the intervals).")
def vqgan_bench_comparisons():
    rows = main_rows("vqgan")
    ours, retrained = rows["ours"], rows["retrained"]
    for set_name in ("retain", "forget"):
        assert abs(mean(ours, set_name) - mean(retrained, set_name)) <= stat(retrained, set_name)["hw"]
    assert (versus(rows["noisy-label"], ours, "retain"), versus(rows["noisy-label"], ours, "forget")) == ("tie",
                                                                                                       "better")
    beating = [r for r in baseline_points(rows)
               if mean(r, "retain") < mean(ours, "retain") and mean(r, "forget") > mean(ours, "forget")]
    assert sorted(r["name"] for r in beating) == ["max-loss alpha=0.025", "noisy-label alpha=0.05",
                                                  "noisy-label alpha=0.1", "noisy-label alpha=0.25",
                                                  "random-encoder alpha=0.5"]
    assert all("tie" in (versus(r, ours, "retain"), versus(r, ours, "forget")) for r in beating)


@claim("docs/findings.md", "On Fashion-MNIST `ours` ties the retrained models on the hole alone and on retain "
       "FID, but its completions also break the whole image's Trouser look (recognition falls to about a third) "
       "where the retrained models' do not; with the proxy retain set its retain FID is worse than theirs.")
def fashion_bench_comparisons():
    rows = main_rows("mae-fashion")
    ours, retrained, original = rows["ours"], rows["retrained"], rows["original"]
    assert versus(ours, retrained, "forget", view="hole") == "tie" and versus(ours, retrained, "retain") == "tie"
    assert 0.28 <= mean(ours, "forget", "recognition") / mean(original, "forget", "recognition") <= 0.38
    assert mean(retrained, "forget", "recognition") / mean(original, "forget", "recognition") > 0.9
    assert versus(rows["ours-proxy"], retrained, "retain") == "worse"


@claim("docs/findings.md", "On the diffusion model `ours` ties the retrained models on both FIDs (their forget FID "
       "interval is still wide with three training seeds) and ties the original on forget FID: it barely forgets, and the "
       "trade-off target says so, while `noisy-label` and `retain-label` forget far more at retain FIDs whose "
       "wide intervals still tie `ours`'s, and `noisy-label` and `retain-label` beat `ours`'s stronger sweep "
       "points (`max-loss` alpha=0.05 beats `ours` itself on both means, inside the intervals).")
def diffusion_bench_comparisons():
    rows = main_rows("diffusion")
    ours = rows["ours"]
    assert versus(ours, rows["retrained"], "retain") == versus(ours, rows["retrained"], "forget") == "tie"
    retrained = stat(rows["retrained"], "forget")
    assert retrained["n"] == 3 and retrained["hw"] > 0.4 * retrained["mean"]   # wide: more than 40 % of the mean
    assert versus(ours, rows["original"], "forget") == "tie"
    assert bench_target("diffusion", "tradeoff")["verdict"].startswith("missed: ours ties the original")
    for method in ("noisy-label", "retain-label"):
        assert versus(rows[method], ours, "forget") == "better" and versus(rows[method], ours, "retain") == "tie"
    verdict = bench_target("diffusion", "tradeoff")["verdict"]
    assert "ours alpha=0.25 (not the chosen knobs) beaten by noisy-label, retain-label" in verdict
    assert "ours alpha=0.5 (not the chosen knobs) beaten by noisy-label" in verdict
    beating = [r["name"] for r in baseline_points(rows)
               if mean(r, "retain") < mean(ours, "retain") and mean(r, "forget") > mean(ours, "forget")]
    assert beating == ["max-loss alpha=0.05"]
    assert "tie" in (versus(rows[beating[0]], ours, "retain"), versus(rows[beating[0]], ours, "forget"))


@claim("docs/findings.md", "On the MAE and the Fashion-MNIST MAE, with the re-tuned 500 steps, `ours` takes more "
       "than a tenth of the original's training time, and on the VQ-GAN, with its older knobs, more than a fifth, far "
       "above the 5 % target; on the diffusion model, whose training is longer, it "
       "comes close to it, within what the machine changes: one of its three identical retrainings took more than "
       "twice as long as another, and only the newest recorded its machine's speed")
def bench_costs():
    def share(bench):
        record, ours = results(f"bench-{bench}/bench.json"), main_rows(bench)["ours"]
        (family,) = record["families"].values()
        return ours["cost"]["unlearning_wall_time_s"] / family["training"]["original"]["wall_time_s"]
    for bench in ("mae", "mae-fashion"):
        assert 0.1 < share(bench) < 0.2 and main_rows(bench)["ours"]["cost"]["steps"] == 500, bench
    assert share("vqgan") > 0.2
    assert 0.05 < share("diffusion") < 0.06 and bench_target("diffusion", "cost-training")["status"] == "missed"
    retrainings = results("bench-diffusion/bench.json")["families"]["diffusion"]["training"]["retrained"]
    seconds = [t["wall_time_s"] for t in retrainings]
    assert len({t["steps"] for t in retrainings}) == 1 and max(seconds) > 2 * min(seconds)
    for bench in ("mae", "mae-fashion", "vqgan", "diffusion"):
        (family,) = results(f"bench-{bench}/bench.json")["families"].values()
        recorded = [bool((t or {}).get("host")) for t in [family["training"]["original"], *family["training"]["retrained"]]]
        assert recorded == ([False, False, False, True] if bench == "diffusion" else [False] * len(recorded))


@claim("docs/findings.md", "with the retain FID on validation images allowed to grow to 1.15x the original's")
def default_budget():
    from i2i_unlearn.controllers.budget import DEFAULT_RETAIN_BUDGET
    assert DEFAULT_RETAIN_BUDGET == 1.15


@claim("docs/findings.md", "(since issue 32 \"within the budget\" reads the interval's upper end")
def budget_reads_the_upper_end():
    from i2i_unlearn.controllers.budget import RULE_DOC
    assert "upper end of the retain ratio's 95 % interval" in RULE_DOC


@claim("docs/findings.md", "binarized Fashion-MNIST with forget weight 0.025, cost 1.83x the original's retain FID "
       "against 1.07x on one seed; on the bench's three seeds, with the re-tuned knobs, it costs 2.03x and misses the "
       "forget targets, and the plain proxy costs 2.65x: the proxy target is missed")
def best_proxy():
    record = results("proxy-mae.json")
    (best,) = [r for r in record["runs"] if r["name"] == record["chosen"]["run"]["name"]]
    assert best["overrides"]["alpha"] == 0.025
    test = record["test"]
    assert (round(test["proxy"]["retain_fid_x"], 2), round(test["reference"]["retain_fid_x"], 2)) == (1.83, 1.07)
    target = bench_target("mae", "proxy")
    assert target["status"] == "missed" and "ours-proxy-binarized 2.03x (forget targets missed)" in target["measured"]
    assert "ours-proxy 2.65x (forget targets met)" in target["measured"]


@claim("docs/findings.md", "All four benches together take more than a night on two CPU cores")
def the_benches_take_more_than_a_night():
    from i2i_unlearn.evaluation.bench_targets import NIGHT_S
    seconds = sum(results(f"bench-{b}/bench.json")["progress"][k] for b in ("mae", "vqgan", "diffusion", "mae-fashion")
                  for k in ("unlearning_wall_time_s", "evaluation_wall_time_s"))
    assert seconds > NIGHT_S


@claim("docs/findings.md", "On the diffusion model no method meets all its judged method targets: the forget FID "
       "target (3x the original's) is beyond the retrained model itself (2.4x)",
       "`ours` keeps the retain set but forgets little (2 of 4 method targets",
       "it meets 3 of 4, Cat recognition at the retrained model's + 0.05")
def diffusion_demo_targets():
    from i2i_unlearn.evaluation.targets import FORGET_FID_TIMES, RETRAINED_MARGIN
    assert FORGET_FID_TIMES == 3 and RETRAINED_MARGIN == 0.05
    assert round(ratio(demo_test("diffusion", "ours"), "retrained", "forget"), 1) == 2.4
    assert method_verdicts("tune-diffusion.json", "ours") == {"met": 2, "missed": 2, "not judged": 1}
    assert method_verdicts("tune-diffusion-noise-context.json", "ours") == {"met": 3, "missed": 1, "not judged": 1}
    (recognition,) = [t for t in results("tune-diffusion-noise-context.json")["test"]["ours"]["targets"]
                      if t["name"] == "forget recognition <= retrained + 0.05"]
    assert recognition["met"] and math.isclose(recognition["value"], recognition["limit"], rel_tol=1e-6)


@claim("docs/findings.md", "that target gives no signal at the noisy timesteps where sampling starts")
def diffusion_forget_signal():
    signal = results("diffusion_forget_signal.json")
    terms = {r["timestep"]: r["forget_term"] for r in signal["rows"]}
    assert max(signal["sampler_timesteps"]) >= 900
    assert terms[max(terms)] == 0 and terms[900] < 0.05 * max(terms.values())


@claim("docs/findings.md", "the demo and the audit still use the released target.")
def the_audit_uses_the_released_target():
    knobs = yaml.safe_load((ROOT / "configs" / "unlearn-diffusion-animal-mnist.yaml").read_text())
    assert knobs.get("noise_context", "teacher") != "noise"
    assert results("audit-diffusion.json")["knobs"] == "configs/unlearn-diffusion-animal-mnist.yaml"


@claim("docs/findings.md", "The diffusion model's training spread comes from three retrained models whose forget "
       "FIDs still differ widely, so most differences from them are ties")
def diffusion_ties():
    from i2i_unlearn.bench.page.tables import VERSUS_COLUMNS, _is_method
    rows = main_rows("diffusion")
    verdicts = [versus(r, rows["retrained"], s, k, v) for r in rows.values() if _is_method(r)
                for s, v, k, *_ in VERSUS_COLUMNS]
    forget = stat(rows["retrained"], "forget")
    assert forget["n"] == 3 and max(forget["values"]) > 1.25 * min(forget["values"])
    assert verdicts.count("tie") > len(verdicts) / 2


@claim("docs/findings.md", "no proxy retain set found keeps the MAE's retain FID within 1.3x of the original's")
def no_proxy_within_1_3():
    proxy = results("proxy-mae.json")
    assert proxy["config"]["target_retain_fid_x"] == 1.3 and not proxy["target"]["met"]
    rows = main_rows("mae")
    for name in ("ours-proxy", "ours-proxy-binarized"):
        assert mean(rows[name], "retain") / mean(rows["original"], "retain") > 1.3


@claim("docs/findings.md", "The Cat+Dog and 10-class VQ-GANs share one tokenizer trained on all 10 classes")
def one_tokenizer():
    paths = {json.loads((ROOT / "pretrained" / m / "config.json").read_text())["model"]["tokenizer_path"]
             for m in ("vqgan-cat-dog", "vqgan-animal-mnist")}
    assert len(paths) == 1
    tokenizer = json.loads((ROOT / paths.pop() / "config.json").read_text())["training"]["data"]
    assert tokenizer.get("classes") is None   # trained on every class of Animal-MNIST (its 10)


@claim("docs/findings.md", "With the knobs shipped before the re-tune, `ours` hid a class",
       "fine-tuned on 16 Cat images it was back at the original's Cat recognition in 25 steps, "
       "while the retrained model never got there in 50")
def mae_relearning():
    relearn = yaml.safe_load((ROOT / "benchmarks" / "audit-mae.yaml").read_text())["relearn"]
    assert (relearn["images"], relearn["steps"]) == (16, 50)
    summary = results("audit-mae.json")["settings"]["classes"]["summary"]
    assert summary["ours"]["relearn_steps_to_original"]["whole"] == 25
    assert summary["retrained"]["relearn_steps_to_original"]["whole"] is None


@claim("docs/findings.md", "and its grey forget outputs gave the forgetting away",
       "(`--method ours-substitute`) draws plausible completions instead of grey squares.")
def mae_grey_outputs():
    summary = results("audit-mae.json")["settings"]["classes"]["summary"]
    # the share of forget outputs the evaluator sees no object in, and the probe that tells unlearned outputs apart
    assert summary["ours"]["no_object_share"] > 5 * summary["retrained"]["no_object_share"]
    assert summary["ours"]["probe_accuracy"] > summary["original"]["probe_accuracy"] + 0.1
    assert summary["ours-substitute"]["no_object_share"] <= summary["retrained"]["no_object_share"]


@claim("docs/findings.md", "the attack still tells the Cat training images from never-seen ones as well as on the "
       "original (AUC 0.567 and 0.563, retrained 0.507)")
def diffusion_audit():
    summary = results("audit-diffusion.json")["settings"]["classes"]["summary"]
    assert [round(summary[m]["auc"], 3) for m in ("ours", "original", "retrained")] == [0.567, 0.563, 0.507]


@claim("docs/findings.md", "on 100 training images the shipped MAE did not memorise (the attack's AUC 0.51 on the "
       "original and on the retrained model), `ours` made them stand out (AUC 0.40) and cost 1.38x retain FID.",
       "stops once the AUC is at most 0.52", "On the MAE that is what happens, and it matches the retrained model.")
def mae_files_audit():
    from i2i_unlearn.controllers.membership import DEFAULT_STOP_AUC
    files = results("audit-mae.json")["settings"]["files"]
    summary, retain = files["summary"], files["retain"]
    assert [round(summary[m]["auc"], 2) for m in ("original", "retrained", "ours")] == [0.51, 0.51, 0.40]
    assert round(retain["ours"]["fid"] / retain["original"]["fid"], 2) == 1.38 and DEFAULT_STOP_AUC == 0.52
    assert files["stops"]["ours-stop"]["chosen"]["step"] == 0   # left unchanged: it never told the files apart
    assert abs(summary["ours-stop"]["auc"] - summary["retrained"]["auc"]) < 0.01


@claim("docs/findings.md", "Audited against five MAEs retrained without the same 100 files, with the re-tuned class knobs",
       "`ours` ties them on retain FID and on the tell (probe 0.495, floor 0.524) at 12 % of retraining's optimiser "
       "steps", "LiRA does not catch the original on these files (AUC 0.488, with four shadows of each kind)",
       "TPR 0.06 at 1 % FPR, where the held-out retrained seed has 0.00 [0.00, 0.02]")
def mae_files_robust():
    record = results("robust-mae-files.json")
    rows = record["rows"]
    assert record["request"].startswith("forget 100 ") and len(record["spec"]["files"]["retrain_seeds"]) == 5
    assert record["spec"]["methods"]["ours"]["knobs"] == "configs/unlearn-mae-animal-mnist.yaml"
    assert rows["ours"]["retain"]["verdict"] == "tie" and rows["ours"]["probe_accuracy"] <= record["floor"]["accuracy"]
    assert (f"{rows['ours']['probe_accuracy']:.3f}", f"{record['floor']['accuracy']:.3f}") == ("0.495", "0.524")
    assert round(100 * rows["ours"]["cost"]["step_share"]) == 12
    original, held_out, ours = (rows[m]["lira"] for m in ("original", "retrained", "ours"))
    low, high = original["intervals"]["auc"]
    assert f"{original['auc']:.3f}" == "0.488" and low <= 0.5 <= high
    assert record["lira_shadows"] == {"in": 4, "out": 4}
    assert f"{ours['tpr_at_0.01_fpr']:.2f}" == "0.06" and f"{held_out['tpr_at_0.01_fpr']:.2f}" == "0.00"
    assert [f"{v:.2f}" for v in held_out["intervals"]["tpr_at_0.01_fpr"]] == ["0.00", "0.02"]


@claim("docs/findings.md", "Audited with every method tuned on validation, against four retrained MAEs and eight LiRA "
       "shadows", "no method passes all 12 robustness targets",
       "`ours` meets 4 (retain FID, forget recognition and both costs) and none of the 8 that test removal",
       "its Cat recognition starts below the retrained band (0.32, the band 0.69 to 0.76) and stays below it after "
       "retain fine-tuning and both quantizations", "fine-tuned whole on Cat images it is inside the band from step 5, "
       "as the retrained models climb back too",
       "(AUC 0.448, the held-out retrained seed [0.485, 0.528])", "(0.815, floor 0.580)",
       "Of those 8, the baseline `max-loss` meets 7 (all but LiRA's AUC, 0.432)", "(Cat recognition 0.78, limit 0.772)",
       "took 38 % of retraining's optimiser steps, over the 25 % target",
       "Closest overall: `ours-substitute` with its like-retrained knobs, chosen within the step target (500 steps, "
       "12 % of retraining's), meets 10 of 12", "inside the band under all five attacks, LiRA's AUC is inside the "
       "held-out interval (0.494)", "forgets as much as retraining (Cat recognition 0.75) and costs 12 % of "
       "retraining's time", "It misses LiRA's TPR at 1 % FPR (0.060, the ideal at most 0.015",
       "the tell by 0.015 (0.645 against 0.630; the retrained seeds themselves read 0.525 to 0.630)")
def mae_class_robust():
    from i2i_unlearn.bench.robust import COST_SHARE
    record = results("robust-mae.json")
    rows, spec = record["rows"], record["spec"]
    assert spec["forget_classes"] == ["Cat"]
    assert spec["methods"]["ours"]["knobs"] == "configs/unlearn-mae-animal-mnist.yaml"
    assert len(record["band"]) == 4 and record["lira_shadows"] == {"in": 4, "out": 4}
    tuned = {m["knobs"] for m in spec["methods"].values()}   # every row's knobs chosen by the re-tune
    assert all(k.startswith(("configs/unlearn-", "configs/baselines/", "configs/like-retrained/")) for k in tuned)

    def met(row, removal=False):
        judged = [t for t in row["targets"] if t["met"] is not None
                  and (not removal or t["name"].startswith(("relearning", "LiRA", "the tell")))]
        return sum(t["met"] for t in judged), len(judged)
    methods = {name: row for name, row in rows.items() if "targets" in row}
    assert all(met(row)[0] < met(row)[1] == 12 for row in methods.values())
    ours, max_loss, like = rows["ours"], rows["max-loss"], rows["ours-substitute-like-retrained"]
    assert met(ours) == (4, 12) and met(ours, removal=True) == (0, 8)
    assert {t["name"].split(":")[0] for t in ours["targets"] if t["met"]} == {
        "retain FID", "forget recognition at most the retrained models' mean + 0.05", "cost"}
    assert all(r["band_area"] > 0 and not r["above_band"] for r in ours["relearning"].values())
    audit = results("robust-mae/band/audit.json")["relearning"]
    bands, curves = audit["band"]["bands"], audit["models"]["ours"]["variants"]
    assert (f"{curves['whole']['curve'][0]['recognition']:.2f}", bands["whole"][0]["lo"], bands["whole"][0]["hi"]) \
        == ("0.32", 0.69, 0.76)
    for attack in ("retain-finetune", "quantize-8", "quantize-4"):   # below at every step
        assert all(c["recognition"] < b["lo"] for c, b in zip(curves[attack]["curve"], bands[attack])), attack
    assert all(b["lo"] <= c["recognition"] <= b["hi"]   # whole: inside from step 5
               for c, b in zip(curves["whole"]["curve"], bands["whole"]) if c["step"] >= 5)
    assert [c["step"] for c in curves["whole"]["curve"]][:2] == [0, 5]
    assert all(audit["models"][m]["variants"]["whole"]["steps_to_original"] is not None for m in record["band"])
    held_out = rows["retrained"]["lira"]["intervals"]
    assert [f"{v:.3f}" for v in held_out["auc"]] == ["0.485", "0.528"]
    assert f"{held_out['tpr_at_0.01_fpr'][1]:.3f}" == "0.015" and f"{like['lira']['tpr_at_0.01_fpr']:.3f}" == "0.060"
    assert f"{ours['lira']['auc']:.3f}" == "0.448" and ours["lira"]["auc"] < held_out["auc"][0]
    assert (f"{ours['probe_accuracy']:.3f}", f"{record['floor']['accuracy']:.3f}") == ("0.815", "0.580")
    # the most removal targets: max-loss alone, then the like-retrained substitute
    removal = sorted((met(row, removal=True)[0] for row in methods.values()), reverse=True)
    assert removal[:2] == [7, 6] and met(max_loss, removal=True) == (7, 8) and met(like, removal=True) == (6, 8)
    assert [t["name"] for t in max_loss["targets"] if t["name"].startswith(("relearning", "LiRA", "the tell"))
            and not t["met"]] == ["LiRA AUC inside the held-out retrained seed's interval"]
    assert f"{max_loss['lira']['auc']:.3f}" == "0.432"
    limit = record["retrained_recognition"] + 0.05
    assert (f"{max_loss['forget_recognition']:.2f}", f"{limit:.3f}") == ("0.78", "0.772")
    assert round(100 * max_loss["cost"]["step_share"]) == 38 and COST_SHARE == 0.25
    # the like-retrained substitute: 10 of 12, the most of any row; every relearning attack inside the band
    assert met(like) == (10, 12) and max(met(row)[0] for row in methods.values()) == 10
    assert yaml.safe_load((ROOT / spec["methods"]["ours-substitute-like-retrained"]["knobs"]).read_text())[
        "steps"] == 500
    assert round(100 * like["cost"]["step_share"]) == round(100 * like["cost"]["time_share_at_reference"]) == 12
    assert all(r["band_area"] == 0 for r in like["relearning"].values()) and len(like["relearning"]) == 5
    assert held_out["auc"][0] <= like["lira"]["auc"] <= held_out["auc"][1] and f"{like['lira']['auc']:.3f}" == "0.494"
    assert f"{like['forget_recognition']:.2f}" == "0.75" and like["forget_recognition"] <= limit
    assert like["retain"]["verdict"] != "worse"
    assert f"{like['lira']['tpr_at_0.01_fpr']:.3f}" == "0.060" and held_out["tpr_at_0.01_fpr"][1] < 0.06
    floor = record["floor"]["accuracy"] + 0.05
    assert (f"{like['probe_accuracy']:.3f}", f"{floor:.3f}", f"{like['probe_accuracy'] - floor:.3f}") == \
        ("0.645", "0.630", "0.015")
    assert [f"{a:.3f}" for a in sorted(record["floor"]["accuracies"])] == ["0.525", "0.585", "0.630"]
    assert [t["name"].split(" ")[0] for t in like["targets"] if t["met"] is False] == ["LiRA", "the"]



@claim("docs/findings.md", "On 200 other Cat training images, which the audit does not attack",
       "no 500-step grid point of `ours-substitute` has both an AUC inside the held-out seed's interval and a TPR at "
       "1 % FPR at most its upper end", "(the AUC falls under 0.5)")
def mae_lira_development_set():
    record = results("lira-dev-mae.json")
    assert record["members"]["count"] == 200 and record["config"] == "benchmarks/robust-mae.yaml"
    models = record["lira"]["models"]
    ideal = models["retrained"]["intervals"]
    grid = {name: row for name, row in models.items() if name.startswith("ours-substitute-")}
    configs = [record["models"][name]["config"] for name in grid]
    assert len(grid) == 12 and {(c["method"], c["steps"]) for c in configs} == {("ours-substitute", 500)}
    assert sorted({c["alpha"] for c in configs}) == [0.01, 0.025, 0.05, 0.1, 0.25, 0.5]
    assert sorted({c["optim"]["lr"] for c in configs}) == [0.00025, 0.0005]
    both = [name for name, row in grid.items() if ideal["auc"][0] <= row["auc"] <= ideal["auc"][1]
            and row["tpr_at_0.01_fpr"] <= ideal["tpr_at_0.01_fpr"][1]]
    assert not both
    tail_closed = [row for row in grid.values() if row["tpr_at_0.01_fpr"] <= ideal["tpr_at_0.01_fpr"][1]]
    assert tail_closed and all(row["auc"] < 0.5 for row in tail_closed)

@claim("docs/findings.md", "the Cat+Dog VQ-GAN tells its 100 files apart (AUC 0.71, retrained 0.47), and neither "
       "encoder-only run (the class knobs, or the stop on the attack) reached the retrained model's AUC or stayed "
       "within 1.15x the original's retain FID (1.18x and 1.25x)")
def vqgan_files_audit():
    files = results("audit-vqgan.json")["settings"]["files"]
    summary, retain = files["summary"], files["retain"]
    assert files["request"].startswith("forget 100 ")
    assert (round(summary["original"]["auc"], 2), round(summary["retrained"]["auc"], 2)) == (0.71, 0.47)
    assert all(summary[m]["auc"] > summary["retrained"]["auc"] + 0.05 for m in ("ours", "ours-stop"))
    assert [round(retain[m]["fid"] / retain["original"]["fid"], 2) for m in ("ours", "ours-stop")] == [1.18, 1.25]


@claim("docs/findings.md", "bench cells since the machine's speed was recorded name the machine they ran on")
def cells_record_their_machine():
    cells = [c for b in ("mae", "vqgan", "diffusion", "mae-fashion")
             for c in results(f"bench-{b}/bench.json")["cells"] if (c.get("cost") or {}).get("evaluation")]
    hosts = [c["cost"]["evaluation"].get("host") for c in cells]
    assert any(hosts) and not all(hosts) and all(h["cpu"] for h in hosts if h)


# --- docs/budget.md --------------------------------------------------------------------------------------------

@claim("docs/budget.md", "runs budgeted at 1.15")
def budget_default():
    from i2i_unlearn.controllers.budget import DEFAULT_RETAIN_BUDGET
    assert DEFAULT_RETAIN_BUDGET == 1.15


@claim("docs/budget.md", "The diffusion family measures 128 images every 250 of 1000 steps",
       "measured at least 4 times")
def budget_diffusion_settings():
    from i2i_unlearn.controllers.base import MIN_MEASUREMENTS
    from i2i_unlearn.controllers.budget import FAMILY_BUDGET_SETTINGS
    assert FAMILY_BUDGET_SETTINGS["diffusion"] == {"steps": 1000, "checkpoint_every": 250, "budget_images": 128}
    assert MIN_MEASUREMENTS == 4


@claim("docs/budget.md", "default 256", "each with a 95 % interval from 200 bootstrap resamples")
def budget_sample():
    from i2i_unlearn.config import UnlearnConfig
    from i2i_unlearn.controllers.validation import RESAMPLES
    assert UnlearnConfig().budget_images == 256 and RESAMPLES == 200


@claim("docs/budget.md", "(a run kept at 1.027x on validation scored 1.097x on test)")
def budget_optimism():
    record = results("budget-diffusion.json")
    assert round(record["runs"]["budget 1.15"]["budget"]["chosen"]["retain_ratio"], 3) == 1.027
    assert round(ratio(record["metrics"], "budget 1.15", "retain"), 3) == 1.097


@claim("docs/budget.md", "by at most a factor of 2 up or 4 down")
def budget_steps():
    from i2i_unlearn.controllers.budget import STEP_SIZE, VIOLATION_CLIP
    assert math.isclose(math.exp(-STEP_SIZE * VIOLATION_CLIP[0]), 2)
    assert math.isclose(math.exp(STEP_SIZE * VIOLATION_CLIP[1]), 4)


@claim("docs/budget.md", "at 0.8 of the original's recognition or more")
def budget_saturation():
    from i2i_unlearn.controllers.budget import FRAME_SATURATION
    assert FRAME_SATURATION == 0.8


@claim("docs/budget.md", "warns when measuring took more than 20 % of it. In the budget runs below, measuring every "
       "100 steps took 3.8 % of the MAE's run and 5.0 % of the Cat+Dog VQ-GAN's; the diffusion model, which samples "
       "20 DDIM steps per image, measured 128 images every 250 steps and spent 19.0 % of its run on it.")
def budget_overhead():
    from i2i_unlearn.controllers.budget import OVERHEAD_LIMIT
    from i2i_unlearn.models.diffusion import DiffusionConfig
    assert OVERHEAD_LIMIT == 0.2 and DiffusionConfig().sampler_steps == 20
    for name, share, every, images in (("mae", 3.8, 100, 256), ("vqgan", 5.0, 100, 256),
                                       ("diffusion", 19.0, 250, 128)):
        run = results(f"budget-{name}.json")["runs"]["budget 1.15"]
        assert round(run["budget"]["control"]["share_of_wall_time"] * 100, 1) == share
        assert (run["config"]["checkpoint_every"], run["config"]["budget_images"]) == (every, images)


@claim("docs/budget.md", "(alpha 0.25, 500 steps)")
def budget_start():
    from i2i_unlearn.config import UnlearnConfig
    assert (UnlearnConfig().alpha, UnlearnConfig().steps) == (0.25, 500)


@claim("docs/budget.md", "budget 1.15 against the knobs hand-tuned on validation, on each shipped family, one run "
       "each (not the run `make demo` makes;",
       "There the budgeted run met as many demo targets on test as the "
       "hand-tuned knobs on each family (the diffusion model missed the same two with both)",
       "and the MAE's ended over its budget on validation (1.17x: it kept the closest checkpoint and said so).")
def budget_against_tuned_knobs():
    for name in ("mae", "vqgan", "diffusion"):
        record = results(f"budget-{name}.json")
        assert record["budgets"] == [1.15]
        (fixed,) = [run for run in record["targets"] if run.startswith("fixed ")]
        missed = {run: [t["name"] for t in record["targets"][run] if t["met"] is False] for run in record["targets"]}
        assert missed[fixed] == missed["budget 1.15"] and len(missed[fixed]) == (2 if name == "diffusion" else 0)
    kept = results("budget-mae.json")["runs"]["budget 1.15"]["budget"]
    assert not kept["in_budget"] and round(kept["chosen"]["retain_ratio"], 2) == 1.17


@claim("docs/budget.md", "the MAE's fixed knobs are those from before its re-tune, alpha 0.1 and 1500 steps")
def budget_mae_fixed_knobs():
    fixed = results("budget-mae.json")["runs"]["fixed unlearn-mae-animal-mnist"]["config"]
    knobs = yaml.safe_load((ROOT / "configs" / "unlearn-mae-animal-mnist.yaml").read_text())
    assert (fixed["alpha"], fixed["steps"]) == (0.1, 1500) != (knobs["alpha"], knobs["steps"])


@claim("docs/budget.md", "forgetting Trouser, budget 1.15 against the fixed defaults",
       "There the defaults already keep the retain set, and the budgeted run ends where they do.")
def budget_fashion():
    record = results("budget-fashion-mnist.json")
    assert record["budgets"] == [1.15] and record["forget_classes"] == ["Trouser"]
    metrics = record["metrics"]
    assert ratio(metrics, "fixed empty-knobs", "retain") <= 1.15
    for set_name, key in (("retain", "fid"), ("forget", "recognition"), ("forget", "fid")):
        assert math.isclose(metrics["budget 1.15"][set_name][key], metrics["fixed empty-knobs"][set_name][key],
                            rel_tol=0.02)


@claim("docs/budget.md", "the front over budgets 1.02, 1.05, 1.10 and 1.20 on the MAE: the looser the budget, the "
       "more forgetting. On test each run ended within its budget but the 1.02 run, at its edge (1.0201x), which "
       "had ended over it on validation too (1.04x).")
def budget_front():
    record = results("budget-mae-front.json")
    assert record["budgets"] == [1.02, 1.05, 1.1, 1.2]
    runs = [f"budget {b:g}" for b in record["budgets"]]
    recognition = [record["metrics"][run]["forget"]["recognition"] for run in runs]
    assert recognition == sorted(recognition, reverse=True) and len(set(recognition)) == len(runs)
    within = [ratio(record["metrics"], run, "retain") <= budget for run, budget in zip(runs, record["budgets"])]
    assert within == [False, True, True, True]
    assert round(ratio(record["metrics"], "budget 1.02", "retain"), 4) == 1.0201
    kept = record["runs"]["budget 1.02"]["budget"]
    assert not kept["in_budget"] and round(kept["chosen"]["retain_ratio"], 2) == 1.04


# --- docs/proxy.md ---------------------------------------------------------------------------------------------

@claim("docs/proxy.md", "(white animal silhouettes on black, 32x32 grey)")
def animal_mnist_images():
    from i2i_unlearn.config import DataConfig
    assert (DataConfig().image_size, DataConfig().channels) == (32, 1)


@claim("docs/proxy.md", "a plain Fashion-MNIST proxy forgets Cat but multiplies the retain FID by 2.65 (row "
       "`ours-proxy` of [`results.md`](results.md), three seeds).")
def plain_proxy():
    rows = main_rows("mae")
    assert stat(rows["ours-proxy"], "retain")["n"] == 3
    assert "ours-proxy 2.65x (forget targets met)" in bench_target("mae", "proxy")["measured"]


@claim("docs/proxy.md", "Only the values 0 and 1 remain.", "a rotation of up to 20 degrees, a scaling of 0.8 to "
       "1.2 and a shift of up to 10 % of the side")
def proxy_transforms():
    from i2i_unlearn.data.proxy import AUGMENT_ROTATION, AUGMENT_SCALE, AUGMENT_SHIFT
    assert (AUGMENT_ROTATION, AUGMENT_SCALE, AUGMENT_SHIFT) == (20.0, (0.8, 1.2), 0.1)


@claim("docs/proxy.md", "(default `random-patches` 0.75: three quarters of the patches hidden)",
       "(default 1000, `--proxy-teacher-images`)", "clamped to [0, 1]")
def proxy_teacher_defaults():
    from i2i_unlearn.config import ProxyTeacherConfig
    teacher = ProxyTeacherConfig()
    assert (teacher.task.name, teacher.task.ratio, teacher.images) == ("random-patches", 0.75, 1000)


@claim("docs/proxy.md", "runs that proxy at 0.1, 0.5 and 1 retain image per forget image",
       "The target of issue 10: the proxy-only run within 1.3x the original's retain FID",
       "It takes about 40 minutes on two CPU cores.")
def proxy_benchmark_settings():
    record = results("proxy-mae.json")
    assert record["config"]["sizes"] == [0.1, 0.5, 1] and record["target"]["retain_fid_x"] == 1.3
    minutes = (sum(r["unlearning_wall_time_s"] for r in record["runs"])
               + sum(s["seconds"] for s in record["scorings"].values())) / 60
    assert 30 <= minutes <= 50


@claim("docs/proxy.md", "With the knobs shipped when it ran (alpha 0.1, before issue 32's re-tune of the MAE) every "
       "proxy forgets Cat past the target while the retain FID grows 3.2x to 7.9x on validation; the model's own outputs do worst.",
       "with a smaller forget weight (alpha 0.025, chosen on validation): on test it meets the forget targets (Cat "
       "recognition 0.28x the original's) at 1.83x the original's retain FID, against 1.07x with the real retain "
       "set. The target of 1.3x is missed. That is one run; the MAE bench runs the same proxy with 3 seeds",
       "Fewer proxy images protect less.")
def proxy_results():
    record = results("proxy-mae.json")
    assert record["knobs_config"]["alpha"] == 0.1
    original = record["original"]["val"]
    shipped = {r["name"]: r for r in record["runs"] if r["name"] != "real-retain" and "alpha" not in r["overrides"]
               and r["retain_ratio"] is None}
    grows = {name: r["val"]["retain_fid"] / original["retain_fid"] for name, r in shipped.items()}
    assert (round(min(grows.values()), 1), round(max(grows.values()), 1)) == (3.2, 7.9)
    bar = record["rule"]["forget_recognition_max_x"] * original["forget_recognition"]
    assert all(r["val"]["forget_recognition"] <= bar for r in shipped.values())
    own = [grows[n] for n in grows if n.startswith("own-outputs")]
    assert min(own) >= max(v for n, v in grows.items() if not n.startswith("own-outputs"))
    chosen = record["chosen"]["run"]["name"]
    assert chosen == "fashion-binarized-alpha-0.025"
    test = record["test"]
    assert round(test["proxy"]["forget_recognition_x"], 2) == 0.28 and record["target"]["forget_targets_met"]
    assert (round(test["proxy"]["retain_fid_x"], 2), round(test["reference"]["retain_fid_x"], 2)) == (1.83, 1.07)
    assert not record["target"]["met"]
    assert stat(main_rows("mae")["ours-proxy-binarized"], "retain")["n"] == 3
    sizes = sorted((r["retain_ratio"], r["val"]["retain_fid"]) for r in record["runs"]
                   if r["name"].startswith(chosen + "-ratio"))
    full = next(r for r in record["runs"] if r["name"] == chosen)["val"]["retain_fid"]
    assert [fid for _, fid in sizes] == sorted([fid for _, fid in sizes], reverse=True) and full < sizes[-1][1]


# --- docs/results-notes.md -------------------------------------------------------------------------------------

@claim("docs/results-notes.md", "the first `test_per_class` images (100) are the test set, the next "
       "`val_per_class` (50) the validation set")
def split_sizes():
    from i2i_unlearn.config import DataConfig
    assert (DataConfig().test_per_class, DataConfig().val_per_class) == (100, 50)


@claim("docs/results-notes.md", "(the forget weight 0.01, 0.025, 0.05, 0.1, 0.25, 0.5 x 500 and 1500 steps x half "
       "and all of the family's base learning rate, the same in every family;",
       "whose retain FID ratio to the original's has a 95 % upper end at most 1.15x, paired:",
       "and whose retain similarity is at least 0.97x the original's), every trial recorded; successive halving keeps "
       "a third of the chains for the longer trials.")
def the_declared_grid():
    from i2i_unlearn.bench.grid import continued
    for family in ("mae", "vqgan", "diffusion"):
        tune = yaml.safe_load((ROOT / "benchmarks" / f"tune-{family}.yaml").read_text())
        base_lr = tune["base"]["optim"]["lr"]
        assert tune["grid"] == {"alpha": [0.01, 0.025, 0.05, 0.1, 0.25, 0.5], "steps": [500, 1500],
                                "optim.lr": [base_lr / 2, base_lr]}
        assert tune["rule"] == {"retain_fid_max_x": 1.15, "retain_similarity_min_x": 0.97}
        assert continued(12, tune["halving"]["keep"]) == 4


@claim("docs/results-notes.md", "the MAE's knobs were chosen by them, while the VQ-GAN's and the diffusion "
       "model's knobs in `configs/` and their pages below come from the earlier rule (the point estimate) over the "
       "earlier grids (three forget weights x two lengths, one rate; the VQ-GAN's `ours` has two trials more, from "
       "before its grid moved)")
def the_earlier_grids():
    from i2i_unlearn.bench.grid import RULE_DOC
    mae = results("tune-mae.json")
    assert mae["budget"]["grid"] == yaml.safe_load((ROOT / "benchmarks" / "tune-mae.yaml").read_text())["grid"]
    assert mae["rule"]["doc"] == RULE_DOC and all("retain_fid_hi_x" in t["ratios"] for t in mae["trials"]
                                                  if "ratios" in t)
    for family in ("vqgan", "diffusion"):
        assert not any("retain_fid_hi_x" in t.get("ratios", {}) for t in results(f"tune-{family}.json")["trials"])
        tune = results(f"tune-{family}.json")
        for method, grid in tune["budget"]["grid"].items():
            assert set(grid) == {"alpha", "steps"} and (len(grid["alpha"]), len(grid["steps"])) == (3, 2)
            trials = [t for t in tune["trials"] if t["method"] == method]
            outside = [t for t in trials if t["overrides"]["alpha"] not in grid["alpha"]]
            assert (len(trials), len(outside)) == ((8, 2) if (family, method) == ("vqgan", "ours") else (6, 0))


@claim("docs/results-notes.md", "`ours` there had 12 trials where each baseline had 6.",
       "its choice forgets more (Cat recognition 0.72 against 0.84)")
def the_second_diffusion_grid():
    released, noise = results("tune-diffusion.json"), results("tune-diffusion-noise-context.json")
    assert sum(t["method"] == "ours" for t in released["trials"] + noise["trials"]) == 12
    assert all(sum(t["method"] == m for t in released["trials"]) == 6 for m in released["budget"]["methods"])

    def chosen_recognition(record):
        (trial,) = [t for t in record["trials"] if t["key"] == record["chosen"]["ours"]["key"]]
        return round(trial["scores"]["forget"]["recognition"], 2)
    assert (chosen_recognition(noise), chosen_recognition(released)) == (0.72, 0.84)
    assert noise["chosen"]["ours"]["keeps_retain_by_rule"]


@claim("docs/results-notes.md", "(above 0.75x)")
def the_training_check():
    from i2i_unlearn.train import LEARNED_RATIO
    assert LEARNED_RATIO == 0.75


@claim("docs/results-notes.md", "| the training spread of the MAE recipe: three seeds of the original and of "
       "`retrain` |", "| the same for the Cat+Dog VQ-GAN: four seeds each |")
def the_spread_pages():
    assert len(results("retrain_spread_mae_animal_mnist.json")["seeds"]) == 3
    assert len(results("retrain_spread_vqgan_cat_dog.json")["seeds"]) == 4


@claim("docs/results-notes.md", "the earlier MAE's retain FID rose far more than on center holes",
       "With a 3/4 hole the model's own contribution dominates the frame, and the earlier MAE was weak there "
       "already",
       "| the four baselines at 500 steps with the demo's knobs, not tuned per method |",
       "(`max-loss` ended with a better retain FID than the original: `baselines_500_steps.md`)")
def the_older_baselines():
    record = json.loads((ROOT / "benchmarks" / "archive" / "results" / "baselines_500_steps.json").read_text())
    assert len(record["runs"]) == 4 and all(r["config_overrides"] == ["steps=500"] for r in record["runs"])
    (max_loss,) = [r for r in record["runs"] if r["method"] == "max-loss"]
    metrics = max_loss["evaluations"][0]["metrics"]
    assert metrics["max-loss"]["retain"]["fid"] < metrics["original"]["retain"]["fid"]
    earlier = json.loads((ROOT / "benchmarks" / "archive" / "results" / "mae_unlearning.json").read_text())
    by_task = {(e["task"]["name"], e["task"]["ratio"]): e["metrics"] for e in earlier["runs"][0]["evaluations"]}
    rise = {task: ratio(metrics, "ours", "retain") - 1 for task, metrics in by_task.items()}
    assert rise[("outpaint", 0.5)] > 2 * rise[("center-inpaint", 0.5)]
    original = {task: metrics["original"]["retain"]["fid"] for task, metrics in by_task.items()}
    assert original[("center-inpaint", 0.75)] > 4 * original[("center-inpaint", 0.5)]


@claim("docs/results-notes.md", "the earlier retrained MAE was worse on the retain set than the original after the "
       "same steps")
def the_older_retraining():
    record = json.loads((ROOT / "benchmarks" / "archive" / "results" / "retrain.json").read_text())
    (run,) = record["runs"]
    metrics = run["evaluations"][0]["metrics"]
    assert run["config_overrides"] == [] and ratio(metrics, "retrain", "retain") > 1


@claim("docs/results-notes.md", "Tuned on validation with the current MAE over issue 32's grid, `max-loss` and "
       "`retain-label` keep the retain set at its smallest forget weight only, where they forget little",
       "the original's and `retrain`'s retain FID intervals overlap")
def the_current_mae():
    mae_tuned_on_one_grid()
    summary = results("retrain_spread_mae_animal_mnist.json")["summary"]
    original, retrained = summary["original"]["retain_fid"], summary["retrained"]["retain_fid"]
    assert original["min"] <= retrained["max"] and retrained["min"] <= original["max"]


# --- docs/distributed.md ---------------------------------------------------------------------------------------

@claim("docs/distributed.md", "a tiny MAE, 6 steps of `ours`, 1 vs 2 CPU processes: every weight within 1e-5 of "
       "the other run's where the run moved weights by more than 1e-3")
def distributed_agreement():
    test = (ROOT / "tests" / "test_distributed.py").read_text()
    assert "assert moved > 1e-3 and diff < 1e-5" in test
    assert "== [1, 2, 3, 4, 5, 6]" in test and '["world_size"] == 2' in test


@claim("docs/distributed.md", "i2i-unlearn refuses that launch with one line that names the command above (exit "
       "code 2).", "each with the usual `error: the loss became nan at step ...` and exit code 2 (the launcher then "
       "reports the failure and exits 1)")
def distributed_exit_codes():
    assert "sys.exit(2)" in (ROOT / "src" / "i2i_unlearn" / "cli" / "__init__.py").read_text()


# --- docs/cli.md -----------------------------------------------------------------------------------------------

@claim("docs/cli.md", "retain FID at most 1.15x the original's on validation")
def cli_default_budget():
    budget_default()


@claim("docs/cli.md", "(up to 128 of each")
def cli_membership_sample():
    from i2i_unlearn.controllers.membership import PROBE_IMAGES
    assert PROBE_IMAGES == 128


@claim("docs/cli.md", "with the knobs of a class request, the shipped MAE forgot 100 files past the point of a "
       "retrained model, restoring them *worse* than never-seen images")
def cli_files_past_retraining():
    files = results("audit-mae.json")["settings"]["files"]
    assert files["request"].startswith("forget 100 ") and files["models"]["ours"].endswith("files-ours")
    assert files["summary"]["ours"]["auc"] < files["summary"]["retrained"]["auc"] - 0.05 < 0.5


@claim("docs/cli.md", "(config key `checkpoint_every`, default 100)", "measured at least 4 times")
def cli_checkpoints():
    from i2i_unlearn.config import UnlearnConfig
    from i2i_unlearn.controllers.base import MIN_MEASUREMENTS
    assert UnlearnConfig().checkpoint_every == 100 and MIN_MEASUREMENTS == 4


@claim("docs/cli.md", "round every weight matrix to 8 or 4 bits per output channel")
def cli_quantization():
    from i2i_unlearn.evaluation.audit.relearn import QUANTIZATION_BITS
    assert QUANTIZATION_BITS == (8, 4)


@claim("docs/cli.md", "(repeat, at least 2:", "(repeat, at least 3: retrained without them)",
       "TPR at 1 % and 0.1 % FPR")
def cli_lira():
    from i2i_unlearn.evaluation.audit.lira import FPR_LEVELS, MIN_SHADOWS
    assert MIN_SHADOWS == 2 and FPR_LEVELS == (0.01, 0.001)


@claim("docs/cli.md", "TPR at 1 % and 5 % FPR", "the true-positive rate at 1 % and 5 % false positives")
def cli_membership_levels():
    from i2i_unlearn.evaluation.audit.membership import FPR_LEVELS
    assert FPR_LEVELS == (0.01, 0.05)


@claim("docs/cli.md", "on the MAE the retrained models, fine-tuned whole, climb back within 10-25 steps")
def cli_retrained_climb_back():
    audit = results("robust-mae/band/audit.json")["relearning"]
    steps = [audit["models"][m]["variants"]["whole"]["steps_to_original"] for m in results("robust-mae.json")["band"]]
    assert (min(steps), max(steps)) == (10, 25)


@claim("docs/cli.md", "steps back to 95 % of it (a model that hid the class climbs back",
       "steps to half the original's recognition and back to 95 % of it")
def cli_relearning_bar():
    from i2i_unlearn.evaluation.audit.relearn import RETURN_FRACTION
    assert RETURN_FRACTION == 0.95


@claim("docs/cli.md", "(default 5,000: per-image features kept of each set;")
def cli_interval_images():
    from i2i_unlearn.evaluation.scoring import INTERVAL_IMAGES
    assert INTERVAL_IMAGES == 5000


# --- docs/families.md ------------------------------------------------------------------------------------------

@claim("docs/families.md", "DDIM, `sampler_steps` (20)", "MaskGIT, `decode_steps` (8)")
def family_sampling_steps():
    from i2i_unlearn.models.diffusion import DiffusionConfig
    from i2i_unlearn.models.vqgan import VQGANConfig
    assert (DiffusionConfig().sampler_steps, VQGANConfig().decode_steps) == (20, 8)


# --- docs/your-own-data.md ------------------------------------------------------------------------------------

@claim("docs/your-own-data.md", "a seeded sample of 5,000 of its images (`--interval-images`)")
def own_data_interval_images():
    cli_interval_images()



# --- docs/robustness.md ---------------------------------------------------------------------------------------

@claim("docs/robustness.md", "and 8-bit and 4-bit weight quantization")
def robustness_quantization_bits():
    from i2i_unlearn.evaluation.audit.relearn import RelearnConfig
    assert RelearnConfig().quantize_bits == (8, 4)

@claim("docs/robustness.md", "(1.96 x sqrt(p (1 - p) / (eval images x attack seeds)), p its recognition)")
def robustness_band_allowance():
    from i2i_unlearn.evaluation.audit.relearn import NOISE_Z, measurement_allowance
    assert NOISE_Z == 1.96
    assert measurement_allowance(0.5, 100, 4) == pytest.approx(1.96 * (0.25 / 400) ** 0.5)


@claim("docs/robustness.md", "the original recipe with other seeds, at least 2 (`shadows_out`, when given: at least 3, "
       "LiRA's null leaving one out)")
def robustness_shadow_minimums():
    from i2i_unlearn.bench.robust import MIN_REFERENCE_SEEDS
    from i2i_unlearn.evaluation.audit.lira import MIN_SHADOWS
    assert (MIN_SHADOWS, MIN_SHADOWS + 1, MIN_REFERENCE_SEEDS) == (2, 3, 3)


@claim("docs/robustness.md",
       "It takes only trials within the audit's optimiser-step target (`like_retrained_max_step_share: 0.25`")
def robustness_like_retrained_cost_bound():
    from i2i_unlearn.bench.robust import COST_SHARE
    from i2i_unlearn.bench.tune import load_tune_config
    assert COST_SHARE == 0.25
    for family in ("mae", "vqgan", "diffusion"):
        assert load_tune_config(ROOT / "benchmarks" / f"tune-{family}.yaml")["like_retrained_max_step_share"] == 0.25
    assert results("tune-mae.json")["like_retrained_max_step_share"] == 0.25


@claim("docs/robustness.md", "A method none of whose trials within that bound keeps the retain set has no such "
                              "knobs: on the MAE, `max-loss`, `noisy-label` and `undo`")
def robustness_no_like_retrained_knobs():
    from i2i_unlearn.bench.grid import keeps_retain
    from i2i_unlearn.bench.tune import steps_from_the_original
    tune = results("tune-mae.json")
    trials = {t["key"]: t for t in tune["trials"]}
    bound = tune["like_retrained_max_step_share"] * tune["retrained"]["steps"]
    for method, choice in tune["like_retrained"].items():
        kept = any(keeps_retain(t, tune["rule"]) for t in trials.values() if t["method"] == method and "ratios" in t
                   and "pruned" not in t and steps_from_the_original(t, trials) <= bound)
        assert (choice is None) == (not kept) == (method in ("max-loss", "noisy-label", "undo")), method
        assert (ROOT / "configs" / "like-retrained" / f"mae-animal-mnist-{method}.yaml").exists() == kept \
            or method == "ours"   # ours's file is named after its config: unlearn-mae-animal-mnist.yaml
    assert (ROOT / "configs" / "like-retrained" / "mae-animal-mnist-ours-substitute.yaml").is_file()


# Numbers a page names without measuring them: notation, examples of a flag's value, citations, issue numbers.
NOT_MEASURED = {
    "docs/budget.md": {"1.10": "the example budget of the command at the top", "2025": "the paper's venue (ICLR "
                       "2025)", "2408.01689": "its arXiv id"},
    "docs/results-notes.md": {"32": "issue 32", "10": "the earlier 10-class VQ-GAN's name",
                              "1": "the hole fractions of the older pages' tasks (center 1/2, outpaint 1/2)",
                              "2": "the same", "3": "the same (center 3/4)", "4": "the same"},
    "docs/cli.md": {"8": "UTF-8", "0": "bounds of refused values ((0, 1), alpha < 0); 0 skips the relearning "
                    "attacks; 0 = inside the band", "1": "bounds of refused values ((0, 1), a budget > 1)",
                    "2": "exit code 2; 2 x C input channels; a budgeted run's 2 checkpoints at least",
                    "0.5": "the AUC of a model that cannot tell members apart", "1.10": "an example budget",
                    "95": "the level of the intervals"},
    "docs/families.md": {"0": "[0, 1] and N(0, I)", "1": "[0, 1], (B, 1, H, W), 1 = hidden",
                         "10": "the 10-class VQ-GAN's name"},
    "docs/distributed.md": {"1": "accelerate's own default of --num_cpu_threads_per_process; the recipe's steps",
                            "2": "the recipe's steps", "3": "the same", "4": "the same", "5": "the same",
                            "6": "the same", "8": "the example machine's GPUs (a command's --num_processes)",
                            "224": "the vit-mae-base shape's resolution", "256": "the U-Net's resolution and the "
                            "example --batch-size"},
    "docs/your-own-data.md": {"1": "section numbers", "2": "the same", "3": "the same", "4": "the same",
                              "5": "the same", "28": "the built-in datasets' image files (28 x 28)",
                              "224": "the vit-mae-base shape's resolution", "256": "the U-Net's resolution"},
    "docs/robustness.md": {"2502.05374": "the SAM unlearning paper's arXiv id"},
}


@pytest.mark.parametrize("page, phrases, check", CLAIMS, ids=[f"{p[5:]}:{c.__name__}" for p, _, c in CLAIMS])
def test_claim(page, phrases, check):
    text = said(page)
    for phrase in phrases:
        assert phrase in text, f"{page} no longer says {phrase!r}: update its claim in tests/test_docs_claims.py"
    check()


def unchecked_numbers(page: str, markdown: str) -> list[str]:
    """The numbers of `markdown` (the page's text) that no claim of `page` checks and NOT_MEASURED does not name."""
    typed = Counter(prose_numbers(markdown))
    checked = Counter(n for p, phrases, _ in CLAIMS if p == page for phrase in phrases for n in prose_numbers(phrase))
    return sorted(n for n in typed - checked if n not in NOT_MEASURED.get(page, {}))


@pytest.mark.parametrize("page", PAGES)
def test_every_number_of_a_page_is_checked_or_named_unmeasured(page):
    unchecked = unchecked_numbers(page, (ROOT / page).read_text())
    assert not unchecked, (f"{page} types {unchecked} outside any checked claim: check each against its JSON in "
                           "tests/test_docs_claims.py, or name it in NOT_MEASURED with why it is not a measurement")


def test_every_docs_page_but_the_generated_one_is_checked():
    pages = {f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md")}
    assert pages == set(PAGES) | {"docs/results.md"}


def test_a_claim_fails_when_its_json_says_otherwise_and_a_new_number_is_caught(monkeypatch):
    real = results

    def edited(name):
        record = real(name)
        if name == "retrain_spread_vqgan_cat_dog.json":
            record["summary"]["retrained"]["forget_recognition"]["min"] = 0.5
        return record
    monkeypatch.setattr(sys.modules[__name__], "results", edited)
    with pytest.raises(AssertionError):
        vqgan_training_spread()
    page = "docs/findings.md"
    text = (ROOT / page).read_text()
    assert unchecked_numbers(page, text) == []
    assert unchecked_numbers(page, text + "\nThe cost is 9.99x, again 1.83x.\n") == ["1.83", "9.99"]
