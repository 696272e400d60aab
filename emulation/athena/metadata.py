"""Athena's catalog API on the Glue Data Catalog: what SQL clients read before any query.

On AWS the data catalog ``AwsDataCatalog`` *is* the account's Glue Data Catalog, and Athena
answers ``ListDataCatalogs``, ``GetDataCatalog``, ``ListDatabases``, ``GetDatabase``,
``ListTableMetadata`` and ``GetTableMetadata`` from it. SQL clients ask these first: PyAthena's
SQLAlchemy dialect (``inspect(engine).get_table_names()``, ``get_columns``, so JupySQL and
``pandas.read_sql`` with table reflection), JDBC drivers and BI tools list tables and columns
this way. moto keeps Athena databases of its own, apart from Glue, and has no table metadata at
all, so those clients failed on a world whose tables the stack had registered in Glue.

Here every one of them reads Glue for ``AwsDataCatalog`` (any case, as Athena matches catalog
names): the databases and tables the stack, a Glue crawler-like ``MSCK`` or a CTAS registered,
the columns and partition keys with Glue's types, and the storage descriptor as Athena reports it
in ``Parameters`` (``location``, ``inputformat``, ``outputformat``, ``serde.serialization.lib``,
``serde.param.*``, beside the table's own parameters). A missing database or table is a
``MetadataException`` whose message ends in AWS's ``(Service: AmazonDataCatalog; …; Error Code:
EntityNotFoundException)``, which clients parse to tell "no such table" from a failure.

**Not emulated**: the metadata of other catalogs (a ``LAMBDA`` or ``HIVE`` catalog created with
``CreateDataCatalog`` has no tables to read: its listing is a ``MetadataException`` saying so),
``WorkGroup``-scoped catalog permissions, and ``LastAccessTime`` (Glue's, when set).
"""

from __future__ import annotations

import json
import re
from typing import Any

from emulation._managed_state import embedded_client
from emulation._patching import moto_patch
from emulation.athena.engine import Catalog

#: The Glue-backed catalog every account has, as AWS names it.
GLUE_CATALOG = "AwsDataCatalog"
#: ``MaxResults`` bounds of ``ListDatabases`` and ``ListTableMetadata`` (AWS's API reference).
PAGE_LIMIT = 50


class MetadataError(Exception):
    """An Athena API error: ``code`` is its exception name (``MetadataException``…)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _not_found(operation: str, what: str) -> MetadataError:
    """Athena's wording for a catalog entry Glue does not have: clients (PyAthena) read the
    error code from the parenthesis that ends it."""
    return MetadataError(
        "MetadataException",
        f"{operation}: {what} not found (Service: AmazonDataCatalog; Status Code: 400; "
        "Error Code: EntityNotFoundException; Request ID: local; Proxy: null)",
    )


def is_glue_catalog(name: str | None) -> bool:
    """Whether ``name`` (``None``: the default) is the Glue-backed ``AwsDataCatalog``."""
    return name is None or name.lower() == GLUE_CATALOG.lower()


def _epoch(value: Any) -> float | None:
    return value.timestamp() if hasattr(value, "timestamp") else value


def _columns(columns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"Name": c["Name"], "Type": c.get("Type", "string")}
        | ({"Comment": c["Comment"]} if c.get("Comment") else {})
        for c in columns
    ]


def table_metadata(table: dict[str, Any]) -> dict[str, Any]:
    """A Glue table as Athena's ``TableMetadata`` describes it."""
    storage = table.get("StorageDescriptor") or {}
    serde = storage.get("SerdeInfo") or {}
    parameters: dict[str, str] = dict(table.get("Parameters") or {})
    described = {
        "location": storage.get("Location"),
        "inputformat": storage.get("InputFormat"),
        "outputformat": storage.get("OutputFormat"),
        "serde.serialization.lib": serde.get("SerializationLibrary"),
    }
    if table.get("TableType") == "EXTERNAL_TABLE":
        described["EXTERNAL"] = "TRUE"
    if table.get("Description"):
        described["comment"] = table["Description"]
    for key, value in (serde.get("Parameters") or {}).items():
        described[f"serde.param.{key}"] = value
    parameters.update({k: v for k, v in described.items() if v})
    answer: dict[str, Any] = {
        "Name": table["Name"],
        "TableType": table.get("TableType", "EXTERNAL_TABLE"),
        "Columns": _columns(storage.get("Columns") or []),
        "PartitionKeys": _columns(table.get("PartitionKeys") or []),
        "Parameters": parameters,
    }
    for ours, glue in (("CreateTime", "CreateTime"), ("LastAccessTime", "LastAccessTime")):
        if table.get(glue) is not None:
            answer[ours] = _epoch(table[glue])
    return answer


