"""Glue's SearchTables over the catalog, as awswrangler and catalog browsers call it."""

from __future__ import annotations

import datetime as dt

import botocore.exceptions
import pytest

from emulation import World
from emulation.glue.search import SearchInputError, search, tokens


def _catalog(world: World) -> None:
    glue = world.client("glue")
    for database in ("sales", "ops"):
        glue.create_database(DatabaseInput={"Name": database})
    tables = {
        ("sales", "forecast_enriched"): ("Weekly forecast", [("item_id", "the item")]),
        ("sales", "staged_cdc"): (None, [("store_id", None)]),
        ("sales", "customer-link"): (None, [("id", None)]),
        ("ops", "xxlinkyy"): ("pipeline runs", [("run", "forecast run id")]),
    }
    for (database, name), (description, columns) in tables.items():
        table = {
            "Name": name,
            "TableType": "EXTERNAL_TABLE",
            "Parameters": {"classification": "parquet" if "link" not in name else "csv"},
            "StorageDescriptor": {
                "Columns": [
                    {"Name": c, "Type": "string", **({"Comment": m} if m else {})}
                    for c, m in columns
                ],
                "Location": f"s3://bucket/{name}/",
            },
        }
        if description:
            table["Description"] = description
        glue.create_table(DatabaseName=database, TableInput=table)


def _names(answer: dict) -> list[str]:
    return [f"{t['DatabaseName']}.{t['Name']}" for t in answer["TableList"]]


def test_search_tables_finds_by_text_filters_sorts_and_pages(aws: World, monkeypatch) -> None:
    if aws.kind != "embedded":
        pytest.skip(
            "SearchTables is answered by the embedded world's patch (moto's server started "
            "elsewhere lacks it); this test covers it in the embedded world"
        )
    _catalog(aws)
    glue = aws.client("glue")
    assert _names(glue.search_tables(SearchText="forecast")) == [
        "ops.xxlinkyy",  # a column comment says "forecast run id"
        "sales.forecast_enriched",
    ]
    assert _names(glue.search_tables(SearchText='"Weekly forecast"')) == ["sales.forecast_enriched"]
    assert _names(glue.search_tables(SearchText="weekly item")) == ["sales.forecast_enriched"]
    assert glue.search_tables(SearchText="nothing-like-this")["TableList"] == []
    # Glue's fuzzy match of a filter: the value must be one of the field's tokens.
    linked = glue.search_tables(Filters=[{"Key": "Name", "Value": "link"}])
    assert _names(linked) == ["sales.customer-link"]
    ops = glue.search_tables(Filters=[{"Key": "DatabaseName", "Value": "ops"}])
    assert _names(ops) == ["ops.xxlinkyy"]
    csv = glue.search_tables(Filters=[{"Key": "classification", "Value": "csv"}])
    assert _names(csv) == ["ops.xxlinkyy", "sales.customer-link"]
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    recent = glue.search_tables(
        Filters=[{"Key": "CreateTime", "Value": later, "Comparator": "LESS_THAN"}]
    )
    assert len(recent["TableList"]) == 4
    newer = glue.search_tables(
        Filters=[{"Key": "CreateTime", "Value": later, "Comparator": "GREATER_THAN"}]
    )
    assert newer["TableList"] == []
    ordered = glue.search_tables(SortCriteria=[{"FieldName": "Name", "Sort": "DESC"}])
    assert [t["Name"] for t in ordered["TableList"]] == [
        "xxlinkyy", "staged_cdc", "forecast_enriched", "customer-link"]  # fmt: skip
    assert ordered["TableList"][0]["StorageDescriptor"]["Location"] == "s3://bucket/xxlinkyy/"
    pages, token = [], None
    while True:
        page = glue.search_tables(MaxResults=3, **({"NextToken": token} if token else {}))
        pages.append(_names(page))
        token = page.get("NextToken")
        if not token:
            break
    assert [len(p) for p in pages] == [3, 1]
    assert [name for page in pages for name in page] == _names(glue.search_tables())
    assert glue.search_tables(ResourceShareType="FOREIGN")["TableList"] == []
    for bad in (
        {"NextToken": "elsewhere"},
        {"Filters": [{"Key": "CreateTime", "Value": "yesterday", "Comparator": "LESS_THAN"}]},
        {"SortCriteria": [{"FieldName": "Colour", "Sort": "ASC"}]},
    ):
        with pytest.raises(botocore.exceptions.ClientError) as refused:
            glue.search_tables(**bad)
        assert refused.value.response["Error"]["Code"] == "InvalidInputException", bad

    # awswrangler's own calls of it
    wr = pytest.importorskip("awswrangler", reason="awswrangler is a dev dependency")
    import boto3

    for name, value in aws.environment().items():
        if name.startswith("AWS_"):
            monkeypatch.setenv(name, value)
    session = boto3.Session(region_name=aws.region)
    found = wr.catalog.tables(search_text="forecast", boto3_session=session)
    assert sorted(found["Table"]) == ["forecast_enriched", "xxlinkyy"]
    listed = list(wr.catalog.search_tables(text="link", boto3_session=session))
    assert [t["Name"] for t in listed] == ["customer-link"]


def test_search_splits_values_into_tokens_and_refuses_bad_input() -> None:
    assert tokens("customer-link_2024:x#y z.csv") == {
        "customer", "link", "2024", "x", "y", "z", "csv"}  # fmt: skip
    table = {"Name": "a", "DatabaseName": "d", "CreateTime": dt.datetime(2024, 1, 1)}
    answer = search([table], None, [{"Key": "CreateTime", "Value": "1704067200",
                                     "Comparator": "EQUALS"}], None, None, None, None)  # fmt: skip
    assert answer["TableList"] == [table]  # seconds since 1970 and a naive time, both UTC
    with pytest.raises(SearchInputError, match="MaxResults"):
        search([table], None, None, None, 1001, None, None)
    with pytest.raises(SearchInputError, match="Comparator"):
        search([table], None, [{"Key": "Name", "Value": "a", "Comparator": "LIKE"}],
               None, None, None, None)  # fmt: skip
