"""What makes a cell the same cell: the keys of unlearning runs and evaluations, and the finished records."""
from __future__ import annotations

import functools

from i2i_unlearn.checkpoints import read_json, sha256_json, versions
from i2i_unlearn.config import TaskConfig, UnlearnConfig, to_dict
from i2i_unlearn.evaluation.scoring import KEPT_REPLICATES

BENCH_CODE_VERSION = 1   # bump when unlearning or evaluation code changes a number: every cell is recomputed

UNLEARNING_RECORD = "bench_unlearning.json"

UNLEARN_KEY_DOC = ("sha256 of: the bench code version, the original model's weights sha256 and training data config, "
                   "the whole unlearning config (knobs file + overrides + seed + forget classes), the unlearning key "
                   "of the run it starts from (a `starts_from` method) and the library versions (versions(): "
                   "python, i2i-unlearn, torch, transformers, diffusers, ...)")

EVAL_KEY_DOC = ("sha256 of: the bench code version, the unlearning key (a reference: its weights sha256), the task, "
                "the split scored, the evaluation seed, the bootstrap resamples, the evaluator's sha256, the forget "
                "classes and the library versions")

@functools.cache
def _versions() -> dict:
    return versions()

def _digest(value) -> str:
    return sha256_json(value)[:24]

def unlearn_key(original_info: dict, config: UnlearnConfig, start_key: str | None = None) -> str:
    """UNLEARN_KEY_DOC."""
    started = {"starts_from": start_key} if start_key else {}   # (absent otherwise: the keys of earlier cells hold)
    return _digest({"kind": "unlearn", "code": BENCH_CODE_VERSION,
                    "model_weights_sha256": original_info["weights_sha256"],
                    "training_data": (original_info.get("training") or {}).get("data"), "config": to_dict(config),
                    "versions": _versions(), **started})

def eval_key(model: str, task: TaskConfig, bench: dict, evaluator_sha256: str, forget_classes: list[str]) -> str:
    """EVAL_KEY_DOC. `model`: the unlearning key, or "reference:<weights sha256>"."""
    return _digest({"kind": "evaluate", "code": BENCH_CODE_VERSION, "model": model, "task": to_dict(task),
                    "split": bench["split"], "eval_seed": bench["eval_seed"], "bootstrap": bench["bootstrap"],
                    "eval_per_class": bench["eval_per_class"], "evaluator_sha256": evaluator_sha256,
                    "forget_classes": forget_classes, "versions": _versions()})

def cell_record(bench: dict, key: str) -> dict | None:
    path = bench["results"] / "cells" / f"{key}.json"
    if not path.is_file():
        return None
    record = read_json(path)
    return record if record.get("key") == key else None


def finished_cell(bench: dict, key: str) -> dict | None:
    """cell_record, when the bench need not score the cell again. A cell scored before cells kept the bootstrap
    replicates of every compared score (KEPT_REPLICATES; the reference rows' cells, cached since) is scored again:
    a row is compared with another by the paired rule only when both kept them, and a method row against the
    retrained models is the comparison the tables are for. (Tables rewritten from the cells alone still read such a
    cell, by the unpaired rule.) Scoring again is evaluation only: the cell's unlearned weights are kept."""
    record = cell_record(bench, key)
    return record if record is not None and _kept_every_replicate(record) else None


def _kept_every_replicate(record: dict) -> bool:
    """Every set with replicates (a set too small to score has None) keeps, in the hole view, every KEPT_REPLICATES
    score its whole view keeps (recognition is absent from both with an evaluator without classes); cells from
    before the hole kept its similarity do not."""
    if "replicates" not in record:
        return False
    return all(set(KEPT_REPLICATES["hole"]) & set(views["whole"]) <= set(views.get("hole") or {})
               for views in record["replicates"].values() if views)
