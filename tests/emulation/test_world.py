"""The local world: start, health check, account from STS, Step Functions execution, reset."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from emulation import World
from emulation.world import WorldError
from tests.conftest import free_port, hand_made_request


def test_account_comes_from_sts(aws: World) -> None:
    identity = aws.client("sts").get_caller_identity()
    assert aws.account_id == identity["Account"]
    assert aws.account_id.isdigit() and len(aws.account_id) == 12


def test_embedded_world_sets_moto_port_to_its_port(world: World) -> None:
    if world.kind != "embedded":
        pytest.skip("only an embedded world owns MOTO_PORT; an external one was started with it")
    assert world.endpoint_url == f"http://127.0.0.1:{os.environ['MOTO_PORT']}"
    assert world.environment()["MOTO_PORT"] == os.environ["MOTO_PORT"]


def test_step_functions_executes_state_machines(aws: World) -> None:
    sfn = aws.client("stepfunctions")
    definition = {
        "StartAt": "Add",
        "States": {
            "Add": {
                "Type": "Pass",
                "Parameters": {"sum.$": "States.MathAdd($.a, $.b)"},
                "End": True,
            }
        },
    }
    arn = sfn.create_state_machine(
        name="adder",
        definition=json.dumps(definition),
        roleArn=f"arn:aws:iam::{aws.account_id}:role/r",
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"a": 2, "b": 40}))
    done = aws.wait_for(
        lambda: (
            (d := sfn.describe_execution(executionArn=execution["executionArn"]))["status"]
            != "RUNNING"
            and d
        ),
        what="the execution to finish",
    )
    assert done["status"] == "SUCCEEDED"
    assert json.loads(done["output"]) == {"sum": 42}


def test_an_execution_that_never_ends_fails_at_the_history_quota(aws: World, monkeypatch) -> None:
    """AWS fails an execution whose history reaches 25,000 events, uncatchably; moto let a loop
    back to itself spin a core of the server until the world stopped. The quota is lowered here
    to keep the test short (25,000 events take about 14 s)."""
    if not aws.in_process:
        pytest.skip("a patch of the embedded server; another endpoint's server is its own")
    import emulation.stepfunctions as sfn_patches

    assert sfn_patches.HISTORY_QUOTA == 25_000  # AWS's
    monkeypatch.setattr(sfn_patches, "HISTORY_QUOTA", 300)
    sfn = aws.client("stepfunctions")
    loop = {  # a polling loop whose job never finishes: x stays 1
        "Poll": {"Type": "Pass", "Next": "Done?"},
        "Done?": {
            "Type": "Choice",
            "Default": "Done",
            "Choices": [{"Variable": "$.x", "NumericEquals": 1, "Next": "Poll"}],
        },
        "Done": {"Type": "Succeed"},
    }
    machines = {
        "spin": {"StartAt": "Poll", "States": loop},
        "caught": {"StartAt": "P", "States": {  # a Catch around the branch that filled it
            "P": {"Type": "Parallel", "Branches": [{"StartAt": "Poll", "States": loop}],
                  "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Done"}], "End": True},
            "Done": {"Type": "Succeed"}}},
        "short": {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}},
    }  # fmt: skip
    ended = {}
    for name, definition in machines.items():
        arn = sfn.create_state_machine(name=name, definition=json.dumps(definition),
                                       roleArn=f"arn:aws:iam::{aws.account_id}:role/r",
                                       )["stateMachineArn"]  # fmt: skip
        run = sfn.start_execution(stateMachineArn=arn, input='{"x": 1}')["executionArn"]
        ended[name] = aws.wait_for(
            lambda run=run: (d := sfn.describe_execution(executionArn=run))["status"]
            != "RUNNING" and d, what=f"{name} to end", timeout=60)  # fmt: skip
        pages = sfn.get_paginator("get_execution_history").paginate(executionArn=run)
        ended[name]["events"] = [event for page in pages for event in page["events"]]
    for name in ("spin", "caught"):
        assert ended[name]["status"] == "FAILED"
        assert ended[name]["error"] == "States.Runtime"
        assert ended[name]["cause"] == ("The execution reached the maximum number of history "
                                        "events (300).")  # fmt: skip
        last = ended[name]["events"][-1]
        assert (last["id"], last["type"]) == (300, "ExecutionFailed"), name
    assert ended["short"]["status"] == "SUCCEEDED"
    assert len(ended["short"]["events"]) == 4


def test_a_definition_with_broken_transitions_is_refused_as_aws_refuses_it(aws: World) -> None:
    """AWS checks a definition's transitions when it is created or updated; moto only parsed it,
    so a target naming no state failed when an execution got there. The messages are AWS's
    (as its CLI shows them for these definitions)."""
    if not aws.in_process:
        pytest.skip("a patch of the embedded server; another endpoint's server is its own")
    sfn = aws.client("stepfunctions")
    role = f"arn:aws:iam::{aws.account_id}:role/r"
    broken = [
        ({"StartAt": "pass1", "States": {"pass1": {"Type": "Pass", "Next": "pass3"},
                                         "pass2": {"Type": "Pass", "End": True}}},
         "MISSING_TRANSITION_TARGET: Missing 'Next' target: pass3 at /States/pass1/Next, "
         'MISSING_TRANSITION_TARGET: State "pass2" is not reachable. at /States/pass2'),
        ({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"},
                                     "B": {"Type": "Pass", "Next": "A"}}},
         "MISSING_END_STATE: Workflow has no terminal state"),
        ({"StartAt": "P", "States": {"P": {
            "Type": "Parallel", "End": True,
            "Branches": [{"StartAt": "X", "States": {"Y": {"Type": "Succeed"}}}],
            "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Gone"}]}}},
         "MISSING_TRANSITION_TARGET: Missing 'Next' target: Gone at /States/P/Catch[0]/Next, "
         "MISSING_TRANSITION_TARGET: Missing 'Next' target: X at /States/P/Branches[0]/StartAt, "
         'MISSING_TRANSITION_TARGET: State "Y" is not reachable. at '
         "/States/P/Branches[0]/States/Y"),
    ]  # fmt: skip
    for n, (definition, problems) in enumerate(broken):
        with pytest.raises(sfn.exceptions.InvalidDefinition) as refused:
            sfn.create_state_machine(name=f"broken-{n}", definition=json.dumps(definition),
                                     roleArn=role)  # fmt: skip
        message = refused.value.response["Error"]["Message"]
        assert message == f"Invalid State Machine Definition: '{problems}'"
    assert sfn.list_state_machines()["stateMachines"] == []
    good = {"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Default": "Done",
              "Choices": [{"Variable": "$.x", "NumericEquals": 1, "Next": "Done"}]},
        "Done": {"Type": "Succeed"}}}  # fmt: skip
    arn = sfn.create_state_machine(name="good", definition=json.dumps(good),
                                   roleArn=role)["stateMachineArn"]  # fmt: skip
    with pytest.raises(sfn.exceptions.InvalidDefinition, match="Missing 'Next' target: Nope"):
        sfn.update_state_machine(stateMachineArn=arn, definition=json.dumps(
            {**good, "StartAt": "Nope"}))  # fmt: skip


def test_sdk_task_results_are_named_as_aws_names_them(aws: World) -> None:
    """AWS's aws-sdk integrations name output members as its SDK does (an acronym capitalised
    as a word): ``SSEDescription`` is ``SseDescription``; a map's keys are data and stay."""
    if not aws.in_process:
        pytest.skip("the naming is the embedded moto's correction; other engines do their own")
    table = "casing-test"
    aws.client("dynamodb").create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        SSESpecification={"Enabled": True},
    )
    definition = {
        "StartAt": "Describe",
        "States": {
            "Describe": {
                "Type": "Task",
                "Resource": "arn:aws:states:::aws-sdk:dynamodb:describeTable",
                "Parameters": {"TableName": table},
                "ResultSelector": {"sse.$": "$.Table.SseDescription.Status",
                                   "name.$": "$.Table.TableName"},
                "End": True,
            }
        },
    }  # fmt: skip
    sfn = aws.client("stepfunctions")
    arn = sfn.create_state_machine(
        name="casing", definition=json.dumps(definition),
        roleArn=f"arn:aws:iam::{aws.account_id}:role/r",
    )["stateMachineArn"]  # fmt: skip
    execution = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    done = aws.wait_for(
        lambda: (d := sfn.describe_execution(executionArn=execution))["status"] != "RUNNING" and d,
        what="the execution to finish",
    )
    assert done["status"] == "SUCCEEDED", done.get("cause")
    assert json.loads(done["output"]) == {"sse": "ENABLED", "name": table}


