"""Step Functions state machines interpreted as AWS interprets them, where moto's parser differs.

moto executes state machines (when execution is switched on); in the embedded world this module
corrects two differences that real workflows meet:

* ``aws-sdk:*`` task results: moto hands the task the raw boto3 response. AWS returns JSON: an S3
  ``GetObject`` ``Body`` is the object's text (so ``States.StringToJson($.Body)`` works),
  timestamps are ISO-8601 strings.
* Path fields named like ASL keywords: moto's grammar lexes ``"RoleArn.$"`` (and the other
  keyword names) as a keyword, so ``"RoleArn.$": "$.settings.role_arn"`` reached the service as a
  literal field ``RoleArn.$``. AWS treats every ``<name>.$`` field of a payload template as a path.

Not emulated: AWS's 256 KiB payload limit on such a result, binary bodies (decoded as UTF-8 with
replacement), the ``<Service>.<ErrorCode>`` error names of aws-sdk tasks (moto names every service
error ``<service>.<service>Exception``; workflows here catch ``States.TaskFailed``/``States.ALL``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from emulation._patching import moto_patch


def as_aws_json(value: Any) -> Any:
    """A boto3 response value → what an ``aws-sdk`` task result holds."""
    if isinstance(value, dict):
        return {k: as_aws_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_aws_json(v) for v in value]
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if hasattr(value, "read") and callable(value.read):  # botocore StreamingBody and wrappers
        return value.read().decode("utf-8", errors="replace")
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value


@moto_patch("stepfunctions")
def install_in_process() -> None:
    """Patch the in-process moto's aws-sdk task (idempotent)."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_aws_sdk as aws_sdk,
    )

    original = aws_sdk.StateTaskServiceAwsSdk._eval_service_task

    def _eval_service_task(self: Any, env: Any, *args: Any, **kwargs: Any) -> None:
        original(self, env, *args, **kwargs)
        env.stack.append(as_aws_json(env.stack.pop()))

    aws_sdk.StateTaskServiceAwsSdk._eval_service_task = _eval_service_task
    _patch_keyword_paths()


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

    original = Preprocessor.visitPayload_binding_value

    def visit(self: Any, ctx: Any) -> Any:
        bound = original(self, ctx)
        value = bound.payload_value
        if (
            bound.field.endswith(".$")
            and isinstance(value, PayloadValueStr)
            and isinstance(value.val, str)
            and value.val.startswith("$")
            and not value.val.startswith("$$")  # context-object paths stay as moto parses them
        ):
            return binding.PayloadBindingStringExpressionSimple(
                field=bound.field[:-2], string_expression_simple=StringJsonPath(value.val)
            )
        return bound

    Preprocessor.visitPayload_binding_value = visit
