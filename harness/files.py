"""Output directories and file hashes, shared by ``dfp run`` and ``dfp simulate``.

The directory rule itself (what may be written, what may be replaced) is
:func:`deploy.outputs.prepare_output_dir`, one function for every command.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from deploy.outputs import MARKER, OutputDirError, check_output_dir, prepare_output_dir

__all__ = [
    "MARKER",
    "OutputDirError",
    "check_directory",
    "content_sha256",
    "prepare_directory",
    "sha256_file",
]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def content_sha256(path: Path) -> str:
    """A file's sha256; a Parquet file's over its content (schema with its metadata, then the
    rows), not its bytes. Spark's Parquet writer (parquet-mr) lists each column chunk's
    encodings in the order of a hash set of enum constants, whose hashes change from one JVM to
    the next: the same rows written by the same job differ in their footers' bytes."""
    if path.suffix != ".parquet":
        return sha256_file(path)
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path).combine_chunks()  # one chunk a column, however written
    except (pa.ArrowException, OSError):  # not readable as Parquet: what it holds is its bytes
        return sha256_file(path)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()


def check_directory(out_dir: Path, force: bool) -> None:
    """Every check :func:`prepare_directory` makes, touching nothing: a command that may still
    fail on its input checks first and creates the directory only once it has something to
    write."""
    check_output_dir(out_dir, force=force)


def prepare_directory(out_dir: Path, force: bool, kind: str = "run") -> None:
    """Create ``out_dir`` marked as dfp's; refuse a non-empty one unless ``force`` is given and
    dfp made it.

    Mixing the files of two runs would make every hash and count in them meaningless; deleting a
    directory dfp did not make could lose a user's files.
    """
    prepare_output_dir(out_dir, force=force, kind=kind)
