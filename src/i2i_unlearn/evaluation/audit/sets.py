"""Which images an audit attacks: members (the forgotten training images) and non-members (never-seen images
of the same classes), for a class request or a file list."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from i2i_unlearn.checkpoints import sha256_text
from i2i_unlearn.config import DataConfig
from i2i_unlearn.data import ImageSource, UnlearnSplit, open_split
from i2i_unlearn.data.requests import read_id_list
from i2i_unlearn.errors import UserError
from i2i_unlearn.lineage import forgotten_id_hashes
from i2i_unlearn.models import I2IModel
from i2i_unlearn.runs import forgotten_classes


@dataclass
class AuditSets:
    """Forgotten training images (members) and never-seen images of the same classes (non-members), in memory or
    read from disk as the dataset is."""
    members: ImageSource
    non_members: ImageSource
    forget_class_names: list[str]
    kind: str                       # "classes" or "files"
    split: str                      # the part the non-members come from: test (or val)
    all_members: int = 0            # forgotten training images before sampling
    held_out: ImageSource | None = None  # the whole held-out part (retain quality for file lists)
    parts: dict | None = None       # counts and id hashes of train, val, test (Split.describe)
    train: ImageSource | None = None   # the whole train part (of the classes trained on)

    def describe(self) -> dict:
        def one(images: ImageSource) -> dict:
            return {"count": len(images), "classes": sorted({images.class_names[i] for i in images.labels.tolist()}),
                    "ids_sha256": sha256_text("\n".join(images.ids))}
        return {"kind": self.kind, "forget_classes": self.forget_class_names, "non_member_split": self.split,
                "members": {**one(self.members), "forgotten_total": self.all_members,
                            "source": "train split: the forgotten images"},
                "non_members": {**one(self.non_members),
                                "source": f"{self.split} split: never seen, same classes"}}

def sample(images: ImageSource, limit: int | None, seed: int) -> ImageSource:
    if limit is None or len(images) <= limit:
        return images
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:limit]
    return images.subset(order.sort().values)

def audit_sets(data: DataConfig, *, forget_classes: list[str] | None = None, forget_files: str | Path | None = None,
               forgotten_id_hashes: frozenset[str] | None = None, split: str = "test",
               max_images: int | None = None, seed: int = 0, trained_classes: list[str] | None = None) -> AuditSets:
    """Members and non-members of a forget request: classes, a file of image ids, or the sha256 of
    the ids a model folder forgot (its forgotten_ids.sha256). At most `max_images` of each, sampled."""
    if split not in ("test", "val"):
        raise UserError(f"non-members come from a held-out split: test or val, got {split!r}")
    given = [x for x in (forget_classes, forget_files, forgotten_id_hashes) if x]
    if not given:
        raise UserError("the forget set is empty: name forget classes (--forget-classes) or a forget file list "
                        "(--forget-files)")
    if len(given) > 1:
        raise UserError("give forget classes or a forget file list, not both")
    parts = open_split(data)   # an image folder's parts stay on disk: the attacks read them in batches
    train, held_out = parts.train, parts.part(split)
    if trained_classes:  # a model trained on some classes only: the rest are no one's members
        keep = torch.isin(train.labels, torch.tensor(train.class_indices(trained_classes)))
        train = train.subset(torch.nonzero(keep).flatten())
        keep = torch.isin(held_out.labels, torch.tensor(held_out.class_indices(trained_classes)))
        held_out = held_out.subset(torch.nonzero(keep).flatten())
    if forget_classes:
        labels = train.class_indices(forget_classes)
        if trained_classes:
            never = [n for n in forget_classes if n.lower() not in {c.lower() for c in trained_classes}]
            if never:
                raise UserError(f"the model was never trained on {', '.join(never)}; its classes: "
                                f"{', '.join(trained_classes)}")
        member_mask = torch.isin(train.labels, torch.tensor(labels))
        kind = "classes"
    else:
        if forget_files:
            wanted = set(read_id_list(forget_files))
            held = set(parts.val.ids) | set(parts.test.ids)
            in_held_out = wanted & held
            if in_held_out:
                raise UserError(f"{len(in_held_out)} id(s) of {forget_files} are held-out validation or test "
                                f"images, e.g. {sorted(in_held_out)[0]}; no model trained on them")
            missing = wanted - set(train.ids)
            if missing:
                raise UserError(f"{len(missing)} id(s) of {forget_files} are not training images of "
                                f"{train.name}, e.g. {sorted(missing)[0]}")
            member_mask = torch.tensor([i in wanted for i in train.ids], dtype=torch.bool)
        else:
            member_mask = torch.tensor([sha256_text(i) in forgotten_id_hashes for i in train.ids], dtype=torch.bool)
        labels = sorted(set(train.labels[member_mask].tolist()))
        kind = "files"
    if not member_mask.any():
        raise UserError("the forget set is empty: no training image matches the forget request")
    members = train.subset(torch.nonzero(member_mask).flatten())
    non_members = held_out.subset(torch.nonzero(torch.isin(held_out.labels, torch.tensor(labels))).flatten())
    if len(non_members) == 0:
        raise UserError(f"no never-seen {split} images of {', '.join(train.class_names[i] for i in labels)}")
    return AuditSets(sample(members, max_images, seed), sample(non_members, max_images, seed + 1),
                     [train.class_names[i] for i in labels], kind, split, len(members), held_out, parts.describe(), train)

def forgotten_files_split(sets: AuditSets) -> UnlearnSplit:
    """For `evaluate` of a file-list request: the forgotten images themselves as the forget set
    (no never-seen twin exists) and every never-seen image of the split as the retain set."""
    return UnlearnSplit(forget_train=sets.members, retain_train=sets.held_out, forget_eval=sets.members,
                        retain_eval=sets.held_out, forget_class_names=sets.forget_class_names, eval_split=sets.split,
                        parts=sets.parts, train=sets.train, forget_kind="files")

def model_forget_request(models: dict[str, I2IModel], model_dirs: dict[str, str | Path]) -> dict:
    """What the given models record as forgotten, for commands run without --forget-classes or
    --forget-files: every class a chain of requests forgot, else the image ids a file-list request
    forgot (the sha256 of each, from the model folder's forgotten_ids.sha256)."""
    for model in models.values():
        classes = forgotten_classes(getattr(model, "pretrained_info", {}))
        if classes:
            return {"forget_classes": classes}
    for name, model in models.items():
        hashes = forgotten_id_hashes(model_dirs[name], model)
        if hashes:
            return {"forgotten_id_hashes": hashes}
    return {}
