"""Train the reference models the statistics and robustness audits need, one at a time, resumable.

Two kinds per family, each a training seed of a shipped recipe:
  - `with`: the original recipe (it saw the forget class): the IN shadows of the per-example
    membership attack (LiRA); the shipped original (seed 0) stays out of the fit, the model it must catch;
  - `without`: `retrain` without the forget class: the OUT shadows and the retrained references
    (three seeds give an interval; one more is held out of the LiRA fit as the ideal).

A model is trained in runs/references/<name> (checkpoints there, so a killed run resumes with
`--resume` semantics) and copied into pretrained/<name> without its checkpoints once it is complete.
A model already in pretrained/ is skipped, so rerunning the same command continues the queue.

    .venv/bin/python benchmarks/train_references.py --family mae --with-seeds 1,2,3,4 --without-seeds 3,4
    .venv/bin/python benchmarks/train_references.py --family diffusion --without-seeds 2
"""
from __future__ import annotations

import argparse
import copy
import os
from pathlib import Path

from i2i_unlearn.checkpoints import CHECKPOINTS, keep_model_dir
from i2i_unlearn.config import UnlearnConfig
from i2i_unlearn.models import load_model
from i2i_unlearn.train import train
from i2i_unlearn.lineage import training_config
from i2i_unlearn.unlearn import unlearn

from _shared import ROOT

# family -> (shipped original, forget class, name of its retrained models)
RECIPES = {
    "mae": ("mae-animal-mnist", "Cat", "mae-animal-mnist-without-cat"),
    "vqgan": ("vqgan-cat-dog", "Cat", "vqgan-cat-dog-without-cat"),
    "diffusion": ("diffusion-animal-mnist", "Cat", "diffusion-animal-mnist-without-cat"),
    "mae-fashion": ("mae-fashion-mnist", "Trouser", "mae-fashion-mnist-without-trouser"),
}


def shipped_name(base: str, seed: int) -> str:
    """Seed 0 is the shipped folder itself; other seeds carry their seed in the name."""
    return base if seed == 0 else f"{base}-seed{seed}"


def train_one(name: str, make) -> None:
    final = Path("pretrained") / name
    if (final / "model.safetensors").is_file():
        print(f"{name}: already in pretrained/, skipped", flush=True)
        return
    work = Path("runs") / "references" / name
    resume = (work / CHECKPOINTS).is_dir()
    print(f"{name}: {'resuming' if resume else 'training'} in {work}", flush=True)
    make(work, resume)
    keep_model_dir(work, final)
    print(f"{name}: saved pretrained/{name}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", choices=sorted(RECIPES), required=True)
    parser.add_argument("--with-seeds", default="", help="training seeds of the original recipe, e.g. 1,2,3,4")
    parser.add_argument("--without-seeds", default="", help="training seeds of retrain, e.g. 3,4")
    args = parser.parse_args()
    original, forget_class, retrained = RECIPES[args.family]
    os.chdir(ROOT)   # model folders record the paths they were made from: relative ones, as in every shipped folder
    original_dir = Path("pretrained") / original

    for seed in [int(s) for s in args.with_seeds.split(",") if s]:
        def make(work: Path, resume: bool, seed=seed):
            recipe = copy.deepcopy(training_config(load_model(original_dir)))
            recipe.seed = seed
            train(recipe, work, resume=resume, overwrite=not resume)
        train_one(shipped_name(original, seed), make)

    for seed in [int(s) for s in args.without_seeds.split(",") if s]:
        def make(work: Path, resume: bool, seed=seed):
            unlearn(original_dir, UnlearnConfig(method="retrain", forget_classes=[forget_class], seed=seed), work,
                    resume=resume, overwrite=not resume)
        train_one(shipped_name(retrained, seed), make)


if __name__ == "__main__":
    main()
