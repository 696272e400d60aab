"""The output-directory rule: dfp replaces only what it created, and refuses dangerous targets.

Every refusal is tried on throwaway directories standing in for the home directory, the current
directory and a project; each must leave the user's file in place.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.outputs import MARKER, OutputDirError, is_dfp_output, prepare_output_dir


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake home holding a user's file, a working directory inside it, and HOME pointed there."""
    home = tmp_path / "home"
    work = home / "work"
    work.mkdir(parents=True)
    (home / "precious.txt").write_text("the user's")
    (work / "notes.txt").write_text("the user's")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    return home


def _user_files(home: Path) -> set[str]:
    return {p.relative_to(home).as_posix() for p in home.rglob("*") if p.is_file()}


REFUSALS = [
    # (name, how to make the target from the sandbox, force, words in the reason)
    ("home", lambda h: h, True, "home directory"),
    ("above home", lambda h: h.parent, True, "above your home"),
    ("current directory", lambda h: Path("."), True, "current directory"),
    ("above the current directory", lambda h: Path(".."), True, "home directory"),
    ("filesystem root", lambda h: Path("/"), True, "filesystem root"),
    ("a project (.git)", lambda h: _project(h, ".git"), True, "holds .git"),
    ("a project (pyproject.toml)", lambda h: _project(h, "pyproject.toml"), True, "pyproject"),
    ("a symbolic link", lambda h: _link(h), True, "symbolic link"),
    ("not dfp's, with --force", lambda h: _foreign(h), True, "not created by dfp"),
    ("not empty, without --force", lambda h: _foreign(h), False, "--force"),
    ("a file", lambda h: _file(h), True, "not a directory"),
    ("a fake marker", lambda h: _fake_marker(h), True, "not created by dfp"),
    ("a marker that is a link", lambda h: _linked_marker(h), True, "not created by dfp"),
]


def _project(home: Path, name: str) -> Path:
    target = home / f"project-{name.strip('.')}"
    target.mkdir()
    if name == ".git":
        (target / name).mkdir()
    else:
        (target / name).write_text("[project]\n")
    (target / "main.py").write_text("print('the user's')\n")
    return target


def _link(home: Path) -> Path:
    real = home / "real-output"
    real.mkdir()
    link = home / "linked-output"
    link.symlink_to(real)
    return link


def _foreign(home: Path) -> Path:
    target = home / "data"
    target.mkdir()
    (target / "results.csv").write_text("a,b\n")
    return target


def _file(home: Path) -> Path:
    target = home / "a-file"
    target.write_text("the user's")
    return target


def _fake_marker(home: Path) -> Path:
    target = _foreign(home)
    (target / MARKER).write_text("something else entirely\n")
    return target


def _linked_marker(home: Path) -> Path:
    elsewhere = home / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "marker").write_text("dfp-harness output directory\n")
    target = _foreign(home)
    (target / MARKER).symlink_to(elsewhere / "marker")
    return target


@pytest.mark.parametrize(
    ("name", "make", "force", "reason"), REFUSALS, ids=[r[0] for r in REFUSALS]
)
def test_refused_targets_lose_nothing(sandbox: Path, name, make, force, reason) -> None:
    target = make(sandbox)
    before = _user_files(sandbox)
    with pytest.raises(OutputDirError) as caught:
        prepare_output_dir(target, force=force)
    assert reason in str(caught.value)
    assert str(target) in str(caught.value)  # the message names the path
    assert _user_files(sandbox) == before


def test_a_directory_dfp_created_is_replaced_with_force(sandbox: Path) -> None:
    out = sandbox / "runs" / "smoke"
    prepare_output_dir(out, force=False, kind="run")
    assert is_dfp_output(out)
    (out / "summary.json").write_text("{}")
    (out / "nested").mkdir()
    (out / "nested" / "x.parquet").write_bytes(b"PAR1")
    with pytest.raises(OutputDirError, match="--force"):
        prepare_output_dir(out, force=False)
    prepare_output_dir(out, force=True, kind="run")
    assert sorted(p.name for p in out.iterdir()) == [MARKER]
    assert (sandbox / "precious.txt").exists()


def test_replacing_never_follows_links_out_of_the_directory(sandbox: Path) -> None:
    out = sandbox / "out"
    prepare_output_dir(out, force=False)
    outside = sandbox / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("the user's")
    (out / "to-outside").symlink_to(outside, target_is_directory=True)
    prepare_output_dir(out, force=True)
    assert (outside / "keep.txt").read_text() == "the user's"
    assert not (out / "to-outside").exists()


def test_an_empty_directory_or_a_new_path_is_used(sandbox: Path) -> None:
    empty = sandbox / "empty"
    empty.mkdir()
    assert prepare_output_dir(empty, force=False) == empty
    assert is_dfp_output(empty)
    fresh = sandbox / "a" / "b"
    prepare_output_dir(fresh, force=True)
    assert is_dfp_output(fresh)


def test_a_path_that_cannot_be_created_is_a_clear_error(sandbox: Path) -> None:
    blocker = _file(sandbox)
    with pytest.raises(OutputDirError, match="cannot be created"):
        prepare_output_dir(blocker / "out", force=False)
    assert blocker.read_text() == "the user's"
