"""The results page (docs/results.md): its sections in order, from the bench JSON alone."""
from __future__ import annotations

import json
from pathlib import Path

from i2i_unlearn.bench.page.plots import hole_size_plot, settings_plot, tradeoff_plot
from i2i_unlearn.bench.page.scale import scale_section
from i2i_unlearn.bench.page.tables import (
    LEGEND,
    MISSING,
    VERSUS_RULES,
    _main_table,
    _number,
    _table,
    _task_name,
    ablation_table,
    cells_table,
    collateral_tables,
    cost_table,
    main_table,
    methods_list,
    versus_table,
)
from i2i_unlearn.checkpoints import read_json, write_text_atomic
from i2i_unlearn.evaluation.bench_cost import NOT_RECORDED, REFERENCE_GFLOPS
from i2i_unlearn.errors import UserError
from i2i_unlearn.evaluation.bench_targets import FAMILIES, NIGHT_S, SUMMARY_TARGETS, TARGET_TEXT, _target, judge_targets
from i2i_unlearn.paths import relative
from i2i_unlearn.text import escape_markdown as md


def targets_table(bench: dict, table: dict, step_costs=()) -> list[str]:
    targets = judge_targets(bench, table, step_costs)
    return _table(["target", "measured", "verdict"], [[t["target"], t["measured"], t["verdict"]] for t in targets]) \
        if targets else []

def families_summary(benches: list[dict], step_costs: list[dict] = ()) -> list[str]:
    """Issue 10's targets across the families, as the issue counts them: the trade-off and the match with
    the retrained model on at least 2 of the 3 families, the cost on every family, the worst class on the
    MAE, the VQ-GAN's step cheaper than its training step. A family whose bench has not run is "not run".
    Each family is judged on its own bench, bench-<family>; another bench of a family (bench-mae-fashion, a second
    dataset) has its verdicts under its own table only."""
    verdicts, partial = {}, set()   # family -> key -> target; families whose bench has cells still to run
    for bench in benches:
        table = _main_table(bench)
        if table is not None and bench["bench"] == f"bench-{table['family']}":
            verdicts[table["family"]] = {t["key"]: t for t in judge_targets(bench, table, step_costs)}
            progress = bench.get("progress") or {}
            if progress.get("done", 0) < progress.get("cells", 0):
                partial.add(table["family"])
    for record in step_costs:
        ratio = (record.get("to_training_step") or {}).get("ours")
        if record.get("family") == "vqgan" and ratio is not None:
            verdicts.setdefault("vqgan", {})["step"] = _target(
                "step", TARGET_TEXT["step"], f"{ratio:.2f}x", "met" if ratio < 1 else f"missed by {ratio - 1:.2f}x")
    for targets in verdicts.values():   # the second target is the retain and forget match together
        pair = [targets[k] for k in ("retain", "forget") if k in targets]
        if len(pair) == 2:
            status = ("missed" if "missed" in {t["status"] for t in pair}
                      else "tie" if "tie" in {t["status"] for t in pair} else "met")
            targets["retrained-match"] = _target("retrained-match", "", "", status)
    body = []
    for key, text, families, needed in SUMMARY_TARGETS:
        # final: mets that a bench still running cannot change; open: families not run or still running,
        # whose verdict may yet change
        cells, met, final, run, open_ = [], 0, 0, 0, 0
        for family in FAMILIES:
            target = verdicts.get(family, {}).get(key)
            if family not in families:
                cells.append(MISSING)
            elif target is None:
                cells.append("not run")
                open_ += 1
            else:
                provisional = family in partial and key != "step"
                cells.append(target["status"] + (" (partial bench)" if provisional else ""))
                run, met = run + 1, met + (target["status"] == "met")
                final += target["status"] == "met" and not provisional
                open_ += provisional
        verdict = ("met" if final >= needed else "missed" if final + open_ < needed else
                   "not judged: a bench is still running" if met >= needed or run == len(families) else
                   f"not judged: {run} of {len(families)} families run")
        body.append([text, f"{needed} of {len(families)}", *cells, f"{verdict} ({met} met)"])
    return ["Issue 10's targets across the families, each judged on its bench-<family> (each family's verdicts are "
            "under its main table; ties count as not met):", "",
            *_table(["target", "needed", *FAMILIES, "verdict"], body)]

