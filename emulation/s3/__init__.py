"""S3 Select requests the local world cannot answer, refused as such instead of a server error.

moto answers ``SelectObjectContent`` with its own small PartiQL engine over CSV and JSON input.
Over Parquet input it failed inside the server (it decodes every object as UTF-8 text), and an
expression beyond its engine (``WHERE s.a > 1`` on a number, most functions) failed the same way;
SDKs take such a ``500`` for a passing fault and retry it five times before showing a page of
HTML. Both are now answered at once with the error code ``NotImplemented`` (status 400, which
SDKs do not retry) naming what is not emulated
(awswrangler's ``wr.s3.select_query`` over a Parquet object was the case found), and text that is
not UTF-8 with S3's ``InvalidTextEncoding``.

Not emulated: S3 Select over Parquet, and whatever moto's PartiQL subset lacks; AWS closed S3
Select to new customers in July 2024, and the world's Athena queries any table's objects
(:mod:`emulation.athena`).
"""

from __future__ import annotations

import logging
from typing import Any

from emulation._patching import moto_patch

logger = logging.getLogger(__name__)


@moto_patch("s3-select")
def install_in_process() -> None:
    """Answer S3 Select requests moto's engine cannot carry out as not emulated (idempotent)."""
    from moto.s3.exceptions import S3ClientError
    from moto.s3.models import S3Backend

    original = S3Backend.select_object_content

    def select_object_content(
        self: Any,
        bucket_name: str,
        key_name: str,
        select_query: str,
        input_details: dict[str, Any],
        output_details: dict[str, Any],
    ) -> Any:
        if "Parquet" in (input_details or {}):
            raise S3ClientError(
                "NotImplemented",
                "S3 Select over Parquet objects is not emulated by the local world (CSV and "
                "JSON input are); query the table with the world's Athena instead",
            )
        try:
            return original(
                self, bucket_name, key_name, select_query, input_details, output_details
            )
        except UnicodeDecodeError:
            raise S3ClientError(
                "InvalidTextEncoding",
                "Invalid encoding type. Only UTF-8 encoding is supported.",
            ) from None
        except S3ClientError:
            raise
        except Exception as exc:  # moto's PartiQL engine failing on what it does not know
            logger.info("S3 Select %r failed in moto's engine: %r", select_query, exc)
            raise S3ClientError(
                "NotImplemented",
                f"the expression {select_query!r} is beyond the local world's S3 Select "
                f"(moto's PartiQL subset failed with {type(exc).__name__}: {exc})",
            ) from None

    S3Backend.select_object_content = select_object_content