def test_sfn_casing_renames_structure_members_only() -> None:
    from emulation.stepfunctions import _output_shape, sfn_cased

    shape = _output_shape("s3", "get_object")
    result = sfn_cased({"SSEKMSKeyId": "k", "ETag": "e", "Metadata": {"SSEKey": "v"}}, shape)
    assert result == {"SsekmsKeyId": "k", "ETag": "e", "Metadata": {"SSEKey": "v"}}
    shape = _output_shape("sagemaker", "describe_auto_ml_job_v2")
    assert sfn_cased({"AutoMLJobStatus": "Completed"}, shape) == {"AutoMlJobStatus": "Completed"}


def test_reset_empties_the_world(aws: World) -> None:
    s3 = aws.client("s3")
    location = {} if aws.region == "us-east-1" else {"LocationConstraint": aws.region}
    s3.create_bucket(Bucket="reset-me", CreateBucketConfiguration=location)
    aws.client("kinesis").create_stream(StreamName="reset-me", ShardCount=1)
    aws.reset()
    assert s3.list_buckets()["Buckets"] == []
    assert aws.client("kinesis").list_streams()["StreamNames"] == []


def test_unreachable_endpoint_fails_the_health_check_with_the_endpoint_named() -> None:
    port = free_port()  # nothing listens there
    with pytest.raises(WorldError, match=rf"127\.0\.0\.1:{port}.*did not answer"):
        World(
            endpoint_url=f"http://127.0.0.1:{port}", region="us-east-1", startup_timeout=1
        ).start()


