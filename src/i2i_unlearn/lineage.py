"""What a model folder records about its data and its requests: the data and recipe it was trained with, the
classes it was trained on and those earlier requests forgot, the image ids forgotten by file list. Every command
that reads a model (unlearn, evaluate, audit, the front, the bench) asks here."""
from __future__ import annotations

from pathlib import Path

from i2i_unlearn.checkpoints import CONFIG_NAME, read_json
from i2i_unlearn.config import DataConfig, TrainConfig, from_dict, recorded_data_config, to_dict
from i2i_unlearn.errors import UserError
from i2i_unlearn.models import I2IModel
from i2i_unlearn.runs import forgotten_classes, unlearning_history

FORGOTTEN_IDS = "forgotten_ids.sha256"   # sha256 of each image id forgotten by a file list, every request so far


def training_data_config(model: I2IModel) -> DataConfig:
    """The data config a model was trained with (recorded by `train`)."""
    recorded = getattr(model, "pretrained_info", {}).get("training")
    if not recorded:
        raise UserError("the model records no training data config: pass the dataset explicitly (--dataset)")
    return recorded_data_config(recorded["data"])

def input_folders(*inputs) -> list[Path]:
    """Folders a run reads and must never write into, delete or contain: model dirs and data roots."""
    folders = []
    for item in inputs:
        if isinstance(item, DataConfig):
            item = item.root
        if item is not None:
            folders.append(Path(item))
    return folders

def training_config(model: I2IModel) -> TrainConfig:
    """The whole recipe a model was trained with, its split as recorded."""
    return from_dict(TrainConfig, {**model.pretrained_info["training"], "data": to_dict(training_data_config(model))},
                     " training")

def default_retain_classes(model: I2IModel, forget_classes: list[str]) -> list[str] | None:
    """A model trained on some classes only (e.g. Cat and Dog) retains those, minus the forgotten
    ones; None for a model trained on every class of its dataset and never unlearned. Classes an
    earlier request forgot stay out as well: retaining them would teach them again (retrain,
    retain-label), so forgetting Dog after Cat retains neither."""
    info = getattr(model, "pretrained_info", {})
    trained = (info.get("training") or {}).get("classes")
    earlier = forgotten_classes(info)
    if not trained and not earlier:
        return None
    if trained:
        known = {name.lower() for name in trained}
        never_seen = [name for name in forget_classes if name.lower() not in known]
        if never_seen:
            raise UserError(f"the model was never trained on {', '.join(never_seen)}; its classes: "
                            f"{', '.join(trained)}")
    forgotten = {name.lower() for name in [*forget_classes, *earlier]}
    return [name for name in trained or info["class_names"] if name.lower() not in forgotten]

def check_not_retaining_forgotten(model: I2IModel, retain_classes: list[str] | None) -> None:
    """Refuse a retain set that names a class an earlier request forgot."""
    earlier = {name.lower() for name in forgotten_classes(getattr(model, "pretrained_info", {}))}
    again = [name for name in retain_classes or [] if name.lower() in earlier]
    if again:
        raise UserError(f"{', '.join(again)} was forgotten by an earlier request of this model and cannot be "
                        "retained (that would teach it again); leave it out of retain_classes")

def forgotten_id_hashes(model_dir: str | Path, model: I2IModel) -> frozenset[str]:
    """sha256 of the image ids earlier requests forgot by file list (kept out of the retain set)."""
    path = Path(model_dir) / FORGOTTEN_IDS
    if path.is_file():
        return frozenset(path.read_text().split())
    if any(step.get("config", {}).get("forget_files") for step in unlearning_history(model.pretrained_info)):
        raise UserError(f"{model_dir} forgot images by file list, but its {FORGOTTEN_IDS} is missing: restore it, "
                        "or a later request could train on those images again")
    return frozenset()

FILLED_IN_BY_UNLEARN = ("retain_classes",)   # a request's None that unlearn replaces with what it used


def request_changes(model_dir: str | Path, request: dict, parent_weights_sha256: str, *, whole: bool = False
                    ) -> list[str]:
    """What a model folder's making differs in from `request` (an unlearning config as a dict; a key left None is
    not compared) and from the start model whose weights hash is `parent_weights_sha256`: [] when the folder is what
    the request would make now. Read from its lineage (config.json), since a retraining's run.json holds its training
    recipe instead of the request. With `whole` (`request` is a whole config, to_dict(UnlearnConfig)), a knob the
    folder was made with that the request leaves unset counts too (e.g. `perturb` set then, unset now), except what
    unlearn fills in."""
    path = Path(model_dir) / CONFIG_NAME
    lineage = (read_json(path).get("unlearning") or {}) if path.is_file() else {}
    made = lineage.get("config") or {}
    changed = {key for key, value in request.items() if value is not None and made.get(key) != value}
    if whole:
        changed |= {key for key, value in made.items()
                    if value is not None and request.get(key) is None and key not in FILLED_IN_BY_UNLEARN}
    changed = sorted(changed)
    if lineage.get("parent_weights_sha256") != parent_weights_sha256:
        changed.append("start model")
    return changed
