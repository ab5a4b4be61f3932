"""Input hashes of an image folder, each file hashed once: a run names its data by the files' sha256, kept in a JSON
cache beside the run and keyed by path, size and modification time (a file changed since is hashed again)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from i2i_unlearn.checkpoints import sha256_file, write_json_atomic
from i2i_unlearn.errors import UserError

FILE_HASHES = "file_hashes.json"   # the cache's name in a run folder
CACHE_VERSION = 1


class FileHashes:
    """sha256 of files, remembered in `cache_file` (None: remembered for this object's life only)."""

    def __init__(self, cache_file: str | Path | None):
        self.cache_file = Path(cache_file) if cache_file is not None else None
        self.entries: dict[str, dict] = {}
        if self.cache_file is not None and self.cache_file.is_file():
            try:
                values = json.loads(self.cache_file.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError):
                values = {}   # a damaged cache only costs hashing again; it is rewritten whole
            if isinstance(values, dict) and values.get("version") == CACHE_VERSION:
                self.entries = values.get("files") or {}
        self.changed = False

    def sha256(self, path: Path) -> str:
        try:
            stat = path.stat()
            key = str(path)
            entry = self.entries.get(key)
            if entry and entry.get("size") == stat.st_size and entry.get("mtime_ns") == stat.st_mtime_ns:
                return entry["sha256"]
            digest = sha256_file(path)
        except OSError as exc:   # removed or unreadable since the folder was listed
            raise UserError(f"cannot read image {path}: {exc.__class__.__name__}: {exc.strerror or exc}") from None
        self.entries[key] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": digest}
        self.changed = True
        return digest

    def listing_hash(self, root: Path, ids: list[str], classes: list[str]) -> str:
        """sha256 of one line per image: its id, its class and its file's sha256 (then the cache is saved)."""
        digest = hashlib.sha256()
        for image_id, class_name in zip(ids, classes, strict=True):
            digest.update(f"{image_id}\t{class_name}\t{self.sha256(Path(root) / image_id)}\n".encode())
        self.save()
        return digest.hexdigest()

    def save(self) -> None:
        if self.cache_file is not None and self.changed:
            write_json_atomic(self.cache_file, {"version": CACHE_VERSION, "files": self.entries})
            self.changed = False
