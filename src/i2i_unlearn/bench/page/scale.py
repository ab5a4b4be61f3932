"""Issue 34's records on the results page and in docs/targets.json: memory against the size of an image folder
(benchmarks/scale_memory.py), seconds per step at the paper's resolution (benchmarks/scale_step.py), and a full-size
checkpoint through import, unlearn, evaluate, audit and report (scale_memory.py --chain)."""
from __future__ import annotations

from i2i_unlearn.bench.page.tables import MISSING, _table
from i2i_unlearn.text import escape_markdown as md

PEAK_RATIO_LIMIT = 1.1     # the issue: peak RSS on the largest folder within 1.1x of the smallest
BOUNDED = ("unlearn", "evaluate")   # the commands the target is about (import is recorded, not judged)
COMMANDS = ("import", "unlearn", "evaluate", "evaluate_sample")


def memory_verdicts(record: dict) -> list[dict]:
    """The target per bounded command: {command, ratio, met}."""
    ratios = record.get("peak_ratio_largest_to_smallest") or {}
    return [{"command": command, "ratio": ratios.get(command),
             "met": None if ratios.get(command) is None else ratios[command] <= PEAK_RATIO_LIMIT}
            for command in BOUNDED]


def memory_lines(record: dict, json_path: str) -> list[str]:
    settings = record["settings"]
    sizes = sorted(record["sizes"], key=int)
    body = []
    for size in sizes:
        row = record["sizes"][size]
        body.append([f"{int(size):,}", *(f"{row[c]['peak_rss_mb']:,.0f} MB, {row[c]['seconds']:,.0f} s"
                                         if c in row else MISSING for c in COMMANDS)])
    ratios = record.get("peak_ratio_largest_to_smallest") or {}
    body.append(["peak ratio, largest / smallest", *(f"{ratios[c]:.3f}x" if c in ratios else MISSING
                                                     for c in COMMANDS)])
    verdicts = "; ".join(f"{v['command']} {'met' if v['met'] else 'missed' if v['met'] is False else 'not run'}"
                         + (f" ({v['ratio']:.3f}x)" if v["ratio"] is not None else "") for v in memory_verdicts(record))
    return [f"Peak resident memory and wall time of each command in its own process, on synthetic image folders "
            f"of {settings['pixels']} px ({settings['classes']} classes), a {md(settings['model'])} ViTMAE and "
            f"{md(settings['evaluator'])}; `evaluate (sample)` adds `--max-eval-images "
            f"{settings['max_eval_images']}`. Target: `unlearn` and `evaluate` on the largest folder within "
            f"{PEAK_RATIO_LIMIT}x of the smallest: {verdicts}. Made by `{record['command']}` ({json_path}).", "",
            *_table(["images", "import", "unlearn", "evaluate", "evaluate (sample)"], body)]


def chain_lines(record: dict, json_path: str) -> list[str]:
    """One folder through a user's whole chain (scale_memory.py --chain): each command's peak memory and time."""
    settings = record["settings"]
    body = []
    for size in sorted(record["sizes"], key=int):
        row = record["sizes"][size]
        body += [[f"{int(size):,}", f"`{command.replace('_sample', '')}`"
                  + (f" --max-eval-images {settings['max_eval_images']}" if command == "evaluate_sample" else "")
                  + _scored(row[command]), f"{row[command]['peak_rss_mb']:,.0f}", f"{row[command]['seconds']:,.0f}"]
                 for command in row]
    split = settings["split"]
    return [f"A randomly initialised Hugging Face ViTMAE of the {md(settings['model'])} shape at {settings['pixels']} "
            f"px, saved with `save_pretrained`, through a user's whole chain on a synthetic image folder of "
            f"{settings['classes']} classes ({split['rule']} split: {split['test_fraction']:.0%} test, "
            f"{split['val_fraction']:.0%} validation), each command in its own process: `unlearn` runs "
            f"{settings['steps']} steps of {settings['batch_size']} forget + {settings['batch_size']} retain images, "
            f"the scores use {md(settings['evaluator'])}. Made by `{record['command']}` ({json_path}).",
            "", *_table(["images", "command", "peak RSS MB", "seconds"], body)]


def _scored(row: dict) -> str:
    scored = row.get("images_scored")
    return f" ({scored['forget']} forget + {scored['retain']} retain images)" if scored else ""


def step_lines(record: dict, json_path: str) -> list[str]:
    body = []
    for name, model in record["models"].items():
        for row in model["rows"]:
            precision = "float32" if row["mixed_precision"] == "no" else f"{row['mixed_precision']} autocast"
            body.append([md(name), row["kind"], precision, "yes" if row["gradient_checkpointing"] else "no",
                         f"{row['seconds_per_step']:.2f}", f"{row['peak_rss_mb']:,.0f}",
                         f"{row['to_training_step']:.2f}x" if "to_training_step" in row else ""])
    host = record.get("host") or {}
    speed = f", {host['matmul_gflops']} GFLOP/s measured" if host.get("matmul_gflops") else ""
    return [f"Seconds per step (median of {record['repeats']} after a warm-up) and peak resident memory, "
            f"{record['images']} images per step (unlearning: half forget, half retain, `ours`), random weights "
            f"of the full shapes, on {host.get('cores', '?')} CPU core(s){speed}; the last column is an unlearning "
            f"step against the training step of the same setting. Made by `{record['command']}` ({json_path}).", "",
            *_table(["model", "step", "precision", "gradient checkpointing", "s / step", "peak RSS MB",
                     "to training"], body)]


def scale_section(memory: tuple[dict, str] | None, steps: tuple[dict, str] | None,
                  chain: tuple[dict, str] | None = None) -> list[str]:
    if memory is None and steps is None and chain is None:
        return []
    lines = ["## Scale", ""]
    if memory is not None:
        lines += ["### Memory against the folder's size", "", *memory_lines(*memory), ""]
    if steps is not None:
        lines += ["### A step at the paper's resolution", "", *step_lines(*steps), ""]
    if chain is not None:
        lines += ["### A full-size checkpoint through the whole chain", "", *chain_lines(*chain), ""]
    return lines


def scale_entries(record: dict, source: str) -> list[dict]:
    """docs/targets.json entries (issue 34): peak memory of unlearn and evaluate, largest folder over smallest."""
    sizes = sorted(record["sizes"], key=int)
    return [{"issue": 34, "kind": "method", "model": None, "family": "mae",
             "target": f"{v['command']}: peak RSS on {int(sizes[-1]):,} images within {PEAK_RATIO_LIMIT}x of "
                       f"{int(sizes[0]):,}", "value": v["ratio"], "limit": f"<= {PEAK_RATIO_LIMIT}", "interval": None,
             "verdict": "met" if v["met"] else "missed" if v["met"] is False else "not run", "json": source}
            for v in memory_verdicts(record)]
