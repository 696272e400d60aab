"""The deployable artifacts, built reproducibly, and the manifest that names them by hash.

What runs locally is what is deployed: every artifact is built from the ``pipeline`` package and
the stack description alone, so the same sources give the same bytes (zip entries sorted, fixed
timestamps and permissions, no ``__pycache__``), and the manifest lists each artifact's sha256.
The CDK app takes its assets from a bundle and names them by those hashes; ``dfp validate`` runs
the scenarios on the bundle's own copy of the code; ``dfp deploy promote`` refuses a bundle whose
bytes no longer match its manifest or that has no passing validation report.

Layout of a bundle directory::

    manifest.json                      format, source digest, artifacts {path: sha256, bytes, kind}
    stack.yaml                         the stack description
    pipeline.zip                       the pipeline package (Glue --extra-py-files, Flink pyFiles)
    glue/<script>                      each Glue job's script, as in pipeline/
    states/<definition>                each state machine's definition, unchanged
    flink/<application>.zip            Managed Flink code: entry file, lib/pipeline.zip, lib/<jar>
    lambda/api.zip                     the forecast API function (the pipeline package)

The Managed Flink application needs one jar holding the Kinesis connector
(``pipeline/anomaly/pom.xml``). Set-up builds it when Maven can fetch the connector; when it
cannot, the bundle is still built for validation and synthesis, but is marked *incomplete* with
the reason, and promotion refuses it.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pipeline
from deploy.outputs import MARKER, OutputDirError, prepare_output_dir
from deploy.stack import STACK_FILE, Stack, load_stack

logger = logging.getLogger(__name__)

FORMAT = 1
MANIFEST_FILE = "manifest.json"
PIPELINE_ZIP = "pipeline.zip"
API_ZIP = "lambda/api.zip"
FLINK_JAR = "dfp-anomaly-deps.jar"
FLINK_LIB = "lib"
# Where set-up leaves the Managed Flink dependency jar built from pipeline/anomaly/pom.xml.
DEFAULT_FLINK_JAR = Path(__file__).resolve().parent.parent / ".dfp" / "jars" / FLINK_JAR
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry
_SOURCE_SUFFIXES = {".py", ".json"}


class BundleError(Exception):
    """A bundle cannot be built or read, or does not match its manifest (names the file)."""


@dataclass(frozen=True)
class Artifact:
    path: str
    kind: str
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------------------- sources
def pipeline_root() -> Path:
    """The ``pipeline`` package directory in use (a bundle's copy under ``dfp validate``)."""
    return Path(pipeline.__file__).resolve().parent


def pipeline_sources(root: Path | None = None) -> list[tuple[str, Path]]:
    """``(path inside the package, file)`` for every source file of the pipeline package, sorted.

    Only ``.py`` and ``.json`` files are code; caches and build output are never shipped.
    """
    root = root or pipeline_root()
    files = []
    for file in root.rglob("*"):
        relative = file.relative_to(root)
        if (
            file.is_file()
            and file.suffix in _SOURCE_SUFFIXES
            and not any(part.startswith((".", "__pycache__")) for part in relative.parts)
        ):
            files.append((relative.as_posix(), file))
    return sorted(files)


def pipeline_digest(root: Path | None = None) -> str:
    """One hash over the pipeline package's sources (paths and contents).

    A run records it, so a validation can prove the run used exactly the bundle's code.
    """
    lines = [
        f"{name}\0{hashlib.sha256(file.read_bytes()).hexdigest()}\n"
        for name, file in pipeline_sources(root)
    ]
    return sha256_bytes("".join(lines).encode())


def deterministic_zip(entries: list[tuple[str, bytes]]) -> bytes:
    """A zip of ``entries`` whose bytes depend only on names and contents."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o100644 << 16
            info.create_system = 3  # unix, whatever builds it
            archive.writestr(info, data, compresslevel=9)
    return buffer.getvalue()


def _package_entries(root: Path | None = None) -> list[tuple[str, bytes]]:
    return [(f"pipeline/{name}", file.read_bytes()) for name, file in pipeline_sources(root)]


# ------------------------------------------------------------------------------------ build
def flink_run_options(app_key: str, stack: Stack) -> dict[str, str]:
    """The ``kinesis.analytics.flink.run.options`` group: where things are inside the zip."""
    return {
        "python": f"pipeline/{stack.applications[app_key].entry}",
        "jarfile": f"{FLINK_LIB}/{FLINK_JAR}",
        "pyFiles": f"{FLINK_LIB}/{PIPELINE_ZIP}",
    }


def artifacts(stack: Stack, stack_text: bytes, flink_jar: bytes | None) -> list[Artifact]:
    """Every deployable artifact of ``stack`` built from the pipeline package in use."""
    package = deterministic_zip(_package_entries())
    built = [
        Artifact("stack.yaml", "stack-description", stack_text),
        Artifact(PIPELINE_ZIP, "python-library", package),
    ]
    for job in sorted(stack.glue.jobs.values(), key=lambda j: j.script):
        built.append(Artifact(f"glue/{job.script}", "glue-script", job.script_path().read_bytes()))
    for machine in sorted(stack.state_machines.values(), key=lambda m: m.definition):
        built.append(
            Artifact(
                f"states/{machine.definition}",
                "state-machine-definition",
                machine.definition_path().read_bytes(),
            )
        )
    for key, app in sorted(stack.applications.items()):
        entries = [
            (f"pipeline/{app.entry}", app.entry_path().read_bytes()),
            (f"{FLINK_LIB}/{PIPELINE_ZIP}", package),
        ]
        if flink_jar is not None:
            entries.append((f"{FLINK_LIB}/{FLINK_JAR}", flink_jar))
        built.append(Artifact(f"flink/{key}.zip", "flink-application", deterministic_zip(entries)))
    if stack.api is not None:
        built.append(Artifact(API_ZIP, "lambda-function", package))
    paths = [a.path for a in built]
    assert len(paths) == len(set(paths)), f"two artifacts share a path: {paths}"
    return built


def build_bundle(
    out: Path,
    *,
    stack_file: Path | None = None,
    flink_jar: Path | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Build every artifact into ``out`` and write the manifest; returns the manifest.

    ``flink_jar``: the Managed Flink dependency jar (default: the one set-up built). Without it
    the bundle is written but marked incomplete.
    """
    stack_file = stack_file or STACK_FILE
    stack = load_stack(stack_file)
    incomplete: list[dict[str, str]] = []
    jar_path = flink_jar or DEFAULT_FLINK_JAR
    jar: bytes | None = None
    if jar_path.is_file():
        jar = jar_path.read_bytes()
    elif flink_jar is not None:
        raise BundleError(f"{flink_jar}: no such jar (--flink-jar)")
    elif stack.applications:
        incomplete.append({
            "artifact": f"flink/{sorted(stack.applications)[0]}.zip",
            "reason": (
                f"no Managed Flink dependency jar at .dfp/jars/{FLINK_JAR}: it holds AWS's "
                "Kinesis connector "
                "(pipeline/anomaly/pom.xml), which set-up could not fetch; build it where Maven "
                "can fetch it and pass --flink-jar"
            ),
        })  # fmt: skip
    built = artifacts(stack, stack_file.read_bytes(), jar)

    out = Path(out)
    try:
        prepare_output_dir(out, force=force, kind="bundle")
    except OutputDirError as exc:
        raise BundleError(str(exc)) from None
    for artifact in built:
        target = out / artifact.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(artifact.data)
    manifest = {
        "format": FORMAT,
        "prefix": stack.prefix,
        "source": {"pipeline_digest": pipeline_digest()},
        "artifacts": {
            a.path: {"kind": a.kind, "sha256": a.sha256, "bytes": len(a.data)} for a in built
        },
        "incomplete": incomplete,
    }
    (out / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    logger.info("bundle %s: %d artifacts, manifest %s", out, len(built), manifest_sha256(out))
    return manifest


# ------------------------------------------------------------------------------------- read
def read_manifest(bundle: Path) -> dict[str, Any]:
    path = Path(bundle) / MANIFEST_FILE
    try:
        manifest = json.loads(path.read_text())
    except (FileNotFoundError, NotADirectoryError):
        raise BundleError(f"{path}: no manifest; is {bundle} a bundle (dfp bundle)?") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{path}: not JSON: {exc}") from None
    except OSError as exc:  # a folder named like the manifest, no permission to read it…
        raise BundleError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else manifest
        raise BundleError(f"{path}: format {found!r} is not {FORMAT}")
    if not isinstance(manifest.get("artifacts"), dict):
        raise BundleError(f"{path}: field 'artifacts' is missing or not an object")
    return manifest


def manifest_sha256(bundle: Path) -> str:
    """The bundle's identity: the hash of its manifest (which holds every artifact's hash)."""
    path = Path(bundle) / MANIFEST_FILE
    if not path.is_file():
        raise BundleError(f"{path}: no manifest; is {bundle} a bundle (dfp bundle)?")
    return sha256_bytes(path.read_bytes())


def verify_bundle(bundle: Path) -> list[str]:
    """Every way the bundle's files differ from its manifest (empty when they match)."""
    bundle = Path(bundle)
    manifest = read_manifest(bundle)
    problems = []
    for path, entry in sorted(manifest["artifacts"].items()):
        file = bundle / path
        if not file.is_file():
            problems.append(f"{file}: missing (the manifest lists it)")
            continue
        digest = hashlib.sha256(file.read_bytes()).hexdigest()
        if digest != entry.get("sha256"):
            problems.append(
                f"{file}: sha256 {digest} differs from the manifest's {entry.get('sha256')}"
            )
    listed = set(manifest["artifacts"]) | {MANIFEST_FILE, MARKER}
    for file in sorted(bundle.rglob("*")):
        if file.is_file() and file.relative_to(bundle).as_posix() not in listed:
            problems.append(f"{file}: not in the manifest")
    return problems


def extract_pipeline(bundle: Path, dest: Path) -> Path:
    """Unpack the bundle's pipeline package into ``dest`` (which then holds ``pipeline/``).

    Checks first that the bundle matches its manifest and that every separately shipped copy of a
    file (Glue scripts, state machine definitions) is byte-identical to the package's, so that
    running the package is running those artifacts.
    """
    bundle = Path(bundle)
    problems = verify_bundle(bundle)
    if problems:
        raise BundleError("the bundle does not match its manifest: " + "; ".join(problems))
    with zipfile.ZipFile(bundle / PIPELINE_ZIP) as archive:
        archive.extractall(dest)
    package = Path(dest) / "pipeline"
    for path in read_manifest(bundle)["artifacts"]:
        for prefix in ("glue/", "states/"):
            if path.startswith(prefix):
                inner = package / path.removeprefix(prefix)
                if not inner.is_file() or inner.read_bytes() != (bundle / path).read_bytes():
                    raise BundleError(f"{bundle / path}: differs from {PIPELINE_ZIP}'s copy")
    return package