def test_a_second_embedded_world_in_one_process_is_refused(world: World) -> None:
    if world.kind != "embedded":
        pytest.skip("needs the embedded world (this session uses an external endpoint)")
    # The session world occupies the process's single embedded slot; a second is refused.
    with pytest.raises(WorldError, match="already running"):
        World(region="us-east-1").start()


def _in_a_fresh_interpreter(script: str, timeout: float) -> subprocess.CompletedProcess:
    """Run ``script`` in a new Python with an embedded world of its own; it must succeed."""
    env = {k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=env, timeout=timeout)  # fmt: skip
    assert out.returncode == 0, out.stderr
    return out


def test_world_stops_its_server_when_interrupted(tmp_path) -> None:
    """In a fresh interpreter: Ctrl-C inside the world's block stops the server."""

    script = (
        "import socket, sys\n"
        "from emulation import World\n"
        "port = None\n"
        "try:\n"
        "    with World(region='us-east-1') as w:\n"
        "        port = int(w.endpoint_url.rsplit(':', 1)[1])\n"
        "        raise KeyboardInterrupt\n"
        "except KeyboardInterrupt:\n"
        "    pass\n"
        "s = socket.socket()\n"
        "print(port, s.connect_ex(('127.0.0.1', port)))\n"
    )
    out = _in_a_fresh_interpreter(script, timeout=60)
    port, connect_result = map(int, out.stdout.split())
    assert port > 0
    assert connect_result != 0, "the server still accepts connections after the interrupt"


def test_a_busy_port_is_refused_naming_it_and_a_lost_race_is_not_waited_on() -> None:
    """``World(port=P)`` on a port another program listens on fails at once naming it (it hung
    before: moto's server thread died and its start waited forever), and a bind lost after the
    check still ends the wait."""
    import socket

    from moto.server import ThreadedMotoServer

    from emulation.world import _serve

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        script = (
            "from emulation import World\n"
            "from emulation.world import WorldError\n"
            "try:\n"
            f"    World(region='us-east-1', port={port}).start()\n"
            "except WorldError as exc:\n"
            "    print(exc)\n"
        )
        out = _in_a_fresh_interpreter(script, timeout=120)
        assert f"port {port} on 127.0.0.1 is in use" in out.stdout
        with pytest.raises(OSError, match=str(port)):  # the check passed, the bind did not
            _serve(ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False))