def page_of(items: list[Any], max_results: Any, token: Any) -> tuple[list[Any], str | None]:
    """One page of ``items`` and the next token; out-of-range values are refused as AWS does."""
    try:
        size = PAGE_LIMIT if max_results is None else int(max_results)
        start = int(token or 0)
    except (TypeError, ValueError):
        raise MetadataError("InvalidRequestException", "Invalid pagination token") from None
    if not 1 <= size <= PAGE_LIMIT:
        raise MetadataError(
            "InvalidRequestException",
            f"1 validation error detected: Value '{max_results}' at 'maxResults' failed to "
            f"satisfy constraint: Member must have value between 1 and {PAGE_LIMIT}",
        )
    if start < 0 or start > len(items):
        raise MetadataError("InvalidRequestException", "Invalid pagination token")
    end = start + size
    return items[start:end], (str(end) if end < len(items) else None)


class GlueMetadata:
    """The Athena catalog calls answered from the Glue Data Catalog of ``region``."""

    def __init__(self, region: str, glue: Any = None) -> None:
        self.catalog = Catalog(glue or embedded_client("glue", region))

    def _database(self, operation: str, name: str) -> dict[str, Any]:
        glue = self.catalog.glue
        try:
            return glue.get_database(Name=name.lower())["Database"]
        except glue.exceptions.EntityNotFoundException:
            raise _not_found(operation, f"Database {name}") from None

    def get_database(self, name: str) -> dict[str, Any]:
        database = self._database("GetDatabase", name)
        return {
            "Name": database["Name"],
            **({"Description": database["Description"]} if database.get("Description") else {}),
            "Parameters": dict(database.get("Parameters") or {}),
        }

    def list_databases(self, max_results: Any, token: Any) -> dict[str, Any]:
        names = self.catalog.databases()
        page, following = page_of(names, max_results, token)
        answer: dict[str, Any] = {"DatabaseList": [self.get_database(n) for n in page]}
        if following:
            answer["NextToken"] = following
        return answer

    def get_table_metadata(self, database: str, name: str) -> dict[str, Any]:
        self._database("GetTableMetadata", database)
        table = self.catalog.table(database, name)
        if table is None:
            raise _not_found("GetTableMetadata", f"Table {database}.{name}")
        return table_metadata(table)

    def list_table_metadata(
        self, database: str, expression: str | None, max_results: Any, token: Any
    ) -> dict[str, Any]:
        self._database("ListTableMetadata", database)
        tables = self.catalog.tables(database)
        if expression:
            try:
                pattern = re.compile(expression, re.IGNORECASE)
            except re.error as exc:
                raise MetadataError(
                    "InvalidRequestException", f"Expression {expression!r} is not a regex: {exc}"
                ) from None
            tables = [t for t in tables if pattern.fullmatch(t["Name"])]
        page, following = page_of(tables, max_results, token)
        answer: dict[str, Any] = {"TableMetadataList": [table_metadata(t) for t in page]}
        if following:
            answer["NextToken"] = following
        return answer


