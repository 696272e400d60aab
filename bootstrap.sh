#!/usr/bin/env bash
# Set up everything dfp-harness needs on a fresh machine, then run the main job or the tests.
#
#   ./bootstrap.sh run  [SCENARIO] [dfp run options]   set up, then `dfp run` (default: smoke)
#   ./bootstrap.sh test [pytest options]               set up, then the whole test suite
#   ./bootstrap.sh setup                               set up only
#
# Idempotent: the environment lives in .venv/ and is reinstalled only when pyproject.toml or
# constraints.txt change (their hash is stamped into the venv).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
STAMP="$VENV/.dfp-setup-stamp"
UV_VERSION="0.13.8"  # installs the pinned set; pip is the fallback

die() { printf 'bootstrap: %s\n' "$*" >&2; exit 1; }
say() { printf 'bootstrap: %s\n' "$*" >&2; }

# --- prerequisites -------------------------------------------------------------------------
# first_python LOW HIGH CANDIDATE…: the first candidate that is a Python from LOW to HIGH, e.g.
# "(3, 11)" "(3, 12)"; empty candidates and unmatched globs are passed over.
first_python() {
    local low="$1" high="$2" candidate
    shift 2
    for candidate in "$@"; do
        [[ -n "$candidate" ]] || continue
        if command -v "$candidate" >/dev/null 2>&1 &&
           "$candidate" -c "import sys; sys.exit(0 if $low <= sys.version_info[:2] <= $high else 1)" 2>/dev/null; then
            command -v "$candidate"; return 0
        fi
    done
    return 1
}

find_python() { first_python "(3, 11)" "(3, 12)" "${DFP_PYTHON:-}" python3.11 python3.12 python3; }

check_prerequisites() {
    PYTHON="$(find_python)" || die "Python 3.11 (or 3.12) not found. Install it (Debian: apt-get install python3.11 python3.11-venv; or pyenv install 3.11) or point DFP_PYTHON at one."
    command -v java >/dev/null 2>&1 || die "Java 17 not found (needed by Flink and Spark). Install it: apt-get install openjdk-17-jdk-headless"
    local java_major
    java_major="$(java -version 2>&1 | sed -nE 's/.*version "([0-9]+).*/\1/p' | head -1)"
    [[ "$java_major" == "17" ]] || die "Java 17 is required (Flink 2.2 and Glue 5.1 run on it); found major version '${java_major:-unknown}'. Install openjdk-17-jdk-headless and put it first on PATH."
    command -v mvn >/dev/null 2>&1 || die "Maven not found (builds the Flink connector jar and fetches the hadoop-aws jars). Install it: apt-get install maven"
    command -v node >/dev/null 2>&1 || die "Node.js not found (the AWS CDK CLI runs on it). Install Node 20: apt-get install nodejs npm, or from nodejs.org"
    local node_major
    node_major="$(node --version | sed -nE 's/^v([0-9]+).*/\1/p')"
    (( node_major >= 18 )) || die "Node.js 18 or newer is required by the AWS CDK CLI; found $(node --version)."
}

# --- python environment --------------------------------------------------------------------
ensure_pip() {
    "$VENV/bin/python" -m pip --version >/dev/null 2>&1 ||
        "$VENV/bin/python" -m ensurepip --upgrade >/dev/null 2>&1
}

# uv into the environment: by the base interpreter's pip (pip >= 22.3 installs into another
# interpreter with --python), else by the environment's own pip, added first if missing.
install_uv() {
    "$VENV/bin/uv" --version 2>/dev/null | grep -qF "$UV_VERSION" && return 0
    "$PYTHON" -m pip --python "$VENV/bin/python" install --quiet --disable-pip-version-check \
        "uv==$UV_VERSION" >/dev/null 2>&1 && return 0
    ensure_pip && "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        "uv==$UV_VERSION"
}