def night_summary(benches: list[dict]) -> list[str]:
    """The issue's last target: every bench from a cold cache within one night on this machine."""
    progress = [b.get("progress") or {} for b in benches]
    seconds = sum((p.get("unlearning_wall_time_s") or 0) + (p.get("evaluation_wall_time_s") or 0) for p in progress)
    done, cells = sum(p.get("done", 0) for p in progress), sum(p.get("cells", 0) for p in progress)
    over = (seconds - NIGHT_S) / 3600
    not_run = [f for f in FAMILIES if f not in {t["family"] for b in benches for t in b["tables"]}]
    verdict = ("not judged until every family's bench has run (not yet: " + ", ".join(not_run) + ")" if not_run
               else "not judged until every cell has run" if done < cells else "within one night (12 h)" if over <= 0
               else f"over one night (12 h) by {over:.1f} h")
    scope = "every cell" if done == cells else f"{done} of {cells} cells"
    names = ", ".join(md(b["bench"]) for b in benches)
    # the total adds wall times of different machines; say how many cells recorded their machine's speed
    measured = [c for b in benches for c in b.get("cells") or [] if (c.get("cost") or {}).get("evaluation")]
    speed = sum(bool(c["cost"]["evaluation"].get("host")) for c in measured)
    return [f"Time of the cells run, all benches ({names}): {seconds / 3600:.1f} h of unlearning and evaluation for "
            f"{scope}: {verdict}. Loading and start-up between cells are not counted; each cell's time is that of "
            "the machine it ran on (the cell tables give its speed), and the benches ran over several sessions "
            f"(the machine's speed is recorded for {speed} of {len(measured)} cells; {NOT_RECORDED} for the rest).",
            ""]

def bench_section(bench: dict, json_path: str, figures: Path, figure_prefix: str, step_costs=()) -> list[str]:
    progress = bench.get("progress") or {}
    evaluator = bench.get("evaluator") or {}
    lines = [f"## {md(bench['bench'])}", "",
             f"Made by `{bench.get('command') or 'i2i-unlearn bench'}` (config `{bench['config_file']}`); JSON: "
             f"`{json_path}`; updated {bench.get('updated', MISSING)}. Cells done: {progress.get('done', 0)} of "
             f"{progress.get('cells', 0)} ({progress.get('unlearning_runs', 0)} unlearning runs, "
             f"{_number(progress.get('unlearning_wall_time_s'), 0)} s; evaluations "
             f"{_number(progress.get('evaluation_wall_time_s'), 0)} s). Split scored: {bench['split']}; unlearning "
             f"seeds {bench['seeds']}; bootstrap {bench['bootstrap']} resamples; evaluator "
             f"{md(evaluator.get('name', MISSING))} (sha256 `{(evaluator.get('sha256') or MISSING)[:12]}`).", ""]
    if progress.get("done", 0) < progress.get("cells", 0):
        lines += [f"**Incomplete**: {progress['cells'] - progress['done']} cells not run yet (listed at the end "
                  "with the time each finished cell took).", ""]
    lines += methods_list(bench)
    first_task_table = _main_table(bench)
    for table in bench["tables"]:
        task = _task_name(table["task"])
        main = table is first_task_table
        forget = ", ".join(table.get("forget_classes") or [])
        lines += [f"### {md(table['family'])}: {md(task)}{' (main)' if main else ''}", "",
                  f"Dataset {md(table['dataset'])}, forgetting {md(forget)}; test images: "
                  f"{md(json.dumps(table.get('counts')))}.", ""]
        lines += main_table(table["rows"])
        targets = targets_table(bench, table, step_costs) if main else []
        if targets:
            lines += ["Targets (issue 10), judged from the rows above:", "", *targets]
        versus, rule = versus_table(table["rows"], "retrained")
        if versus:
            lines += [f"Against the retrained model (better / worse / tie, {VERSUS_RULES[rule]}):", "", *versus]
        plot = figures / f"{figure_prefix}-{table['family']}-{task.replace(' ', '-')}-tradeoff.png"
        if any(r.get("vary") for r in table["rows"]) and tradeoff_plot(table, plot):
            lines += [f"![trade-off {md(table['family'])} {md(task)}]({plot.name})", ""]
        for group, spec in (bench.get("ablations") or {}).items():
            ablation = ablation_table(table["rows"], group)
            if ablation:
                lines += [f"Ablation **{md(group)}**" + (f": {md(spec['doc'])}" if spec.get("doc") else "") + ".",
                          "", *ablation]
                plot = figures / f"{figure_prefix}-{table['family']}-{task.replace(' ', '-')}-{group}.png"
                if not spec.get("vary") and settings_plot(table, group, plot):   # a vary-ablation is a trade-off line
                    lines += [f"![{md(group)} {md(table['family'])} {md(task)}]({plot.name})", ""]
        collateral = collateral_tables(table)
        if collateral:
            lines += ["Collateral damage per retain class:", "", *collateral]
        costs = cost_table(bench, table)
        if costs and main:
            lines += ["Cost (median over seeds of the wall time on the machine each cell ran on, see the cell "
                      "table's machine speed; peak RSS of the process during the cell). Wall times depend on the "
                      f"machine; at {REFERENCE_GFLOPS:.0f} GFLOP/s they are the seconds times the machine's measured "
                      f"float32 matmul GFLOP/s over {REFERENCE_GFLOPS:.0f}, comparable across machines (\"host speed "
                      "not recorded\": a cell run before its record held the speed):", "", *costs]
    for family in dict.fromkeys(t["family"] for t in bench["tables"]):
        plot = figures / f"{figure_prefix}-{family}-hole-size.png"
        if hole_size_plot([t for t in bench["tables"] if t["family"] == family], plot):
            lines += [f"### {md(family)}: every hole", "",
                      "Each method's models (those of its main row) scored on every hole of the bench, as ratios to "
                      "the original's FID on the same hole: the tables above give the numbers.", "",
                      f"![hole sizes {md(family)}]({plot.name})", ""]
    lines += ["### Cells", "", *cells_table(bench)]
    return lines

