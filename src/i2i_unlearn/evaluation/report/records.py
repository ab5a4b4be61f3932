"""What a report reads besides results.json, checked before anything is written: the results' figures, a
front.json of `unlearn --front` and audit.json files of `audit`, each with its figures beside it."""
from __future__ import annotations

from pathlib import Path

from i2i_unlearn.checkpoints import read_json
from i2i_unlearn.errors import UserError
from i2i_unlearn.evaluation.audit.relearn import relearning_paces
from i2i_unlearn.runs import FRONT_PLOT

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
AUDIT_FIGURES = ("roc", "lira_roc", "relearn", "grid_forget")   # the figures `audit` writes, in report order


def _is_png(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(len(PNG_SIGNATURE)) == PNG_SIGNATURE


def _read_record(path: Path, kind: str, described: str) -> dict:
    """A JSON record of `kind` (front, audit), or the one-line error a wrong file gets."""
    if not path.is_file():
        raise UserError(f"{kind} file not found: {path}")
    record = read_json(path)
    if not isinstance(record, dict) or record.get("kind") != kind:
        raise UserError(f"{path} is not {described}")
    return record


def image_files(results: dict, folder: Path) -> dict[str, Path]:
    """Figure name -> checked PNG path beside results.json."""
    files = {}
    for key, name in results["images"].items():
        if Path(name).name != name:  # only files beside results.json, never a path elsewhere
            raise UserError(f"images.{key}: {name!r} is not a file name beside results.json")
        path = folder / name
        if not path.is_file():
            raise UserError(f"image {key!r} not found: {path}")
        if not _is_png(path):
            raise UserError(f"image {key!r} is not a PNG file: {path}")
        files[key] = path
    return files


def load_front(front_path: str | Path) -> tuple[dict, Path]:
    """A front.json written by `unlearn --front`, and its checked plot beside it."""
    front_path = Path(front_path)
    front = _read_record(front_path, "front", "a front.json written by `unlearn --front`")
    plot = front_path.parent / FRONT_PLOT
    if not plot.is_file() or not _is_png(plot):
        raise UserError(f"the front's plot {plot} is missing or not a PNG file")
    return front, plot


def load_audit(audit_path: str | Path) -> tuple[dict, dict[str, Path]]:
    """An audit.json written by `audit`, and its checked figures beside it (figure key -> path)."""
    audit_path = Path(audit_path)
    audit = _read_record(audit_path, "audit", "an audit.json written by `i2i-unlearn audit`")
    if audit.get("schema_version") != 1:
        raise UserError(f"{audit_path}: schema_version {audit.get('schema_version')!r}; this report reads version 1")
    missing = [key for key in ("forget", "membership", "tell", "images") if not isinstance(audit.get(key), dict)]
    if missing:
        raise UserError(f"{audit_path} has no {', '.join(missing)}: not an audit.json written by `i2i-unlearn audit`")
    images = audit["images"]
    absent = [key for key in ("roc", "grid_forget") if key not in images]
    if absent:
        raise UserError(f"{audit_path} names no {' or '.join(absent)} figure")
    files = {}
    for key in AUDIT_FIGURES:
        if key not in images:
            continue
        name = images[key]
        if not isinstance(name, str) or Path(name).name != name:
            raise UserError(f"{audit_path}: images.{key}: {name!r} is not a file name beside audit.json")
        path = audit_path.parent / name
        if not path.is_file():
            raise UserError(f"the audit's figure {key!r} not found: {path}")
        if not _is_png(path):
            raise UserError(f"the audit's figure {key!r} is not a PNG file: {path}")
        files[key] = path
    if audit.get("relearning") and audit["relearning"].get("models"):
        relearning = audit["relearning"]
        relearning.setdefault("reference", audit.get("tell_reference"))   # audits before the return pace
        relearning_paces(relearning, next(iter(relearning.get("config", {}).get("variants") or ["whole"])))
    return audit, files


def audit_names(audits: list[tuple[dict, dict[str, Path]]], out_dir: Path) -> list[dict[str, str]]:
    """Per audit, figure key -> its file name in out_dir: its own name when the audit is in out_dir, else
    audit-<name> (audit-<k>-<name> for several audits), so no two figures share a name."""
    names = []
    for k, (_, files) in enumerate(audits):
        prefix = "audit-" if len(audits) == 1 else f"audit-{k + 1}-"
        in_place = {path.parent.resolve() for path in files.values()} == {out_dir.resolve()}
        names.append({key: path.name if in_place else prefix + path.name for key, path in files.items()})
    return names
