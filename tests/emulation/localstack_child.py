"""``dfp run smoke --world localstack`` in a child, watching what its processes listen on.

Run by ``tests/conftest.py`` beside the session (``python tests/emulation/localstack_child.py
FOLDER``): the run goes to ``FOLDER/run``; every second the listening TCP sockets of the run's
process tree (the harness, Flink, Spark, LocalStack and its Kinesis helper) are read from
``ss -ltnpH``, and ``FOLDER/listeners.json`` gets each distinct (process, address) seen. The exit
code is the run's.

Then, in a LocalStack world of its own, a forecast endpoint is deployed (``ModelDeployConfig``)
and invoked through ``sagemaker-runtime``, routed to the embedded moto and through LocalStack's
own endpoint; ``FOLDER/invoke.json`` gets what each answered (or the error).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

_USER = re.compile(r'\("([^"]*)",pid=(\d+)')


def _tree(root: int) -> set[int]:
    """``root`` and its descendants (from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
    found, grew = {root}, True
    while grew:
        grew = False
        for pid, parent in parents.items():
            if parent in found and pid not in found:
                found.add(pid)
                grew = True
    return found


def _listeners(pids: set[int]) -> set[tuple[str, str]]:
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=False).stdout
    seen = set()
    for line in out.splitlines():
        fields = line.split()
        if len(fields) < 6:
            continue
        for name, pid in _USER.findall(line):
            if int(pid) in pids:
                seen.add((name, fields[3]))
    return seen


def main(folder: Path) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "harness.cli", "run", "smoke", "--world", "localstack",
               "--out", str(folder / "run")]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_ENDPOINT_URL", "DFP_WORLD")}
    process = subprocess.Popen(command, env=env)
    seen: set[tuple[str, str]] = set()
    samples = 0
    while process.poll() is None:
        seen |= _listeners(_tree(process.pid))
        samples += 1
        time.sleep(1.0)  # Flink's and LocalStack's servers live for tens of seconds
    report = {"samples": samples, "listeners": sorted([name, address] for name, address in seen)}
    (folder / "listeners.json").write_text(json.dumps(report, indent=1))
    try:
        invoked = _invoke_an_endpoint()
    except Exception as exc:  # the test shows it
        invoked = {"error": f"{type(exc).__name__}: {exc}"}
    (folder / "invoke.json").write_text(json.dumps(invoked, indent=1))
    return process.returncode


def _invoke_an_endpoint() -> dict:
    import boto3

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from emulation import World
    from tests.emulation.test_sagemaker import _job_request, _setup, _wait, automl_frame

    with World(region="us-east-1", engine="localstack") as world:
        uri, role = _setup(world)
        sm = world.client("sagemaker")
        sm.create_auto_ml_job_v2(**_job_request("ls-job", uri, role),
                                 ModelDeployConfig={"EndpointName": "ls-endpoint"})  # fmt: skip
        job = _wait(lambda: sm.describe_auto_ml_job_v2(AutoMLJobName="ls-job"),
                    "AutoMLJobStatus", timeout=300)  # fmt: skip
        body = automl_frame().to_csv(index=False).encode()
        direct = boto3.client("sagemaker-runtime", endpoint_url=world.endpoint_url,
                              region_name=world.region, aws_access_key_id="testing",
                              aws_secret_access_key="testing")  # fmt: skip
        answers = {}
        for way, client in (("routed", world.client("sagemaker-runtime")),
                            ("through_localstack", direct)):  # fmt: skip
            answer = client.invoke_endpoint(EndpointName="ls-endpoint", Body=body,
                                            ContentType="text/csv")  # fmt: skip
            answers[way] = answer["Body"].read().decode()
        return {"job": job["AutoMLJobStatus"], "routes": sorted(world.routes), **answers}


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