setup_venv() {
    local want have=""
    want="$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)"
    [[ -f "$STAMP" ]] && have="$(cat "$STAMP")"
    if [[ -x "$VENV/bin/python" && "$want" == "$have" ]]; then
        say "environment up to date (.venv)"
        return 0
    fi
    if [[ ! -x "$VENV/bin/python" ]]; then
        say "creating .venv with $PYTHON"
        # Without pip: seeding it costs 6 s, and uv installs everything (pip only on fallback)
        "$PYTHON" -m venv --without-pip "$VENV" || die "could not create .venv (Debian: apt-get install python3.11-venv)"
    fi
    say "installing dependencies (pinned by constraints.txt)"
    # uv resolves and installs the same pinned set in about a third of pip's time (measured on a
    # fresh clone: 53 s with an empty cache against 125 s for pip with a warm one). pip stays the
    # fallback, so a machine where uv cannot install still sets up.
    local links=()
    [[ -n "${PIP_FIND_LINKS:-}" ]] && links=(--find-links "$PIP_FIND_LINKS")
    #
    # Offline first: where uv's cache already holds every pinned distribution (a machine that has
    # set up before), the install needs no index request and no build: 3 s against 40-65 s online
    # for the same set (measured on a fresh clone; uv revalidates every index page and rebuilds
    # pyspark's source distribution). Anything missing fails the offline attempt before it
    # installs anything, and the online install follows.
    local install=("$VENV/bin/uv" pip install --quiet --python "$VENV/bin/python" "${links[@]}"
                   -c constraints.txt -e ".[dev]")
    if install_uv && { "${install[@]}" --offline 2>/dev/null || "${install[@]}"; }; then
        warm_bytecode
    else
        say "uv could not install the dependencies; falling back to pip (a few minutes)"
        ensure_pip || die "the environment has no pip and ensurepip could not add it"
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade "pip>=24" \
            || die "pip upgrade failed"
        "$VENV/bin/python" -m pip install --quiet \
            --disable-pip-version-check -c constraints.txt -e ".[dev]" \
            || die "dependency installation failed (see pip's message above)"
    fi
    echo "$want" > "$STAMP"
    say "environment ready"
}

# Bytecode of what runs and tests import, written once here. Where PYTHONDONTWRITEBYTECODE is set
# (as on CI images) every worker, child and CLI call would otherwise compile the same modules again
# (~9 s per process). Importing compiles only the ~8,800 files in use; uv's --compile-bytecode
# compiles all ~19,000 installed ones (measured on a fresh clone: this 20 s on two cores, against
# 83 s for the install with --compile-bytecode). The list includes what a test session would
# otherwise compile on first import (the Step Functions parser, cfn-lint, holidays, plotly's
# figure classes, the AWS CLI, Playwright, PyFlink's Python worker): 5 s here, 50 s less there.
warm_bytecode() {
    say "compiling the bytecode of the modules in use"
    local script='
import importlib, pkgutil, sys, warnings
warnings.simplefilter("ignore")
def load(name):
    try:
        return importlib.import_module(name)
    except BaseException:  # an entry script or an optional extra: its imports are what count
        return None
for name in sys.argv[1:]:
    if name == "moto":  # its backends import lazily, each service when first called
        import moto.backends
        for service in moto.backends.list_of_moto_modules():
            try:
                moto.backends.get_backend(service)
            except BaseException:
                pass
        continue
    module = load(name)
    for info in pkgutil.walk_packages(getattr(module, "__path__", []), name + ".", lambda _: None):
        if "__main__" not in info.name:
            load(info.name)
'
    (
        export PYTHONDONTWRITEBYTECODE=
        # Three processes of about equal work (measured: 20 s on two cores, 30 s as two)
        "$VENV/bin/python" -c "$script" moto deploy moto.stepfunctions cfnlint lightgbm.sklearn \
            mlforecast.forecast mlforecast.lag_transforms mlforecast.target_transforms &
        "$VENV/bin/python" -c "$script" statsforecast awswrangler pyspark.sql hypothesis holidays \
            awscli &
        "$VENV/bin/python" -c "$script" harness emulation pipeline simulator benchmarks \
            pyflink.table pyflink.datastream pyflink.fn_execution nbclient ipykernel pytest xdist \
            plotly.graph_objects plotly.graph_objs playwright duckdb sqlglot &
        wait
    ) >/dev/null 2>&1 || true
}