@moto_patch("athena-metadata")
def install_in_process() -> None:
    """Answer Athena's catalog calls for ``AwsDataCatalog`` from Glue (idempotent)."""
    from moto.athena.responses import AthenaResponse
    from moto.core.exceptions import JsonRESTError

    original = {
        name: getattr(AthenaResponse, name)
        for name in ("list_data_catalogs", "get_data_catalog", "get_database", "list_databases")
    }

    def answered(method):  # type: ignore[no-untyped-def]
        """``method`` with its MetadataError as the JSON error AWS answers."""

        def handler(self):  # type: ignore[no-untyped-def]
            try:
                return method(self)
            except MetadataError as exc:
                raise JsonRESTError(exc.code, exc.message) from None

        handler.__name__ = method.__name__
        return handler

    def glue_only(self, operation: str) -> None:  # type: ignore[no-untyped-def]
        catalog = self._get_param("CatalogName")
        if not is_glue_catalog(catalog):
            raise MetadataError(
                "MetadataException",
                f"{operation}: catalog {catalog!r} is not the Glue catalog ({GLUE_CATALOG}); "
                "the metadata of other catalogs is not emulated by the local world",
            )

    @answered
    def list_data_catalogs(self):  # type: ignore[no-untyped-def]
        listed = json.loads(original["list_data_catalogs"](self))["DataCatalogsSummary"]
        others = [c for c in listed if not is_glue_catalog(c["CatalogName"])]
        return json.dumps(
            {"DataCatalogsSummary": [{"CatalogName": GLUE_CATALOG, "Type": "GLUE"}, *others]}
        )

    @answered
    def get_data_catalog(self):  # type: ignore[no-untyped-def]
        name = self._get_param("Name")
        if is_glue_catalog(name):
            return json.dumps(
                {
                    "DataCatalog": {
                        "Name": GLUE_CATALOG,
                        "Description": "AWS Glue Data Catalog",
                        "Type": "GLUE",
                        "Parameters": {"catalog-id": self.current_account},
                    }
                }
            )
        if json.loads(original["get_data_catalog"](self)).get("DataCatalog") is None:
            raise MetadataError("InvalidRequestException", f"Data catalog {name} was not found")
        return original["get_data_catalog"](self)

    @answered
    def get_database(self):  # type: ignore[no-untyped-def]
        if not is_glue_catalog(self._get_param("CatalogName")):
            return original["get_database"](self)
        database = GlueMetadata(self.region).get_database(self._get_param("DatabaseName"))
        return json.dumps({"Database": database})

    @answered
    def list_databases(self):  # type: ignore[no-untyped-def]
        if not is_glue_catalog(self._get_param("CatalogName")):
            return original["list_databases"](self)
        return json.dumps(
            GlueMetadata(self.region).list_databases(
                self._get_param("MaxResults"), self._get_param("NextToken")
            )
        )

    @answered
    def get_table_metadata(self):  # type: ignore[no-untyped-def]
        glue_only(self, "GetTableMetadata")
        table = GlueMetadata(self.region).get_table_metadata(
            self._get_param("DatabaseName"), self._get_param("TableName")
        )
        return json.dumps({"TableMetadata": table})

    @answered
    def list_table_metadata(self):  # type: ignore[no-untyped-def]
        glue_only(self, "ListTableMetadata")
        return json.dumps(
            GlueMetadata(self.region).list_table_metadata(
                self._get_param("DatabaseName"),
                self._get_param("Expression"),
                self._get_param("MaxResults"),
                self._get_param("NextToken"),
            )
        )

    AthenaResponse.list_data_catalogs = list_data_catalogs
    AthenaResponse.get_data_catalog = get_data_catalog
    AthenaResponse.get_database = get_database
    AthenaResponse.list_databases = list_databases
    AthenaResponse.get_table_metadata = get_table_metadata
    AthenaResponse.list_table_metadata = list_table_metadata