def test_a_world_started_after_another_in_one_process_starts_empty() -> None:
    """In a fresh interpreter: moto's backends and the gap-fillers' store outlive a server, so
    the next world (``dfp run --all`` starts one per scenario) must be emptied when it starts,
    or a run would find the previous run's buckets, executions and jobs."""

    script = (
        "from emulation import World\n"
        "from emulation.store import STORE\n"
        "with World(region='us-east-1') as w:\n"
        "    w.client('s3').create_bucket(Bucket='left-behind')\n"
        "    STORE.get('test', w.account_id, w.region, dict)['mark'] = 1\n"
        "with World(region='us-east-1') as w:\n"
        "    buckets = [b['Name'] for b in w.client('s3').list_buckets()['Buckets']]\n"
        "    print(buckets, STORE.get('test', w.account_id, w.region, dict))\n"
    )
    assert _in_a_fresh_interpreter(script, timeout=120).stdout.strip() == "[] {}"


def test_a_settling_world_stops_its_workflows_and_waits_for_its_jobs(aws: World) -> None:
    """What a run ``--until`` an earlier stage leaves working (a forecast workflow, a training
    job) ends before the world stops, rather than dying with the process."""
    import threading
    import time

    import emulation.sagemaker as sagemaker

    if aws.kind != "embedded":
        pytest.skip("only the embedded world runs jobs in this process; this session's own "
                    "run of this test covers it")  # fmt: skip
    sfn = aws.client("stepfunctions")
    definition = {"StartAt": "Long", "States": {"Long": {"Type": "Wait", "Seconds": 600,
                                                         "End": True}}}  # fmt: skip
    role = f"arn:aws:iam::{aws.account_id}:role/r"
    arn = sfn.create_state_machine(name="long", definition=json.dumps(definition),
                                   roleArn=role)["stateMachineArn"]  # fmt: skip
    execution = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    finished = threading.Event()
    sagemaker._start_background(lambda: (time.sleep(1.0), finished.set()), (), "automl-test")
    try:
        aws.settle(timeout=60)
        assert finished.is_set()  # waited for, not abandoned
        assert sfn.describe_execution(executionArn=execution)["status"] == "ABORTED"
        late = threading.Event()  # a job a workflow task creates while the world stops
        sagemaker._start_background(late.set, (), "automl-late")
        assert not late.wait(0.5)
    finally:
        sagemaker.accept_background_jobs()  # the session's world goes on
    again = threading.Event()
    sagemaker._start_background(again.set, (), "automl-again")
    assert again.wait(10)


def test_the_embedded_server_routes_requests_without_listing_motos_folder(aws, monkeypatch):
    """moto's dispatcher lists its package folder for each request unless told once."""
    if not aws.in_process:
        pytest.skip("a patch of the embedded server; another endpoint's server is its own")
    import types

    import moto.backends

    def listdir(path):
        raise AssertionError(f"listed {path} while serving a request")

    fake_os = types.SimpleNamespace(listdir=listdir, path=moto.backends.os.path)
    monkeypatch.setattr(moto.backends, "os", fake_os)
    assert "s3" in moto.backends.list_of_moto_modules()
    aws.client("s3").list_buckets()  # routed by the server, through the same check
    assert aws.client("sts").get_caller_identity()["Account"]


