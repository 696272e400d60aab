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

* Transitions, checked when a state machine is created or updated, as AWS checks them
  (``InvalidDefinition``; moto only parses): a ``StartAt``, ``Next``, ``Default``,
  ``Choices[].Next`` or ``Catch[].Next`` naming no state of its scope, a state nothing reaches,
  and a scope with no terminal state (:func:`transition_problems`). A definition with such a
  mistake failed only when an execution reached it.

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
    _patch_definition_checks()


def transition_problems(definition: Any) -> list[str]:
    """What AWS's validator says about a definition's transitions, in its words and order: per
    scope (the machine, each ``Parallel`` branch, each ``Map``'s ``ItemProcessor`` or
    ``Iterator``), every target that names no state of the scope (``MISSING_TRANSITION_TARGET:
    Missing 'Next' target: X at /States/A/Next``, the word ``Next`` whatever the field), then
    either ``MISSING_END_STATE: Workflow has no terminal state`` or each state the scope's
    ``StartAt`` does not reach (``State "X" is not reachable.``). A definition that is not a JSON
    object of states is left to moto's parser, which refuses it."""
    problems: list[str] = []

    def scope(body: Any, at: str) -> None:
        states = body.get("States") if isinstance(body, dict) else None
        if not isinstance(states, dict):
            return
        edges: dict[str, list[str]] = {}
        missing, terminal = [], False

        def target(name: Any, where: str, source: str) -> None:
            if not isinstance(name, str):
                return
            if name in states:
                edges.setdefault(source, []).append(name)
            else:
                missing.append(f"MISSING_TRANSITION_TARGET: Missing 'Next' target: {name} at "
                               f"{where}")  # fmt: skip

        start = body.get("StartAt")
        target(start, f"{at}/StartAt", "")
        for name, state in states.items():
            if not isinstance(state, dict):
                continue
            here = f"{at}/States/{name}"
            kind = state.get("Type")
            terminal |= kind in ("Succeed", "Fail") or state.get("End") is True
            target(state.get("Next"), f"{here}/Next", name)
            target(state.get("Default"), f"{here}/Default", name)
            for i, choice in enumerate(state.get("Choices") or []):
                if isinstance(choice, dict):
                    target(choice.get("Next"), f"{here}/Choices[{i}]/Next", name)
            for i, catch in enumerate(state.get("Catch") or []):
                if isinstance(catch, dict):
                    target(catch.get("Next"), f"{here}/Catch[{i}]/Next", name)
        problems.extend(missing)
        if not terminal:
            problems.append("MISSING_END_STATE: Workflow has no terminal state")
        else:
            reached, todo = set(), [start] if start in states else []
            while todo:
                name = todo.pop()
                if name not in reached:
                    reached.add(name)
                    todo.extend(edges.get(name, []))
            for name in (n for n in states if n not in reached):
                problems.append(f'MISSING_TRANSITION_TARGET: State "{name}" is not reachable. '
                                f"at {at}/States/{name}")  # fmt: skip
        for name, state in states.items():  # the scopes inside, after this one's
            if not isinstance(state, dict):
                continue
            for i, branch in enumerate(state.get("Branches") or []):
                scope(branch, f"{at}/States/{name}/Branches[{i}]")
            for field in ("ItemProcessor", "Iterator"):
                if isinstance(state.get(field), dict):
                    scope(state[field], f"{at}/States/{name}/{field}")

    scope(definition, "")
    return problems


def _patch_definition_checks() -> None:
    """moto's ``CreateStateMachine`` and ``UpdateStateMachine`` parse the definition; AWS also
    refuses one whose transitions are broken (:func:`transition_problems`).

    And the errors of moto's interpreter's backend get their codes: its exception classes name
    theirs in ``code`` (``InvalidDefinition``), which moto's ``AWSError`` base reads as the HTTP
    status, and answer with no error type at all (``__type: null``), so that an SDK can catch
    none of them by name (``sfn.exceptions.InvalidDefinition``)."""
    import json

    import moto.stepfunctions.parser.api as api
    from moto.core.exceptions import AWSError
    from moto.stepfunctions.parser.api import InvalidDefinition
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    for error in vars(api).values():
        if not (isinstance(error, type) and issubclass(error, AWSError)) or error is AWSError:
            continue
        if isinstance(getattr(error, "code", None), str) and error.TYPE is None:
            error.TYPE = error.code
            error.STATUS = getattr(error, "status_code", 400)

    original = StepFunctionsParserBackend._validate_definition

    def validate(definition: str) -> None:
        original(definition)  # a definition that does not parse is refused by moto, as before
        try:
            document = json.loads(definition)
        except ValueError:
            return
        problems = transition_problems(document)
        if problems:
            raise InvalidDefinition(
                message=f"Invalid State Machine Definition: '{', '.join(problems)}'"
            )

    StepFunctionsParserBackend._validate_definition = staticmethod(validate)


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
