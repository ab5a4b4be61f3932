"""Benchmark: reconstruction quality of the shipped VQ tokenizer on the held-out test split.

    .venv/bin/python benchmarks/vq_tokenizer.py

Writes benchmarks/results/vq_tokenizer.json and .md: test MSE of reconstructions, FID/similarity
of reconstructions against the real images (the domain evaluator's features), the evaluator's
accuracy on reconstructions vs on real images, and how many codes the test set uses.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from i2i_unlearn.checkpoints import versions, write_json_atomic, write_text_atomic
from i2i_unlearn.config import recorded_data_config
from i2i_unlearn.data import load_split
from i2i_unlearn.evaluation.evaluator import load_evaluator
from i2i_unlearn.evaluation.metrics import fid, similarity
from i2i_unlearn.models.vqgan import VQTokenizer
from i2i_unlearn.runs import total_wall_time

from _shared import ROOT


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokenizer", default=str(ROOT / "pretrained" / "vq-tokenizer-animal-mnist"))
    parser.add_argument("--evaluator", default=str(ROOT / "pretrained" / "evaluator-animal-mnist"))
    parser.add_argument("--name", default="vq_tokenizer")
    args = parser.parse_args()

    tokenizer = VQTokenizer.from_pretrained(args.tokenizer).eval()
    info = VQTokenizer.read_config(args.tokenizer)
    test = load_split(recorded_data_config(info["training"]["data"])).test
    evaluator = load_evaluator(args.evaluator)
    started = time.time()
    with torch.no_grad():
        tokens = torch.cat([tokenizer.tokenize(test.images[i:i + 256]) for i in range(0, len(test), 256)])
        reconstructions = torch.cat([tokenizer.detokenize(tokens[i:i + 256]) for i in range(0, len(test), 256)])
    seconds = time.time() - started
    real_accuracy = float((evaluator.predict(test.images) == test.labels).float().mean())
    record = {
        "tokenizer": str(Path(args.tokenizer).resolve().relative_to(ROOT)), "weights_sha256": info["weights_sha256"],
        "test_images": len(test), "grid": tokenizer.grid, "codebook_size": tokenizer.config.codebook_size,
        "codes_used_on_test": int(tokens.unique().numel()),
        "test_mse": round(float(((reconstructions - test.images) ** 2).mean()), 5),
        "fid_reconstruction_vs_real": round(fid(evaluator, reconstructions, test.images), 2),
        "similarity_reconstruction_vs_real": round(similarity(evaluator, reconstructions, test.images), 4),
        "evaluator_accuracy_real": round(real_accuracy, 4),
        "evaluator_accuracy_reconstructed": round(float((evaluator.predict(reconstructions) == test.labels)
                                                        .float().mean()), 4),
        "round_trip_images_per_s": round(len(test) / seconds, 1),
        "training_wall_time_s": total_wall_time(json.loads((Path(args.tokenizer) / "run.json").read_text())),
        "versions": versions(),
    }
    write_json_atomic(ROOT / "benchmarks" / "results" / f"{args.name}.json", record)
    rows = [f"| {key} | {value} |" for key, value in record.items() if key != "versions"]
    table = "\n".join(["| VQ tokenizer (held-out test split) | |", "|---|---|", *rows]) + "\n"
    write_text_atomic(ROOT / "benchmarks" / "results" / f"{args.name}.md", table)
    print(table)


if __name__ == "__main__":
    main()