# Maven, quiet and in batch mode. Maven 3.8's -q still writes colour resets (ESC[0m) that a log
# shows as "[0m"; they are taken out, and everything else (its errors) passes through. Its exit
# status stays the function's (pipefail).
maven() { mvn -q -B "$@" 2>&1 | sed -u $'s/\x1b\\[[0-9;]*m//g'; }

# --- jars from Maven (hadoop-aws for s3:// in local Spark) -----------------------------------
setup_jars() {
    local dir="$ROOT/.dfp/jars"
    if [[ -f "$dir/hadoop-aws-3.3.4.jar" && -f "$dir/aws-java-sdk-bundle-1.12.262.jar" ]]; then
        return 0
    fi
    say "fetching the local Spark S3 jars with Maven (emulation/glue/jars/pom.xml)"
    maven -f emulation/glue/jars/pom.xml dependency:copy-dependencies -DoutputDirectory="$dir" \
        || die "Maven could not fetch hadoop-aws / aws-java-sdk-bundle (see its message above)"
}

# --- a jar built from sources in the repository, rebuilt only when its sources change ----------
# build_jar SRC ARTIFACT JAR WHAT: Maven-package SRC/pom.xml, copy SRC/target/ARTIFACT to
# .dfp/jars/JAR, stamped by the hash of the pom and SRC/src.
build_jar() {
    local src="$1" artifact="$2" jar="$ROOT/.dfp/jars/$3" what="$4" want have=""
    want="$(find "$src/pom.xml" "$src/src" -type f | sort | xargs cat | sha256sum | cut -d' ' -f1)"
    [[ -f "$jar.stamp" ]] && have="$(cat "$jar.stamp")"
    if [[ -f "$jar" && "$want" == "$have" ]]; then
        return 0
    fi
    say "building $what with Maven ($src)"
    maven -f "$src/pom.xml" package \
        || die "Maven could not build $what (see its message above)"
    mkdir -p "$(dirname "$jar")"
    cp "$src/target/$artifact" "$jar"
    echo "$want" > "$jar.stamp"
}

# --- the local Kinesis table connector for Flink ----------------------------------------------
setup_connector() {
    build_jar emulation/kinesisanalyticsv2/connector local-kinesis-connector-1.0.0.jar \
        local-kinesis-connector-1.0.0.jar "the local Kinesis connector for Flink"
}

# --- the anomaly job's detection (pipeline/anomaly/detection) ----------------------------------
setup_detection() {
    build_jar pipeline/anomaly/detection dfp-anomaly-detection.jar dfp-anomaly-detection.jar \
        "the anomaly job's detection"
}

# --- the AWS CDK CLI (npm, pinned by deploy/package-lock.json) for dfp deploy -------------------
setup_cdk() {
    local dir="$ROOT/.dfp/cdk" want have=""
    want="$(cat deploy/package.json deploy/package-lock.json | sha256sum | cut -d' ' -f1)"
    [[ -f "$dir/.stamp" ]] && have="$(cat "$dir/.stamp")"
    if [[ -x "$dir/node_modules/.bin/cdk" && "$want" == "$have" ]]; then
        return 0
    fi
    say "installing the AWS CDK CLI with npm (deploy/package.json)"
    mkdir -p "$dir"
    cp deploy/package.json deploy/package-lock.json "$dir/"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) \
        || die "npm could not install the AWS CDK CLI (see its message above)"
    echo "$want" > "$dir/.stamp"
}

