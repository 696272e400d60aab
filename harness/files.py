"""Output directories and file hashes, shared by ``dfp run`` and ``dfp simulate``."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path


class OccupiedDirectoryError(RuntimeError):
    """The output directory holds something else and ``force`` was not given."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def prepare_directory(out_dir: Path, force: bool) -> None:
    """Create ``out_dir``; refuse a non-empty one unless ``force`` says to replace it.

    Mixing the files of two runs would make every hash and count in them meaningless.
    """
    if out_dir.exists() and not out_dir.is_dir():
        raise OccupiedDirectoryError(f"{out_dir} exists and is not a directory")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if not force:
            raise OccupiedDirectoryError(
                f"{out_dir} is not empty; choose another directory or pass --force to replace it"
            )
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
