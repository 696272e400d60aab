"""``dfp world RUN_DIR`` and ``harness.world(RUN_DIR)``: a finished run's world for clients."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

from emulation.state import STATE_FILE

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]


def _start(run_dir: Path, home: Path) -> tuple[subprocess.Popen, dict[str, str], str]:
    """``dfp world`` in a child; its exported environment once it is up."""
    # Ctrl-C reaches it as from a terminal: a session started in the background by a
    # non-interactive shell ignores SIGINT, and a child inherits an ignored signal (a handled
    # one is reset to the default by exec).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "harness.cli", "world", str(run_dir)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "HOME": str(home)},
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    exports: dict[str, str] = {}
    database = ""
    deadline = time.monotonic() + 120
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        if line.startswith("export "):
            name, _, value = line[len("export ") :].strip().partition("=")
            exports[name] = value
        elif line.startswith("# Athena database: "):
            database = line.split(": ", 1)[1].split(",")[0].strip()
            return process, exports, database
    process.kill()
    raise AssertionError(f"dfp world did not come up: {process.stderr.read()[-3000:]}")


def _client(exports: dict[str, str], service: str):
    return boto3.client(
        service,
        endpoint_url=exports["AWS_ENDPOINT_URL"],
        region_name=exports["AWS_REGION"],
        aws_access_key_id=exports["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=exports["AWS_SECRET_ACCESS_KEY"],
    )


def test_the_run_saved_its_world_state(smoke_run) -> None:
    state = smoke_run.summary["world_state"]
    assert state["saved"] is True, state
    manifest = json.loads((smoke_run.out_dir / state["folder"] / STATE_FILE).read_text())
    assert manifest["counts"] == state["counts"]
    staged = [
        k for objects in manifest["buckets"].values() for k in objects if k.startswith("cdc/")
    ]
    assert staged, "the staged objects are kept"
    cdc = next(s for name, s in manifest["streams"].items() if name.endswith("-cdc"))
    # every record on the stream, the DMS heartbeats too: what the anomaly job read
    assert cdc["records"] == smoke_run.summary["counts"]["anomaly_job"]["in"]
    assert manifest["executions"], "the forecast and enrichment executions are kept"
    # not a data artifact: the world's state holds what the world made up (times, names)
    assert not any(path.startswith("world/") for path in smoke_run.summary["artifacts"])


def test_dfp_world_serves_the_run_to_boto3_and_athena(smoke_run, tmp_path: Path) -> None:
    manifest = json.loads((smoke_run.out_dir / "world" / STATE_FILE).read_text())
    process, exports, database = _start(smoke_run.out_dir, tmp_path)
    try:
        host = exports["AWS_ENDPOINT_URL"].split("//")[1].split(":")[0]
        assert host == "127.0.0.1"
        s3 = _client(exports, "s3")
        for bucket, objects in manifest["buckets"].items():
            listed = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            assert {o["Key"] for page in listed for o in page.get("Contents", [])} == set(objects)
        glue = _client(exports, "glue")
        tables = {t["Name"]: t for t in glue.get_tables(DatabaseName=database)["TableList"]}
        partitioned = [n for n, t in tables.items() if t.get("PartitionKeys")]
        assert partitioned, "the stack has partitioned tables"
        for name in partitioned:
            parts = glue.get_partitions(DatabaseName=database, TableName=name)["Partitions"]
            assert parts, f"{name}: no partition registered"
        athena = _client(exports, "athena")
        staged = next(n for n in tables if "staged" in n)
        query = athena.start_query_execution(
            QueryString=f"SELECT count(*) FROM {staged}",
            QueryExecutionContext={"Database": database},
            ResultConfiguration={"OutputLocation": f"s3://{next(iter(manifest['buckets']))}/q/"},
        )["QueryExecutionId"]
        for _ in range(300):
            status = athena.get_query_execution(QueryExecutionId=query)["QueryExecution"]
            if status["Status"]["State"] not in ("QUEUED", "RUNNING"):
                break
            time.sleep(0.1)
        assert status["Status"]["State"] == "SUCCEEDED", status["Status"]
        rows = athena.get_query_results(QueryExecutionId=query)["ResultSet"]["Rows"]
        assert (
            int(rows[1]["Data"][0]["VarCharValue"])
            == (smoke_run.summary["counts"]["s3_staged"]["out"])
        )
        _real_clients(exports, database, staged, manifest, smoke_run.summary)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            code = process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()  # never left behind
            process.wait(timeout=30)
            raise
    assert code == 0, process.stderr.read()[-3000:]


def _real_clients(exports, database, staged, manifest, summary) -> None:
    """The AWS CLI and awswrangler, from another process's point of view: only the exports."""
    env = {**os.environ, **exports, "AWS_CONFIG_FILE": os.devnull,
           "AWS_SHARED_CREDENTIALS_FILE": os.devnull}  # fmt: skip
    bucket = next(b for b in manifest["buckets"] if "-staged-" in b)
    listed = subprocess.run([str(Path(sys.executable).with_name("aws")), "s3", "ls",
                             f"s3://{bucket}/", "--recursive"],
                            env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert len(listed.stdout.splitlines()) == len(manifest["buckets"][bucket])

    import awswrangler as wr

    session = boto3.Session(
        region_name=exports["AWS_REGION"],
        aws_access_key_id=exports["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=exports["AWS_SECRET_ACCESS_KEY"],
    )
    saved = {k: os.environ.get(k) for k in exports}
    os.environ.update(exports)  # awswrangler's clients find the endpoint as boto3 does
    try:
        frame = wr.athena.read_sql_query(
            f'SELECT "table", count(*) AS n FROM {staged} GROUP BY 1', database=database,
            boto3_session=session,
        )  # fmt: skip
        partitions = wr.catalog.get_partitions(database=database, table=staged,
                                               boto3_session=session)  # fmt: skip
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    assert dict(zip(frame["table"], frame["n"], strict=True)) == summary["staging"]["rows"]
    assert {v[0] for v in partitions.values()} == set(summary["staging"]["rows"])


def test_harness_world_gives_a_notebook_the_run_and_its_clients(smoke_run, tmp_path: Path) -> None:
    """A notebook's world: what the run saved is loaded and starts no workflow; PyAthena reads it
    as an analyst uses it (its cursor with a parameter, its pandas cursor reading the results
    from the workgroup's S3 location through boto3, SQLAlchemy), and DuckDB reads a table's
    Parquet from the world's S3 (``w.duckdb()``)."""
    code = (
        "import harness, json, os, sys, time\n"
        "import pandas as pd\n"
        "from pyathena import connect\n"
        "from pyathena.pandas.cursor import PandasCursor\n"
        "from sqlalchemy import create_engine\n"
        "with harness.world(sys.argv[1]) as w:\n"
        "    s3 = w.client('s3')\n"
        "    names = [b['Name'] for b in s3.list_buckets()['Buckets']]\n"
        "    time.sleep(3)  # an event rule would have started a workflow by now\n"
        "    sfn = w.client('stepfunctions')\n"
        "    runs = sum(len(sfn.list_executions(stateMachineArn=m['stateMachineArn'])\n"
        "                   ['executions']) for m in sfn.list_state_machines()['stateMachines'])\n"
        "    os.environ.update(w.exports())\n"
        "    conn = connect(work_group=w.workgroup, schema_name=w.database,\n"
        "                   region_name=w.region)\n"
        "    cur = conn.cursor()\n"
        "    cur.execute('SELECT item_id, count(*) AS n FROM forecast_enriched '\n"
        "                'WHERE item_id <> %(skip)s GROUP BY item_id ORDER BY item_id',\n"
        "                {'skip': 'none'})\n"
        "    rows = [[r[0], int(r[1])] for r in cur.fetchall()]\n"
        "    frame = conn.cursor(PandasCursor).execute(\n"
        "        'SELECT * FROM forecast_enriched LIMIT 5').as_pandas()\n"
        "    engine = create_engine('awsathena+rest://@athena.' + w.region + '.amazonaws.com:'\n"
        "                           '443/' + w.database + '?work_group=' + w.workgroup)\n"
        "    total = int(pd.read_sql('SELECT count(*) AS n FROM forecast_enriched', engine)\n"
        "                ['n'].iloc[0])\n"
        "    table = w.client('glue').get_table(DatabaseName=w.database,\n"
        "                                       Name='forecast_enriched')['Table']\n"
        "    where = table['StorageDescriptor']['Location'].rstrip('/')\n"
        "    files = f\"read_parquet('{where}/**/*.parquet')\"\n"
        "    duck = w.duckdb().sql(f'SELECT count(*) FROM {files}').fetchone()[0]\n"
        "    print(json.dumps({'loaded': w.loaded, 'buckets': names, 'db': w.database,\n"
        "                      'executions': runs, 'rows': rows, 'columns': list(frame.columns),\n"
        "                      'pandas_rows': len(frame), 'total': total, 'duckdb': duck}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(smoke_run.out_dir)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    counts = smoke_run.summary["world_state"]["counts"]
    assert answer["loaded"]["objects"] == counts["objects"]
    assert answer["loaded"]["records"] == counts["records"]
    assert answer["executions"] == 0  # loading the run's outputs started no workflow
    assert set(json.loads((smoke_run.out_dir / "world" / STATE_FILE).read_text())["buckets"]) <= (
        set(answer["buckets"])
    )
    enriched = smoke_run.summary["enrich"]
    assert len(answer["rows"]) == enriched["items"]
    assert sum(n for _, n in answer["rows"]) == answer["total"] == enriched["rows"]
    assert answer["pandas_rows"] == 5 and {"item_id", "p50"} <= set(answer["columns"])
    assert answer["duckdb"] == answer["total"]


def test_dfp_world_refuses_a_directory_without_a_saved_state(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "world", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "no saved world state" in done.stderr and str(tmp_path) in done.stderr


def test_dfp_world_refuses_a_tampered_state_naming_it(tmp_path: Path) -> None:
    state = tmp_path / "run" / "world"
    state.mkdir(parents=True)
    (state / STATE_FILE).write_text(json.dumps({"format": 1, "region": "us-east-1",
                                                "buckets": ["not", "a", "mapping"]}))  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "harness.cli", "world", str(tmp_path / "run")],
                          cwd=REPO, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "not a saved world state" in done.stderr and "Traceback" not in done.stderr