# Where the methods differ from the paper's released code (method.md section 3); src/i2i_unlearn/methods/ has each.
DIFFERENCES_FROM_RELEASED_CODE = [
    "random-encoder and retain-label apply the forget term to forget samples and the retain term to retain "
    "samples; the released VQ-GAN baseline code swapped the two weights (tests/methods/test_methods.py checks each term's "
    "samples on every family).",
    "retain-label on diffusion denoises the forget hole toward the teacher's restored retain image (the x0 "
    "estimate its noise prediction implies); the released Palette code pulled the forget noise prediction to the "
    "teacher's noise prediction on a retain image, which is close to the noise itself, so its forget term was "
    "nearly the ordinary denoising loss.",
    "Every method's forget weight and length were chosen on the validation split (benchmarks/tune.py), not taken "
    "from the released code, whose values were set for ImageNet-scale models; docs/results-notes.md says which grid "
    "and rule chose each family's knobs (a family not yet re-tuned keeps the older ones).",
]

def step_cost_section(step_costs: list[tuple[dict, str]]) -> list[str]:
    """One unlearning step of each method against one training step on the same number of images, and
    against the issue's limit, one student encoder forward+backward plus one teacher encoder forward per
    image (benchmarks/step_cost.py); the issue asks the VQ-GAN's to be cheaper than a training step."""
    if not step_costs:
        return []
    methods = list(dict.fromkeys(m for record, _ in step_costs for m in record.get("unlearning_step_s") or {}))
    def cell(seconds, ratio):
        return MISSING if seconds is None else f"{seconds:.3f} ({ratio:.2f}x)"

    body = []
    for record, _ in step_costs:
        half = record.get("images", 64) // 2
        ratios = record.get("to_training_step") or {}
        cells = [md(record["family"]), f"{record['training_step_s']:.3f}",
                 cell((record.get("limit_step_s") or {}).get(f"{half}+{half}"), ratios.get("limit"))]
        for method in methods:
            cells.append(cell(((record.get("unlearning_step_s") or {}).get(method) or {}).get(f"{half}+{half}"),
                              ratios.get(method)))
        to_limit = (record.get("to_limit") or {}).get("ours")
        cells.append(MISSING if to_limit is None else f"{to_limit:.2f}x")
        body.append(cells)
    commands = "; ".join(f"`{record['command']}` ({path})" for record, path in step_costs)
    counted = [(record, path) for record, path in step_costs if record.get("training_step_gflop")]
    flop_rows = [[md(record["family"]), f"{record['training_step_gflop']:.1f}",
                  *(cell((record.get("unlearning_step_gflop") or {}).get(name),
                         (record.get("gflop_to_training_step") or {}).get(name)) for name in ("limit", *methods))]
                 for record, _ in counted]
    flops = ["", "Counted GFLOP per step, the same steps (matrix products and convolutions, forward and backward, "
             "by torch's FlopCounterMode on the first batch; elementwise work and the optimiser not counted): what "
             "the steps cost on any machine. " + "; ".join(f"`{record.get('flops_command', record['command'])}` "
                                                           f"({path})" for record, path in counted) + ".", "",
             *_table(["family", "training step GFLOP", "limit", *(md(m) for m in methods)], flop_rows)] \
        if counted else []
    return ["## Step cost", "",
            "Seconds per step on this machine (2 threads), median of the repeats, with the VQ-GAN's token cache "
            "filled (the steady state from a run's second epoch on). Training: the family's loss on 64 images; "
            "unlearning: 32 forget and 32 retain images; in brackets the ratio to a training step (below 1: "
            "cheaper). The limit is the issue's floor for an encoder-only step: one student encoder "
            "forward+backward plus one teacher encoder forward per image, on the same batches, with nothing else "
            "to compute (the teacher encodes the batch's own images, no noise image); the last column is how far "
            "ours is from it. Seconds follow the machine's speed at the time, which varied between sessions "
            f"here; the ratios, timed in one process minutes apart, are what compare. Made by {commands}.", "",
            *_table(["family", "training step s", "limit", *(md(m) for m in methods), "ours / limit"], body), *flops]