# --- the Managed Flink application's dependency jar (pipeline/anomaly/pom.xml) ----------------
# It holds AWS's Kinesis connector for Flink 2.x and the job's detection. When Maven cannot fetch
# that connector, set-up goes on: bundles are then marked incomplete and `dfp deploy promote`
# refuses them. The failed attempt is remembered per pom and sources so that set-up does not retry
# on every run (DFP_RETRY_JARS=1 does).
setup_flink_app_jar() {
    local dir="$ROOT/.dfp/jars" pom="pipeline/anomaly/pom.xml"
    local jar="$dir/dfp-anomaly-deps.jar" want have=""
    # The pom and the detection's sources it compiles in.
    want="$(find "$pom" pipeline/anomaly/detection/src -type f | sort | xargs cat | sha256sum | cut -d' ' -f1)"
    [[ -f "$jar" && -f "$jar.stamp" && "$(cat "$jar.stamp")" == "$want" ]] && return 0
    [[ -f "$jar.failed" ]] && have="$(cat "$jar.failed")"
    if [[ "$want" == "$have" && -z "${DFP_RETRY_JARS:-}" ]]; then
        say "note: the Managed Flink dependency jar could not be built earlier (see .dfp/jars/dfp-anomaly-deps.log); bundles are marked incomplete"
        return 0
    fi
    say "building the Managed Flink dependency jar with Maven ($pom)"
    mkdir -p "$dir"
    if maven -f "$pom" package >"$dir/dfp-anomaly-deps.log"; then
        cp pipeline/anomaly/target/dfp-anomaly-deps.jar "$jar"
        echo "$want" > "$jar.stamp"
        rm -f "$jar.failed"
    else
        echo "$want" > "$jar.failed"
        say "note: Maven could not build $pom ($(grep -m1 -oE '[^ ]+:jar:[^ ]+ was not found|Could not find artifact [^ ]+' "$dir/dfp-anomaly-deps.log" || echo 'see .dfp/jars/dfp-anomaly-deps.log')); bundles are marked incomplete"
    fi
}

# --- loopback-only listening for the run's processes (emulation/loopback/bind.c) -------------
# An LD_PRELOAD library turning wildcard binds into loopback binds (Flink's local mini-cluster
# and Beam's gRPC servers bind every interface in code). Needs a C compiler; without one set-up
# goes on and says so.
setup_loopback() {
    local src="emulation/loopback/bind.c" lib="$ROOT/.dfp/lib/loopback-bind.so" want
    want="$(sha256sum "$src" | cut -d' ' -f1)"
    [[ -f "$lib" && -f "$lib.stamp" && "$(cat "$lib.stamp")" == "$want" ]] && return 0
    local cc="${CC:-cc}"
    if ! command -v "$cc" >/dev/null 2>&1; then
        say "note: no C compiler ($cc; Debian: apt-get install gcc): a run's Flink job will listen on every interface, and the LocalStack test is skipped"
        return 0
    fi
    mkdir -p "$(dirname "$lib")"
    if "$cc" -shared -fPIC -O2 -o "$lib.tmp" "$src" -ldl; then
        mv "$lib.tmp" "$lib"
        echo "$want" > "$lib.stamp"
    else
        say "note: $src did not compile (see above): a run's Flink job will listen on every interface"
    fi
}

# --- LocalStack 4.14.0 for `dfp run --world localstack` (host mode needs Python 3.13) -----------
# Optional: without a Python 3.13 set-up goes on and says so; `--world localstack` then fails
# naming what is missing. LocalStack gets its own environment (.dfp/localstack/venv, pinned by
# emulation/localstack/requirements.txt) and, ahead of any run, its Kinesis helper from npm
# (.dfp/localstack/fs/usr/lib/localstack): a run never downloads anything.
find_python313() {
    first_python "(3, 13)" "(3, 13)" "${DFP_PYTHON313:-}" python3.13 \
        "$(pyenv root 2>/dev/null)"/versions/3.13*/bin/python3.13 "$HOME"/.pyenv/versions/3.13*/bin/python3.13
}

