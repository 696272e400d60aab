"""S3 Select in the local world: what moto's engine answers, and what it cannot, refused at once."""

from __future__ import annotations

import io

import botocore.exceptions
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from emulation import World


def _select(s3, key: str, expression: str, source: dict) -> bytes:
    answer = s3.select_object_content(Bucket="selected", Key=key, Expression=expression,
                                      ExpressionType="SQL", InputSerialization=source,
                                      OutputSerialization={"JSON": {}})  # fmt: skip
    return b"".join(e["Records"]["Payload"] for e in answer["Payload"] if "Records" in e)


def test_s3_select_answers_text_and_refuses_what_it_cannot_without_retries(aws: World) -> None:
    if aws.kind != "embedded":
        pytest.skip(
            "the S3 Select refusals are the embedded world's patch (moto's server started "
            "elsewhere answers 500); this test covers them in the embedded world"
        )
    s3 = aws.client("s3", retries=0)  # a 500 would fail here at once instead of being retried
    s3.create_bucket(Bucket="selected")
    sink = io.BytesIO()
    pq.write_table(pa.table({"a": [1, 2]}), sink)
    s3.put_object(Bucket="selected", Key="rows.parquet", Body=sink.getvalue())
    s3.put_object(Bucket="selected", Key="rows.json", Body=b'{"a":1}\n{"a":2}\n')
    s3.put_object(Bucket="selected", Key="latin1.csv", Body="é,1\n".encode("latin-1"))
    lines = {"JSON": {"Type": "LINES"}}
    assert _select(s3, "rows.json", "SELECT * FROM S3Object s", lines) == b'{"a":1}\n{"a":2}\n'
    for key, expression, source, code, said in (
        ("rows.parquet", "SELECT * FROM S3Object", {"Parquet": {}}, "NotImplemented", "Parquet"),
        ("rows.json", "SELECT * FROM S3Object s WHERE s.a > 1", lines, "NotImplemented",
         "WHERE s.a > 1"),
        ("latin1.csv", "SELECT * FROM S3Object", {"CSV": {}}, "InvalidTextEncoding", "UTF-8"),
    ):  # fmt: skip
        with pytest.raises(botocore.exceptions.ClientError) as refused:
            _select(s3, key, expression, source)
        error = refused.value.response["Error"]
        assert (error["Code"], refused.value.response["ResponseMetadata"]["HTTPStatusCode"]) == (
            code, 400)  # fmt: skip
        assert said in error["Message"]
