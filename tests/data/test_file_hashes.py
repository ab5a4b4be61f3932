"""Input hashes of an image folder: each file hashed once and remembered beside the run (data/file_hashes.py)."""
import os

import pytest
from test_streamed import folder_config, write_folder

import i2i_unlearn.data.file_hashes as file_hashes
from i2i_unlearn.data import open_dataset
from i2i_unlearn.data.file_hashes import FILE_HASHES, FileHashes
from i2i_unlearn.errors import UserError


@pytest.fixture
def hashed_files(monkeypatch) -> list:
    """The files sha256_file reads, in order."""
    read = []
    real = file_hashes.sha256_file

    def counting(path):
        read.append(path)
        return real(path)
    monkeypatch.setattr(file_hashes, "sha256_file", counting)
    return read


def test_each_file_is_hashed_once_and_a_changed_file_again(tmp_path, hashed_files):
    write_folder(tmp_path / "data", {"cats": 4, "dogs": 3})
    images, cache = open_dataset(folder_config(tmp_path / "data")), tmp_path / "run" / FILE_HASHES
    first = images.content_hash(FileHashes(cache))
    assert len(hashed_files) == 7 and cache.is_file()
    assert images.content_hash(FileHashes(cache)) == first and len(hashed_files) == 7   # read from the cache
    assert images.content_hash() == first            # the same hash with no cache, every file read again
    changed = tmp_path / "data" / "dogs" / "0001.png"
    changed.write_bytes(changed.read_bytes() + b"\0")   # a new size: hashed again, and the hash of the set moves
    hashed_files.clear()
    assert images.content_hash(FileHashes(cache)) != first and [p.name for p in hashed_files] == ["0001.png"]


def test_the_hash_covers_ids_and_classes_and_a_damaged_cache_is_rebuilt(tmp_path):
    write_folder(tmp_path / "data", {"cats": 2, "dogs": 2})
    images = open_dataset(folder_config(tmp_path / "data"))
    whole = images.content_hash()
    assert images.subset([0, 1, 2]).content_hash() != whole
    relabelled = images.subset(range(4))
    relabelled.labels = relabelled.labels.flip(0)
    assert relabelled.content_hash() != whole
    cache = tmp_path / FILE_HASHES
    cache.write_text("{not json")
    assert images.content_hash(FileHashes(cache)) == whole and cache.read_text().startswith("{")


def test_a_file_removed_since_listing_is_named(tmp_path):
    write_folder(tmp_path, {"cats": 2})
    images = open_dataset(folder_config(tmp_path))
    os.remove(tmp_path / "cats" / "0001.png")
    with pytest.raises(UserError, match="cannot read image .*0001.png: FileNotFoundError"):
        images.content_hash()
