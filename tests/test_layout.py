"""Project-wide rules: the dependency rule, the runtime table, lint, and the set-up script."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from pipeline.runtimes import RUNTIMES
from tests.conftest import REPO

FORBIDDEN_FOR_PIPELINE = {"simulator", "emulation", "harness", "deploy", "tests"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def _offenders(package: str, forbidden: set[str]) -> dict[str, list[str]]:
    """Files of ``package`` importing any of ``forbidden``, with what they import."""
    found = {}
    for path in (REPO / package).rglob("*.py"):
        if bad := _imports(path) & forbidden:
            found[str(path.relative_to(REPO))] = sorted(bad)
    return found


def test_pipeline_imports_only_itself_and_libraries() -> None:
    assert _offenders("pipeline", FORBIDDEN_FOR_PIPELINE) == {}


def test_emulation_does_not_import_harness_simulator_or_deploy() -> None:
    assert _offenders("emulation", {"harness", "simulator", "deploy"}) == {}


def test_deploy_imports_only_the_pipeline() -> None:
    """`deploy → pipeline` only: the CDK app and promotion never depend on the test side."""
    assert _offenders("deploy", {"harness", "simulator", "emulation"}) == {}


def _modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_simulator_is_pure() -> None:
    """No AWS, no harness; from the pipeline only the shared contracts."""
    for path in (REPO / "simulator").rglob("*.py"):
        assert not _imports(path) & {"boto3", "botocore", "emulation", "harness", "deploy"}, path
        pipeline = {m for m in _modules(path) if m.split(".")[0] == "pipeline"}
        assert all(m.startswith("pipeline.contracts") for m in pipeline), (path, pipeline)


def test_package_pins_follow_the_runtime_table() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = {d.split("==")[0].split("[")[0]: d for d in project["dependencies"]}
    for runtime in RUNTIMES.values():
        if runtime.local_package and runtime.local_version:
            assert (
                pins[runtime.local_package] == f"{runtime.local_package}=={runtime.local_version}"
            )
    locked = dict(
        line.split("==", 1)
        for line in (REPO / "constraints.txt").read_text().splitlines()
        if "==" in line
    )
    for runtime in RUNTIMES.values():
        if runtime.local_package and runtime.local_version:
            assert locked[runtime.local_package] == runtime.local_version


def test_ruff_is_clean() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "."],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    formatted = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", "--no-cache", "."],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert formatted.returncode == 0, formatted.stdout + formatted.stderr


def test_ci_runs_the_readme_test_command() -> None:
    """The README opens (under its title) with the marked block of exactly the two commands."""
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    marker = "<!-- setup-commands"
    assert marker in readme.split("\n## ", 1)[0], "the commands block must come before any section"
    block = readme.split(marker, 1)[1].split("```")[1]
    commands = [line.strip() for line in block.splitlines() if line.strip()]
    assert len(commands) == 2, commands
    run_command, test_command = commands
    assert run_command == "./bootstrap.sh run"
    assert test_command in ci


@pytest.mark.parametrize("missing", ["java", "mvn", "node"])
def test_setup_names_a_missing_prerequisite(tmp_path: Path, missing: str) -> None:
    """With one tool absent from PATH, set-up stops at once and says how to install it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in (
        "bash",
        "sed",
        "head",
        "cat",
        "sha256sum",
        "cut",
        "dirname",
        "java",
        "mvn",
        "node",
    ):
        if tool != missing and (found := shutil.which(tool)):
            (bin_dir / tool).symlink_to(found)
    (bin_dir / "python3.11").symlink_to(sys.executable)
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path)}
    result = subprocess.run(
        [str(bin_dir / "bash"), str(REPO / "bootstrap.sh"), "setup"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    names = {"java": "Java 17", "mvn": "Maven", "node": "Node.js"}
    assert f"{names[missing]} not found" in result.stderr
    assert "install" in result.stderr.lower()
    assert not (tmp_path / ".venv").exists()


def test_setup_rejects_wrong_python(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "sed", "head", "cat"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    fake = bin_dir / "python3"
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path)}
    result = subprocess.run(
        [str(bin_dir / "bash"), str(REPO / "bootstrap.sh"), "setup"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "Python 3.11" in result.stderr


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _runtime_imports(path: Path, module: str, known: set[str]) -> set[str]:
    """Project modules ``path`` imports when it runs (function-level included; imports under
    ``if TYPE_CHECKING:`` left out, since they never execute)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    typing_only = {
        id(child)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for child in ast.walk(node)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor if path.name == "__init__.py" else anchor[:-1]
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            # ``from pkg import sub`` depends on the submodule, not on pkg's __init__.
            names = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                for alias in node.names
            ]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


def _import_cycles(package: str) -> list[list[str]]:
    files = {_module_name(p): p for p in (REPO / package).rglob("*.py")}
    graph = {m: _runtime_imports(p, m, set(files)) for m, p in files.items()}
    # Tarjan's strongly connected components: any with two or more modules is a cycle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


@pytest.mark.parametrize("package", ["simulator", "pipeline", "emulation", "harness", "deploy"])
def test_no_import_cycle_inside_a_package(package: str) -> None:
    assert _import_cycles(package) == []


def test_the_cycle_check_finds_a_cycle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "loop"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from loop import b\n")
    (package / "b.py").write_text("def f():\n    from loop.a import x\n")
    (package / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import loop.a\n"
    )
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    assert _import_cycles("loop") == [["loop.a", "loop.b"]]