setup_localstack() {
    local dir="$ROOT/.dfp/localstack" lock="emulation/localstack/requirements.txt" want have="" py313
    want="$(sha256sum "$lock" | cut -d' ' -f1)"
    [[ -f "$dir/.stamp" ]] && have="$(cat "$dir/.stamp")"
    if [[ "$want" == "$have" && -x "$dir/venv/bin/python" && -d "$dir/fs/usr/lib/localstack/kinesis-local" ]]; then
        return 0
    fi
    if ! py313="$(find_python313)"; then
        say "note: no Python 3.13 found (pyenv install 3.13, or DFP_PYTHON313=/path/to/python3.13): LocalStack is not installed, so dfp run --world localstack and its test are unavailable"
        return 0
    fi
    say "installing LocalStack 4.14.0 for --world localstack with $py313 ($lock)"
    rm -f "$dir/.stamp"
    [[ -x "$dir/venv/bin/python" ]] || "$py313" -m venv --without-pip "$dir/venv" \
        || { say "note: could not create $dir/venv; --world localstack is unavailable"; return 0; }
    local install=("$VENV/bin/uv" pip install --quiet --python "$dir/venv/bin/python" -r "$lock")
    if ! { "${install[@]}" --offline 2>/dev/null || "${install[@]}"; }; then
        say "note: LocalStack could not be installed (see the message above); --world localstack is unavailable"
        return 0
    fi
    # Its Kinesis helper (npm's kinesis-local), installed by LocalStack's own installer as a
    # static library of this folder; OVERRIDE_IN_DOCKER=0, or in a container it would use /usr/lib.
    # npm keeps the user's configuration (registry, certificates); LocalStack's caches go here.
    if ! OVERRIDE_IN_DOCKER=0 LOCALSTACK_TELEMETRY=0 FILESYSTEM_ROOT="$dir/fs" \
            XDG_CACHE_HOME="$dir/cache" "$dir/venv/bin/python" -c '
from localstack.packages import InstallTarget
from localstack.services.kinesis.packages import kinesismock_package
kinesismock_package.install(target=InstallTarget.STATIC_LIBS)' >"$dir/install.log" 2>&1; then
        say "note: LocalStack's Kinesis helper could not be installed (see $dir/install.log); --world localstack is unavailable"
        return 0
    fi
    echo "$want" > "$dir/.stamp"
}

# --- Chromium for the browser tests (Debian's chromium; Playwright drives it) -----------------
setup_browser() {
    if command -v chromium >/dev/null 2>&1; then
        return 0
    fi
    if [[ "$(id -u)" == "0" ]] && command -v apt-get >/dev/null 2>&1; then
        say "installing Debian's chromium for the browser tests"
        if DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 ||
           { apt-get update -q >/dev/null 2>&1 &&
             DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1; }; then
            return 0
        fi
    fi
    say "chromium is not installed (apt-get install chromium): the two browser tests will be skipped"
}

main() {
    local command="${1:-}"
    [[ -n "$command" ]] && shift
    case "$command" in
        run|test|setup) ;;
        *) die "usage: ./bootstrap.sh run [SCENARIO] [options] | test [pytest options] | setup" ;;
    esac
    check_prerequisites
    # The Java and Node parts do not need the Python environment: they build beside it. Each
    # part stops with its own message; a failed one stops set-up here.
    ( setup_jars && setup_connector && setup_detection && setup_flink_app_jar ) & local java_part=$!
    setup_cdk & local node_part=$!
    setup_loopback
    local venv_ok=0 java_ok=0 node_ok=0
    setup_venv || venv_ok=$?
    # LocalStack's own environment uses the venv's uv; it installs while Maven and npm finish.
    (( venv_ok == 0 )) && setup_localstack
    wait "$java_part" || java_ok=$?
    wait "$node_part" || node_ok=$?
    (( venv_ok == 0 && java_ok == 0 && node_ok == 0 )) || die "set-up failed (see the message above)"
    [[ "$command" == "run" ]] || setup_browser
    export PATH="$VENV/bin:$PATH"
    # Bytecode caches are written (under .venv and the checkout, both git-ignored) even where
    # PYTHONDONTWRITEBYTECODE is set: a run's and a test session's processes import the same
    # modules, and the first to compile one that set-up did not warm saves the others the work.
    export PYTHONDONTWRITEBYTECODE=
    case "$command" in
        run)
            local scenario="smoke"
            if [[ $# -gt 0 && "$1" != -* ]]; then scenario="$1"; shift; fi
            exec "$VENV/bin/dfp" run "$scenario" --out "runs/$scenario" --force "$@" ;;
        test)
            # Two workers: the tests mostly wait (JVMs, child runs), so two share the cores well;
            # the readers of the session's smoke run stay on one (tests/conftest.py).
            exec "$VENV/bin/python" -m pytest -n "${DFP_TEST_WORKERS:-2}" "$@" ;;
        setup) ;;
    esac
}

main "$@"
