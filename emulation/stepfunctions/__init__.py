"""Step Functions state machines interpreted as AWS interprets them, where moto's parser differs.

moto executes state machines (when execution is switched on); in the embedded world this module
corrects the differences that real workflows meet:

* ``aws-sdk:*`` task results: moto hands the task the raw boto3 response. AWS returns JSON: an S3
  ``GetObject`` ``Body`` is the object's text (so ``States.StringToJson($.Body)`` works),
  timestamps are ISO-8601 strings.
* The field names of those results: AWS's SDK integrations name each member of the output
  structure as its SDK does, an acronym capitalised as a word (``AutoMLJobStatus`` →
  ``AutoMlJobStatus``, ``SSEDescription`` → ``SseDescription``; map keys such as tags and
  metadata are data and stay as they are). moto's copy of the interpreter has this step switched
  off; LocalStack's, from which it was copied, does it (:func:`sfn_cased`). A workflow that reads
  ``$.training.AutoMLJobStatus`` never sees its job finish on AWS.
* Path fields named like ASL keywords: moto's grammar lexes ``"RoleArn.$"`` (and the other
  keyword names) as a keyword, so ``"RoleArn.$": "$.settings.role_arn"`` reached the service as a
  literal field ``RoleArn.$``. AWS treats every ``<name>.$`` field of a payload template as a path.

* The execution history's hard quota: AWS fails an execution whose history reaches 25,000
  events (``States.Runtime``, "The execution reached the maximum number of history events
  (25000).") unless the 25,000th is its success. moto has no limit, so a loop that never ends (a
  ``Pass`` or ``Choice`` back to itself, a polling loop whose job never finishes) spun a core of
  the world's server until it stopped (:func:`_patch_history_quota`).

Not emulated: AWS's 256 KiB payload limit on such a result, binary bodies (decoded as UTF-8 with
replacement), the ``<Service>.<ErrorCode>`` error names of aws-sdk tasks (moto names every service
error ``<service>.<service>Exception``; workflows here catch ``States.TaskFailed``/``States.ALL``).
"""

from __future__ import annotations

import functools
import re
from typing import Any

from emulation._patching import moto_patch
from emulation.localstack.asl_compat import as_aws_json, treat_keyword_fields_as_paths


def _sfn_key(name: str) -> str:
    words = re.sub(r"((?<=[a-z0-9])[A-Z]|(?!^)[A-Z](?=[a-z]))", r"_\1", name).lower()
    return "".join(part.title() for part in words.replace("__", "_").split("_"))


def sfn_cased(value: Any, shape: Any) -> Any:
    """``value`` (a result of the operation whose output shape is ``shape``) with every structure
    member renamed as AWS's SDK integrations name it; lists are followed, maps left alone."""
    if shape is None:
        return value
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        members = shape.members
        return {
            (_sfn_key(k) if k in members else k): sfn_cased(v, members.get(k))
            for k, v in value.items()
        }
    if kind == "list" and isinstance(value, list):
        return [sfn_cased(v, shape.member) for v in value]
    return value


@functools.cache  # a service model is a large JSON file, read once
def _output_shape(service: str, action: str) -> Any:
    """The output shape of ``service``'s operation ``action`` (``describe_auto_ml_job_v2``)."""
    import botocore.session

    model = botocore.session.get_session().get_service_model(service)
    for name in model.operation_names:
        if _sfn_key(name).lower() == action.replace("_", "").lower():
            return model.operation_model(name).output_shape
    return None


@moto_patch("stepfunctions")
def install_in_process() -> None:
    """Patch the in-process moto's aws-sdk task (idempotent)."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_aws_sdk as aws_sdk,
    )

    original = aws_sdk.StateTaskServiceAwsSdk._eval_service_task

    def _eval_service_task(self: Any, env: Any, *args: Any, **kwargs: Any) -> None:
        original(self, env, *args, **kwargs)
        shape = _output_shape(self._get_boto_service_name(), self._get_boto_service_action())
        env.stack.append(sfn_cased(as_aws_json(env.stack.pop()), shape))

    aws_sdk.StateTaskServiceAwsSdk._eval_service_task = _eval_service_task
    _patch_keyword_paths()
    _patch_history_quota()


#: AWS's hard quota of events in a standard workflow's execution history (read at each event).
HISTORY_QUOTA = 25_000


def _history_full() -> str:
    return f"The execution reached the maximum number of history events ({HISTORY_QUOTA})."


class _HistoryFull(Exception):
    """Raised where the execution's next event would be its 25,000th and not its end."""


def _patch_history_quota() -> None:
    """When an execution's history holds 24,999 events, its next event must end it: its success
    is recorded, anything else fails it with ``States.Runtime`` and AWS's cause, the failure being
    the 25,000th event. The event that would have been added raises :class:`_HistoryFull` inside
    the interpreter's loop, which records any exception as the execution's error; that error is
    then replaced by AWS's, as is any error recorded once the history is full (a ``Catch``
    around a branch that filled it cannot continue: it has no event left)."""
    import sys

    from moto.stepfunctions.parser.api import ExecutionFailedEventDetails, HistoryEventType
    from moto.stepfunctions.parser.asl.eval.environment import Environment
    from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager

    ends = {HistoryEventType.ExecutionSucceeded, HistoryEventType.ExecutionFailed,
            HistoryEventType.ExecutionAborted, HistoryEventType.ExecutionTimedOut}  # fmt: skip
    original_add = EventManager.add_event

    def add_event(self: Any, context: Any, event_type: Any, *args: Any, **kwargs: Any) -> int:
        if event_type not in ends and len(self._history_event_list) >= HISTORY_QUOTA - 1:
            raise _HistoryFull(_history_full())
        return original_add(self, context, event_type, *args, **kwargs)

    original_set_error = Environment.set_error

    def set_error(self: Any, error: Any) -> None:
        # In a Parallel branch or Map iteration the quota ends the branch, and the state
        # around it then fails on what it makes of that: the history is full either way.
        full = len(self.event_manager._history_event_list) >= HISTORY_QUOTA - 1
        if full or isinstance(sys.exc_info()[1], _HistoryFull):
            error = ExecutionFailedEventDetails(error="States.Runtime", cause=_history_full())
        original_set_error(self, error)

    EventManager.add_event = add_event
    Environment.set_error = set_error


def _patch_keyword_paths() -> None:
    from moto.stepfunctions.parser.asl.component.common.payload.payloadvalue.payloadbinding import (
        payload_binding as binding,
    )
    from moto.stepfunctions.parser.asl.component.common.payload.payloadvalue.payloadvaluelit.payload_value_str import (  # noqa: E501
        PayloadValueStr,
    )
    from moto.stepfunctions.parser.asl.component.common.string.string_expression import (
        StringJsonPath,
    )
    from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor

    treat_keyword_fields_as_paths(Preprocessor, binding, PayloadValueStr, StringJsonPath)
