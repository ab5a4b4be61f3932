"""The audit's slow per-model parts (each model's relearning curves, its LiRA restoration scores), kept on disk by
everything they depend on: an audit stopped part-way, or run again on a fresh machine with the cache folder kept,
computes only what is missing. Each file holds its key's parts beside the value, so it says what it is."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from i2i_unlearn.checkpoints import read_json, sha256_json, sha256_text, versions, write_json_atomic

CACHE_VERSION = 1   # bump when relearning or LiRA scoring code changes a number: every kept value is computed again


def ids_sha256(images) -> str:
    return sha256_text("\n".join(images.ids))


def cached_json(cache_dir: Path | None, kind: str, key_parts: dict, compute):
    """compute(), or the value kept for the same `key_parts` (JSON: every part is a plain value)."""
    if cache_dir is None:
        return compute()
    parts = json.loads(json.dumps({**key_parts, "code": CACHE_VERSION, "versions": versions()}, sort_keys=True))
    path = Path(cache_dir) / f"{kind}-{sha256_json(parts)[:24]}.json"
    if path.is_file():
        stored = read_json(path)
        if stored.get("key") == parts:
            return stored["value"]
    value = compute()
    write_json_atomic(path, {"key": parts, "value": value})
    return value


def cached_tensor(cache_dir: Path | None, kind: str, key_parts: dict, compute) -> torch.Tensor:
    """cached_json for a 1-d tensor: its values and dtype kept exactly (a float prints back to itself)."""
    def as_json():
        tensor = compute()
        return {"dtype": str(tensor.dtype).removeprefix("torch."), "values": tensor.tolist()}
    value = cached_json(cache_dir, kind, key_parts, as_json)
    return torch.tensor(value["values"], dtype=getattr(torch, value["dtype"]))
