"""Output directories: dfp writes only into directories it made, and replaces only those.

Every command that writes a directory (``dfp run``, ``simulate``, ``bundle``, ``validate``,
``parity``, ``deploy synth``) goes through :func:`prepare_output_dir`. The rule is deliberately
narrow, because the cost of a wrong deletion is a user's files:

* a directory dfp creates gets a marker file, :data:`MARKER`, written *before* anything else;
* a non-empty directory is replaced only when ``force`` is given **and** it carries that marker
  (a regular file, not a link, with dfp's first line); only its entries are removed, the
  directory itself (and so its permissions and any open shell in it) stays;
* some targets are refused outright, empty or not, with or without ``force``: the filesystem
  root, the user's home and any folder above it, the current directory and any folder above
  it, a folder holding ``.git`` or ``pyproject.toml`` (a project), a mount point, and a symbolic
  link (whose target is somewhere the user did not name).

A refusal is an :class:`OutputDirError` naming the path and the reason; nothing is deleted
before every check has passed. It lives in ``deploy`` (the lowest layer that writes
directories) so that ``deploy`` and ``harness`` share the one function.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

logger = logging.getLogger(__name__)

MARKER = ".dfp-output"
_MARKER_HEAD = "dfp-harness output directory"
_PROJECT_FILES = (".git", "pyproject.toml")


class OutputDirError(ValueError):
    """dfp refuses to write into (or replace) this directory; nothing was deleted."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a link loop: compare as written
        return path.absolute()


def _homes() -> set[Path]:
    found = set()
    for raw in (os.environ.get("HOME"), os.path.expanduser("~")):
        if raw and raw != "~":
            found.add(_resolved(Path(raw)))
    return found


def is_dfp_output(path: Path) -> bool:
    """True when ``path`` carries dfp's marker: a regular file whose first line is dfp's."""
    marker = Path(path) / MARKER
    if marker.is_symlink() or not marker.is_file():
        return False
    try:
        with marker.open("r", encoding="utf-8", errors="replace") as handle:
            return handle.readline().strip() == _MARKER_HEAD
    except OSError:
        return False


def _protected_reason(target: Path) -> str | None:
    """Why ``target`` (absolute, resolved) may never be an output directory, or None."""
    if target == Path(target.anchor):
        return "is the filesystem root"
    for home in _homes():
        if target == home:
            return "is your home directory"
        if target in home.parents:
            return f"is a folder above your home directory ({home})"
    cwd = _resolved(Path.cwd())
    if target == cwd:
        return "is the current directory"
    if target in cwd.parents:
        return f"is a folder above the current directory ({cwd})"
    for name in _PROJECT_FILES:
        if (target / name).exists() or (target / name).is_symlink():
            return f"holds {name}: it looks like a project, not an output directory"
    if target.is_dir() and os.path.ismount(target):
        return "is a mount point"
    return None


def check_output_dir(path: Path | str, *, force: bool) -> Path:
    """Every check of :func:`prepare_output_dir`, without touching anything; returns the path."""
    given = Path(path)
    if given.is_symlink():
        raise OutputDirError(
            given, "is a symbolic link; name the real directory (dfp does not write through links)"
        )
    target = _resolved(given)
    if reason := _protected_reason(target):
        raise OutputDirError(given, f"{reason}; dfp writes its output into a directory of its own")
    if target.exists() and not target.is_dir():
        raise OutputDirError(given, "exists and is not a directory")
    if target.is_dir():
        try:
            occupied = any(target.iterdir())
        except OSError as exc:
            raise OutputDirError(given, f"cannot be read ({exc.strerror or exc})") from None
        if occupied and not force:
            raise OutputDirError(
                given,
                "is not empty; choose another directory, or pass --force to replace a "
                "directory that dfp created",
            )
        if occupied and not is_dfp_output(target):
            raise OutputDirError(
                given,
                f"is not empty and was not created by dfp (no {MARKER} marker); dfp replaces "
                "only directories it created, so nothing was deleted. Choose another directory "
                "or empty this one yourself",
            )
    return given


def prepare_output_dir(path: Path | str, *, force: bool, kind: str = "output") -> Path:
    """Make ``path`` an empty dfp output directory (marked), or raise :class:`OutputDirError`.

    ``kind`` (``run``, ``simulation``, ``bundle``…) is written into the marker for people who
    wonder where a directory came from; any dfp marker allows replacement.
    """
    given = check_output_dir(path, force=force)
    target = _resolved(given)
    if target.is_dir():
        for entry in sorted(target.iterdir()):
            if entry.name == MARKER:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        logger.info("replaced the contents of dfp output directory %s", target)
    try:
        target.mkdir(parents=True, exist_ok=True)
        (target / MARKER).write_text(f"{_MARKER_HEAD}\nkind: {kind}\n", encoding="utf-8")
    except OSError as exc:
        raise OutputDirError(given, f"cannot be created ({exc.strerror or exc})") from None
    return given
