"""The CLI as a careless or hostile user meets it: nothing deleted, exit 2, messages as plain text.

Each command runs in a child process with a throwaway directory standing in for the user's home
(``HOME``) and the current directory.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deploy.outputs import MARKER
from tests.conftest import REPO

SMOKE = REPO / "scenarios" / "smoke.yaml"


def dfp(*args: str, cwd: Path, home: Path, limit_memory: bool = False,
        env: dict[str, str] | None = None):  # fmt: skip
    env = {**os.environ, "HOME": str(home), "PYTHONPATH": str(REPO), "COLUMNS": "200",
           **(env or {})}  # fmt: skip

    def cap_memory() -> None:  # the alias bomb must not be able to grow past 1 GiB
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    began = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "harness.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=cap_memory if limit_memory else None,
    )
    return result, time.monotonic() - began


@pytest.fixture
def user_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    (home / "thesis.tex").write_text("years of work")
    return home


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_force_into_home_is_refused_and_deletes_nothing(user_home: Path) -> None:
    result, _ = dfp(
        "simulate", str(SMOKE), "--out", str(user_home), "--force", cwd=user_home, home=user_home
    )
    assert result.returncode == 2, result.stderr
    assert "home directory" in _flat(result.stderr) and str(user_home) in _flat(result.stderr)
    assert (user_home / "thesis.tex").read_text() == "years of work"
    assert sorted(p.name for p in user_home.iterdir()) == ["thesis.tex"]


def test_force_into_the_current_directory_is_refused(tmp_path: Path, user_home: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "data.csv").write_text("a,b\n")
    result, _ = dfp("simulate", str(SMOKE), "--out", ".", "--force", cwd=work, home=user_home)
    assert result.returncode == 2
    assert "current directory" in _flat(result.stderr)
    assert sorted(p.name for p in work.iterdir()) == ["data.csv"]


def test_a_symlinked_out_is_refused_without_a_traceback(tmp_path: Path, user_home: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (real / "keep").write_text("x")
    link = tmp_path / "link"
    link.symlink_to(real)
    for force in ([], ["--force"]):
        result, _ = dfp("run", str(SMOKE), "--out", str(link), *force, cwd=tmp_path, home=user_home)
        assert result.returncode == 2
        assert "symbolic link" in _flat(result.stderr)
        assert "Traceback" not in result.stderr
    assert (real / "keep").read_text() == "x"


def test_a_second_force_run_into_dfps_own_directory_works(tmp_path: Path, user_home: Path) -> None:
    out = tmp_path / "sim"
    first, _ = dfp("simulate", str(SMOKE), "--out", str(out), cwd=tmp_path, home=user_home)
    assert first.returncode == 0, first.stderr
    assert (out / MARKER).is_file()
    manifest = json.loads((out / "manifest.json").read_text())
    (out / "stale.txt").write_text("left from before")
    again, _ = dfp(
        "simulate", str(SMOKE), "--out", str(out), "--force", cwd=tmp_path, home=user_home
    )
    assert again.returncode == 0, again.stderr
    assert not (out / "stale.txt").exists()
    assert json.loads((out / "manifest.json").read_text()) == manifest  # same seed, same bytes


BOMB = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
name: bomb
"""


def test_an_alias_bomb_is_refused_quickly_with_bounded_memory(
    tmp_path: Path, user_home: Path
) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(BOMB)
    result, seconds = dfp(
        "simulate", str(bomb), "--out", str(tmp_path / "o"), cwd=tmp_path, home=user_home,
        limit_memory=True,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr[-2000:]
    assert "anchors" in result.stderr and "not allowed" in result.stderr
    assert seconds < 30  # generous for a loaded machine; it takes about a second
    assert not (tmp_path / "o").exists()


def test_markup_in_a_scenario_is_shown_literally(tmp_path: Path, user_home: Path) -> None:
    bad = tmp_path / "bold.yaml"
    bad.write_text(SMOKE.read_text().replace("name: smoke", "name: '[/bold]'"))
    result, _ = dfp(
        "simulate", str(bad), "--out", str(tmp_path / "o"), cwd=tmp_path, home=user_home
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "MarkupError" not in result.stderr
    assert "'[/bold]'" in result.stderr
    assert "^[a-z0-9][a-z0-9_-]*$" in result.stderr  # the pattern's brackets are kept


def test_a_scenario_that_is_not_text_is_refused(tmp_path: Path, user_home: Path) -> None:
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage\x80")
    result, _ = dfp("simulate", str(binary), cwd=tmp_path, home=user_home)
    assert result.returncode == 2 and "not UTF-8" in result.stderr
    huge = tmp_path / "huge.yaml"
    huge.write_text("description: '" + "x" * 400_000 + "'\n")
    result, _ = dfp("simulate", str(huge), cwd=tmp_path, home=user_home)
    assert result.returncode == 2 and "a scenario is at most" in result.stderr


def test_a_fault_drill_this_world_cannot_inject_is_refused_before_anything_starts(
    tmp_path: Path, user_home: Path
) -> None:
    out = tmp_path / "never"
    result, _ = dfp("run", "throttled", "--out", str(out), cwd=tmp_path, home=user_home,
                    env={"AWS_ENDPOINT_URL": "http://127.0.0.1:9"})  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "faults.kinesis" in _flat(result.stderr) and "--world moto" in _flat(result.stderr)
    assert not out.exists()


def test_a_scenario_and_all_together_are_refused(tmp_path: Path, user_home: Path) -> None:
    result, _ = dfp("run", "bad-records", "--all", cwd=tmp_path, home=user_home)
    assert result.returncode == 2 and "or --all, not both" in _flat(result.stderr)
    assert not (tmp_path / "runs").exists()


def test_a_bundle_that_is_a_file_or_unreadable_is_refused_without_a_traceback(
    tmp_path: Path, user_home: Path
) -> None:
    """``dfp validate`` of a file (a traceback of ``NotADirectoryError`` before) or of a folder
    whose manifest is a folder: exit 2 naming the path."""
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a bundle")
    odd = tmp_path / "odd"
    (odd / "manifest.json").mkdir(parents=True)
    for bundle, said in ((a_file, "no manifest"), (odd, "cannot be read")):
        result, _ = dfp("validate", str(bundle), cwd=tmp_path, home=user_home)
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr and said in _flat(result.stderr)
        assert str(bundle) in _flat(result.stderr)


def test_serve_refuses_a_port_that_is_no_port_before_starting_anything(
    tmp_path: Path, user_home: Path
) -> None:
    """``dfp serve RUN --port 99999`` showed a traceback (the server's bind failed, then its
    close); it is refused first, naming the option."""
    result, _ = dfp("serve", str(tmp_path), "--port", "99999", cwd=tmp_path, home=user_home)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--port 99999: not a port number" in _flat(result.stderr)
