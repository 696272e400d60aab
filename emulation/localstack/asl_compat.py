"""Corrections of the Step Functions interpreter that moto and LocalStack share (moto's is a copy
of LocalStack's): used by the harness's moto patch (``emulation/stepfunctions``) and by
LocalStack's launcher, which runs under LocalStack's own Python and imports only this file and
the standard library.
"""

from __future__ import annotations

import datetime as dt
from typing import Any


def as_aws_json(value: Any) -> Any:
    """An SDK response value → what an ``aws-sdk`` task result holds on AWS: JSON, so
    timestamps are ISO-8601 text and bodies (streams, bytes) are text."""
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


def treat_keyword_fields_as_paths(
    preprocessor: Any, binding: Any, payload_value_str: Any, string_json_path: Any
) -> None:
    """Path fields named like ASL keywords: the shared grammar lexes ``"RoleArn.$"`` (and the
    other keyword names) inside a payload template as the keyword, so the field reaches the
    service as a literal ``RoleArn.$`` (moto) or fails the task (LocalStack). AWS treats every
    ``<name>.$`` field of a payload template as a path. The arguments are the interpreter's own
    classes: its ``Preprocessor``, its ``payload_binding`` module, ``PayloadValueStr`` and
    ``StringJsonPath``."""
    original = preprocessor.visitPayload_binding_value

    def visit(self: Any, ctx: Any) -> Any:
        bound = original(self, ctx)
        value = bound.payload_value
        if (
            bound.field.endswith(".$")
            and isinstance(value, payload_value_str)
            and isinstance(value.val, str)
            and value.val.startswith("$")
            and not value.val.startswith("$$")  # context-object paths stay as parsed
        ):
            return binding.PayloadBindingStringExpressionSimple(
                field=bound.field[:-2], string_expression_simple=string_json_path(value.val)
            )
        return bound

    preprocessor.visitPayload_binding_value = visit
