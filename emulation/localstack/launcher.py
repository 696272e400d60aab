"""Start LocalStack on this host, contained, with the services it lacks forwarded to a moto server.

Runs under LocalStack's own Python 3.13 environment (``.dfp/localstack/venv``), never imported by
the harness: it only uses LocalStack and the standard library. Three things are done before
LocalStack's own entry point runs:

* S3 keeps object bodies under a fixed ``/tmp/localstack-s3-storage`` (a module constant, no
  setting); it is pointed into ``FILESYSTEM_ROOT`` so that nothing outside the run's folder is
  written and two worlds never share a store.
* Each service named in ``DFP_FORWARD_SERVICES`` gets a provider whose every operation forwards
  the request as it came (same body, headers and signature) to ``DFP_FORWARD_URL``. The
  community edition has no Glue, Athena, SageMaker or DMS, and its DynamoDB needs DynamoDB Local;
  with the forwarders, LocalStack's own Step Functions reach the harness's emulation of them, as
  a workflow on AWS reaches those services.
* Three fixes where LocalStack departs from AWS and the project's workflows meet it
  (:func:`_fix_states_target`, :func:`_fix_keyword_paths`, :func:`_fix_sdk_timestamps`); the
  README's engine table lists them with the other differences.
* A thread stops this process when the harness process that started it is gone.
* Nothing else: the gateway's address, the data folders and the service list are LocalStack's own
  settings, set by the harness in the environment.
"""

from __future__ import annotations

import os
import sys

# A sibling file, shared with the harness's moto correction; only the standard library.
from asl_compat import as_aws_json, treat_keyword_fields_as_paths


def _contain_s3() -> None:
    import localstack.services.s3.provider as s3_provider

    folder = os.path.join(os.environ["FILESYSTEM_ROOT"], "s3-storage")
    os.makedirs(folder, exist_ok=True)
    s3_provider.DEFAULT_S3_TMP_DIR = folder


def _forwarding_service(name: str, url: str):
    from localstack.aws.forwarder import AwsRequestProxy
    from localstack.aws.skeleton import Skeleton
    from localstack.aws.spec import load_service
    from localstack.services.plugins import Service

    proxy = AwsRequestProxy(url)
    model = load_service(name)

    def forward(context, _request=None):
        # The original request, untouched: moto checks what the client signed and sent.
        return proxy.forward(context)

    table = {operation: forward for operation in model.operation_names}
    return Service(name, skeleton=Skeleton(model, table))


def _forward_services() -> list[str]:
    names = [s.strip() for s in os.environ.get("DFP_FORWARD_SERVICES", "").split(",") if s.strip()]
    url = os.environ.get("DFP_FORWARD_URL", "")
    if not names:
        return []
    from localstack.services.plugins import SERVICE_PLUGINS

    # The plugin manager only knows services that come with a provider plugin; these have none.
    exists, available = SERVICE_PLUGINS.exists, SERVICE_PLUGINS.list_available
    SERVICE_PLUGINS.exists = lambda name: name in names or exists(name)
    SERVICE_PLUGINS.list_available = lambda: sorted({*available(), *names})
    from localstack.utils.bootstrap import get_enabled_apis

    get_enabled_apis.cache_clear()  # computed once, possibly before the forwarders existed
    for name in names:  # after the list is right: a service is added enabled or disabled
        SERVICE_PLUGINS.add_service(_forwarding_service(name, url))
    return names


def _follow_parent() -> None:
    """Stop when the harness process that started this one is gone (killed, crashed): a world
    must not outlive its run."""
    import signal
    import threading
    import time

    parent = int(os.environ.get("DFP_PARENT_PID") or 0)
    if not parent:
        return

    def watch() -> None:
        while True:
            time.sleep(1.0)
            try:
                os.kill(parent, 0)
            except ProcessLookupError:
                os.kill(os.getpid(), signal.SIGTERM)
                return
            except PermissionError:
                continue

    threading.Thread(target=watch, name="dfp-parent-watch", daemon=True).start()


def _fix_states_target() -> None:
    """EventBridge → Step Functions with an ``InputTransformer``: LocalStack 4.14.0 names the
    execution after the *transformed* input's ``id`` and fails delivery when the template has none
    (``TargetDeliveryFailure: 'id'``). AWS names such executions itself; here a random UUID, as
    AWS's are, when the input carries no ``id``."""
    import json
    import uuid

    from localstack.services.events import target

    original = target.StatesTargetSender.send_event

    def send_event(self, event, trace_header):
        if isinstance(event, dict) and "id" in event:
            return original(self, event, trace_header)
        self.service = "stepfunctions"
        body = event if isinstance(event, str) else json.dumps(event)
        self.client.start_execution(
            stateMachineArn=self.target["Arn"], name=str(uuid.uuid4()), input=body
        )

    target.StatesTargetSender.send_event = send_event


def _fix_keyword_paths() -> None:
    """Path fields named like ASL keywords: LocalStack's grammar lexes ``"RoleArn.$"`` (and the
    other keyword names) inside a task's ``Parameters`` as the keyword, and the task fails with
    ``States.Runtime`` (``'RoleArn.$'``). AWS treats every ``<name>.$`` field of a payload
    template as a path. (moto's parser, a copy of LocalStack's, has the same defect; the
    harness corrects it there in ``emulation/stepfunctions``.)"""
    from localstack.services.stepfunctions.asl.component.common.payload.payloadvalue.payloadbinding import (  # noqa: E501
        payload_binding as binding,
    )
    from localstack.services.stepfunctions.asl.component.common.payload.payloadvalue.payloadvaluelit.payload_value_str import (  # noqa: E501
        PayloadValueStr,
    )
    from localstack.services.stepfunctions.asl.component.common.string.string_expression import (
        StringJsonPath,
    )
    from localstack.services.stepfunctions.asl.parse.preprocessor import Preprocessor

    treat_keyword_fields_as_paths(Preprocessor, binding, PayloadValueStr, StringJsonPath)


def _fix_sdk_timestamps() -> None:
    """``aws-sdk:*`` task results: LocalStack keeps the SDK's timestamps as Python datetimes in the
    state's data, so a later task given one (``"--export_time.$": "$.training.CreationTime"``)
    fails with ``States.Runtime`` (``Object of type datetime is not JSON serializable``). State
    data is JSON on AWS; timestamps become ISO-8601 text, as the harness's moto does it."""
    from localstack.services.stepfunctions.asl.component.state.state_execution.state_task.service import (  # noqa: E501
        state_task_service_aws_sdk as aws_sdk,
    )

    original = aws_sdk.StateTaskServiceAwsSdk._eval_service_task

    def _eval_service_task(self, env, *args, **kwargs):
        original(self, env, *args, **kwargs)
        env.stack.append(as_aws_json(env.stack.pop()))

    aws_sdk.StateTaskServiceAwsSdk._eval_service_task = _eval_service_task


def main() -> int:
    _follow_parent()
    _contain_s3()
    _fix_states_target()
    _fix_keyword_paths()
    _fix_sdk_timestamps()
    _forward_services()
    from localstack.runtime.main import main as localstack_main

    return localstack_main() or 0


if __name__ == "__main__":
    sys.exit(main())
