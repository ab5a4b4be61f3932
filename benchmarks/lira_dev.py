"""Per-example membership (LiRA) on forget images the robustness audit never attacks: a development set, so that a
method's design is read without looking at the audit's own members, which then score the chosen method once.

The members are the forget class's training images outside the audit's sample (bench/robust.py draws `max_images`
of them with `seed`), `max_images` of the rest drawn with the next seed. The shadows, conditions, null and bootstrap
are the audit's own (its config; lira.py). Each model is given as name=folder; the original (the attack's power)
and the held-out retrained seed (the ideal) are always scored too. Writes lira-dev-<family>.json and .md beside the
audit's page, and keeps each model's scores in the audit's cache.

    .venv/bin/python benchmarks/lira_dev.py --config benchmarks/robust-mae.yaml a0.1=runs/tune-mae/ours-substitute-...
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from types import SimpleNamespace

import torch

from i2i_unlearn.bench.robust import load_spec
from i2i_unlearn.checkpoints import versions, write_json_atomic, write_text_atomic
from i2i_unlearn.errors import UserError
from i2i_unlearn.evaluation.audit.run import AuditOptions, lira_membership
from i2i_unlearn.evaluation.audit.sets import audit_sets, sample
from i2i_unlearn.lineage import training_data_config
from i2i_unlearn.models import load_model

from _shared import ROOT, absolute, command_line, relative


def development_members(model, spec):
    """The forget class's training images outside the audit's sample, `max_images` of them (the next seed)."""
    request = {"forget_classes": spec.forget_classes, "seed": spec.seed,
               "trained_classes": (model.pretrained_info.get("training") or {}).get("classes")}
    every = audit_sets(training_data_config(model), max_images=None, **request).members
    attacked = set(sample(every, spec.max_images, spec.seed).ids)   # the audit's own, sampled as audit_sets does
    rest = every.subset(torch.tensor([i for i, image_id in enumerate(every.ids) if image_id not in attacked]))
    if len(rest) < 2:
        raise UserError(f"the audit attacks every forget image but {len(rest)}: no development set is left")
    return sample(rest, spec.max_images, spec.seed + 1), len(every), len(attacked)


def run(config: Path, models: dict[str, str], command: str) -> dict:
    spec = load_spec(config, ROOT)
    if spec.forget_classes is None or not spec.shadows_in:
        raise UserError(f"{config.name}: the development set needs a class request with LiRA shadows")
    rows = {"original": spec.original, "retrained": spec.retrained[0], **models}
    loaded = {name: load_model(absolute(folder, ROOT)) for name, folder in rows.items()}
    members, total, attacked = development_members(loaded["original"], spec)
    options = AuditOptions(max_images=spec.max_images, seed=spec.seed, shadows_in=tuple(spec.shadows_in),
                           shadows_out=tuple(spec.shadows_out))
    shadows = {"in": [load_model(absolute(s, ROOT)) for s in spec.shadows_in],
               "out": [load_model(absolute(s, ROOT)) for s in spec.shadows_out], "audited": loaded}
    cache = ROOT / "benchmarks" / "results" / config.stem / "cache"
    lira = lira_membership(shadows, SimpleNamespace(members=members), options, print, cache)
    return {"command": command, "config": relative(config, ROOT), "versions": versions(),
            "members": {"count": len(members), "forget_class_images": total, "left_out_audited": attacked,
                        "seed": spec.seed + 1},
            "models": {name: {"dir": relative(absolute(folder, ROOT), ROOT),
                              "weights_sha256": loaded[name].pretrained_info["weights_sha256"],
                              "config": (loaded[name].pretrained_info.get("unlearning") or {}).get("config")}
                       for name, folder in rows.items()},
            "lira": lira}


def markdown(record: dict) -> str:
    members = record["members"]
    lines = [f"# LiRA on a development set ({record['config']})", "",
             f"Made by `{record['command']}`. {members['count']} forget-class training images that the audit does "
             f"not attack ({members['left_out_audited']} of the {members['forget_class_images']} are its own), the "
             "audit's shadows, conditions and null. For choosing a method's design; the audit scores the choice.", "",
             "| model | AUC | TPR at 1 % FPR | TPR at 0.1 % FPR |", "|---|---|---|---|"]
    for name, row in record["lira"]["models"].items():
        ci = row["intervals"]
        lines.append(f"| {name} | {row['auc']:.3f} [{ci['auc'][0]:.3f}, {ci['auc'][1]:.3f}] | "
                     f"{row['tpr_at_0.01_fpr']:.3f} [{ci['tpr_at_0.01_fpr'][0]:.3f}, {ci['tpr_at_0.01_fpr'][1]:.3f}] | "
                     f"{row['tpr_at_0.001_fpr']:.3f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True,
                        help="the robustness audit's config, e.g. benchmarks/robust-mae.yaml")
    parser.add_argument("models", nargs="*", help="name=model folder, each scored")
    args = parser.parse_args(argv)
    try:
        if any("=" not in item for item in args.models):
            raise UserError("give each model as name=folder")
        models = dict(item.split("=", 1) for item in args.models)
        config = Path(args.config)
        record = run(config, models, command_line(sys.argv[0], argv))
    except UserError as error:
        sys.exit(f"error: {error}")
    out = ROOT / "benchmarks" / "results" / f"lira-dev-{config.stem.removeprefix('robust-')}.json"
    write_json_atomic(out, record)
    write_text_atomic(out.with_suffix(".md"), markdown(record))
    print(markdown(record))


if __name__ == "__main__":
    main()