def render(benches: list[tuple[dict, str]], out: Path, step_costs: list[tuple[dict, str]] = (),
           robust: list[tuple[dict, str]] = (), scale: dict | None = None) -> str:
    """`scale`: {"memory": (record, path) or None, "steps": (record, path) or None} (bench/page/scale.py)."""
    lines = ["# Results", "",
             "Generated by `benchmarks/make_results_page.py` from the bench JSON named in each section (never typed); "
             "rebuild with `.venv/bin/python benchmarks/make_results_page.py`. What the measurements show and the "
             "known limits, in words: [findings.md](findings.md).", "", LEGEND, "",
             "Where the methods differ from the paper's released code:", "",
             *(f"- {text}" for text in DIFFERENCES_FROM_RELEASED_CODE), ""]
    if not benches:
        lines += ["No bench has run yet: `make bench BENCH=mae`.", ""]
    else:
        lines += night_summary([bench for bench, _ in benches])
        lines += families_summary([bench for bench, _ in benches], [record for record, _ in step_costs])
    for bench, json_path in benches:
        lines += bench_section(bench, json_path, out.parent, out.stem + "-" + bench["bench"],
                               [record for record, _ in step_costs])
        if bench.get("docs"):
            lines += ["How the numbers are made:", "",
                      *(f"- {md(key)}: {md(text)}" for key, text in bench["docs"].items()), ""]
    lines += step_cost_section(list(step_costs))
    lines += robust_section(list(robust))
    lines += scale_section((scale or {}).get("memory"), (scale or {}).get("steps"), (scale or {}).get("chain"))
    return "\n".join(lines)


def robust_section(robust: list[tuple[dict, str]]) -> list[str]:
    """Issue 33's pages, one per family: does a method remove the class or hide it (bench/robust.py)."""
    if not robust:
        return []
    lines = ["## Robustness", "", "Every method against per-example membership inference (where shadow models were "
             "trained), relearning against the "
             "retrained band, the tell with its floor, retain quality by the paired rule and cost "
             "(`benchmarks/robust.py`); targets met per method:", ""]
    for record, json_path in robust:
        page = json_path.rsplit("/", 1)[-1].replace(".json", ".md")
        counts = []
        for method, row in record["rows"].items():
            judged = [t for t in row.get("targets") or [] if t["met"] is not None]
            if judged:
                counts.append(f"{md(method)} {sum(t['met'] for t in judged)}/{len(judged)}")
        lines.append(f"- [{record['name']}](../benchmarks/results/{page}) (`{record['spec']['original']}`): "
                     + (", ".join(counts) or "no method judged"))
    return lines + [""]

def build(bench_paths: list[Path], out: Path, step_cost_paths: list[Path] = (), root: Path | None = None,
          robust_paths: list[Path] = (), scale_paths: dict | None = None) -> Path:
    """Write the page `out` from the bench JSON files (and step-cost records); paths in it are shown relative to
    `root` (default: the current folder)."""
    root = Path.cwd() if root is None else Path(root)
    step_costs = [(read_json(path), relative(path, root)) for path in step_cost_paths]
    benches = []
    for path in bench_paths:
        if not path.is_file():
            raise UserError(f"bench JSON not found: {path}")
        bench = read_json(path)
        if not isinstance(bench, dict) or "tables" not in bench or "bench" not in bench:
            raise UserError(f"{path} is not a bench.json written by `i2i-unlearn bench`")
        benches.append((bench, relative(path, root)))
    robust = [(read_json(path), relative(path, root)) for path in robust_paths]
    scale = {name: (read_json(path), relative(path, root)) for name, path in (scale_paths or {}).items()
             if path is not None and Path(path).is_file()}   # {"memory": scale_memory.json, "steps": scale_step.json, "chain": ...}
    write_text_atomic(out, render(benches, out, step_costs, robust, scale))
    return out