@pytest.mark.parametrize(
    ("service", "call", "action"),
    [
        ("sagemaker", lambda c: c.describe_hub(HubName="hub"), "DescribeHub"),  # JSON
        (
            "iam",  # query protocol, XML
            lambda c: c.get_service_last_accessed_details(JobId="j" * 36),
            "GetServiceLastAccessedDetails",
        ),
    ],
    ids=["json", "xml"],
)
def test_an_action_the_world_lacks_is_refused_at_once_naming_it(aws, service, call, action):
    """Not a 500 page that SDKs retry five times, backing off: a 501 ``NotImplemented``."""
    if not aws.in_process:
        pytest.skip("a patch of the embedded server; another endpoint's server is its own")
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as refused:
        call(aws.client(service))
    error, meta = refused.value.response["Error"], refused.value.response["ResponseMetadata"]
    assert error["Code"] == "NotImplemented"
    assert error["Message"].startswith(f"{action} is not emulated by the local world ({service})")
    assert meta["HTTPStatusCode"] == 501
    assert meta["RetryAttempts"] == 0


@pytest.mark.parametrize(
    ("service", "target", "body", "parameter"),
    [
        ("glue", "AWSGlue.CreateDatabase", {"DatabaseInput": "sales"}, "DatabaseInput"),
        ("athena", "AmazonAthena.StartQueryExecution", {"QueryString": {"a": 1}}, "QueryString"),
        ("firehose", "Firehose_20150804.PutRecordBatch",
         {"DeliveryStreamName": "d", "Records": "r"}, "Records"),
    ],
    ids=["glue", "athena", "firehose"],
)  # fmt: skip
def test_a_hand_made_request_of_the_wrong_shape_is_a_400_naming_the_parameter(
    aws, service, target, body, parameter
):
    """moto's reader failed inside the server on a value of another kind (a 500 page, retried
    five times); AWS answers ``SerializationException`` at once. SDKs never send one: their
    serializers refuse it, so the request is made by hand."""
    if not aws.in_process:
        pytest.skip("a patch of the embedded server; another endpoint's server is its own")
    status, answer = hand_made_request(aws, service, target, body)
    assert status == 400, answer
    assert answer["__type"] == "SerializationException"
    action = target.split(".")[1]
    assert answer["message"].startswith(f"{action}: the request's parameters do not match")
    assert f"Invalid type for parameter {parameter}," in answer["message"]
    aws.client("glue").create_database(DatabaseInput={"Name": "sales"})  # the server still serves
    assert aws.client("glue").get_database(Name="sales")["Database"]["Name"] == "sales"


@pytest.mark.parametrize("target", ["AWSGlue.GetTables", "AmazonAthena.StartQueryExecution"])
def test_a_hand_made_body_that_is_no_json_is_a_400_saying_so(aws, target) -> None:
    """It was a 500 page: moto's handler failed decoding it."""
    if not aws.in_process:
        pytest.skip("a patch of the embedded server; another endpoint's server is its own")
    service = "glue" if target.startswith("AWSGlue") else "athena"
    status, answer = hand_made_request(aws, service, target, b'{"DatabaseName": ')
    assert (status, answer.get("__type")) == (400, "SerializationException"), answer
    assert "the body is not JSON" in answer["message"]


def test_in_process_patches_are_registered_and_applied_once() -> None:
    from emulation import _patching

    patches = {"athena", "browser-guard", "events", "glue", "kinesis", "malformed-requests",
               "sagemaker", "server-dispatch", "stepfunctions", "unemulated-actions"}  # fmt: skip
    assert set(_patching.registered()) >= patches
    calls = []

    @_patching.moto_patch("test-only")
    def install() -> None:
        calls.append(1)

    try:
        install()
        install()
        _patching.install_all()
        assert calls == [1]
    finally:
        _patching._registry.pop("test-only")
        _patching._installed.discard("test-only")


def test_a_world_marks_its_process_as_a_local_run_and_gives_the_mark_back(monkeypatch) -> None:
    """Deployed code run in-process guards its clients by DFP_LOCAL_RUN: it must name the world
    that is running, and go back to the outer value (a parent run's) when the world stops."""
    from emulation.safety import LOCAL_RUN_ENV
    from tests.conftest import moto_server

    monkeypatch.setenv(LOCAL_RUN_ENV, "http://127.0.0.1:1")
    with moto_server() as url, World(endpoint_url=url, region="us-east-1") as inner:
        assert os.environ[LOCAL_RUN_ENV] == inner.endpoint_url == url
    assert os.environ[LOCAL_RUN_ENV] == "http://127.0.0.1:1"
