"""What a synthetic world is made of: the scenario sections the simulator reads.

These models are the simulator's own input contract; the scenario schema (``harness.scenario``)
embeds them, so a scenario file is validated against exactly what the simulator understands.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from pipeline.contracts.cdc import CAMPAIGNS, PRODUCTS, SALES

ANOMALY_TYPES = ("spike", "drop", "price_glitch", "duplicate_burst")
#: Series × days of a world's daily grid, simulated or replayed (built in memory: ~10 float
#: arrays of this size stay within a few GiB).
MAX_GRID_CELLS = 40_000_000
Share = Annotated[float, Field(ge=0.0, le=1.0)]


def _admits(annotation: Any, kind: type) -> bool:
    """Whether a field's type takes ``kind`` anywhere in it (``bool | int``, ``list[bool]``,
    ``Literal[True]``, ``Any``; of a mapping, its values)."""
    if annotation is kind or annotation is Any:
        return True
    if get_origin(annotation) is Literal:
        return any(isinstance(arg, kind) for arg in get_args(annotation))
    if get_origin(annotation) is dict:  # what its values take
        return _admits(get_args(annotation)[1], kind)
    return any(_admits(arg, kind) for arg in get_args(annotation))


def _booleans_in(value: Any, mappings: bool) -> bool:
    """A boolean in the value, in its lists, and in its mappings where the field is a mapping
    (``failed_runs: {job: 1}``); a section's mapping is checked by the section itself."""
    if isinstance(value, bool):
        return True
    if isinstance(value, list | tuple):
        return any(_booleans_in(v, mappings) for v in value)
    return (
        mappings and isinstance(value, dict) and any(_booleans_in(v, True) for v in value.values())
    )


def _is_mapping(annotation: Any) -> bool:
    return get_origin(annotation) is dict or any(_is_mapping(a) for a in get_args(annotation))


class ScenarioModel(BaseModel):
    """The base of every scenario section: unknown keys are refused, and so is a YAML boolean
    where a number or a text is meant.

    Why the second: pydantic reads ``True`` as the number 1 (and ``1.0``), and YAML 1.1 reads
    ``yes``, ``no``, ``on`` and ``off`` as booleans. So ``products: yes`` would make a
    one-product world, and ``catalog: {products: on}`` would pass every check that 1 passes; a
    text field would say only that it wants a string. The message says what YAML did.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_boolean_for_a_number_or_text(cls, value: Any, info: ValidationInfo) -> Any:
        annotation = cls.model_fields[info.field_name].annotation
        if not _booleans_in(value, _is_mapping(annotation)):
            return value
        if _admits(annotation, bool):
            return value
        yaml = "YAML reads true/false, yes/no and on/off as booleans"
        if _admits(annotation, str):
            raise ValueError(f"a boolean where a text is meant ({yaml}; quote it to mean the text)")
        if _admits(annotation, int) or _admits(annotation, float):
            raise ValueError(f"a boolean where a number is meant ({yaml})")
        return value  # a section or a date: pydantic's own message says what is meant


class Catalog(ScenarioModel):
    """The product catalog."""

    products: int = Field(ge=1, le=200_000)
    categories: int = Field(default=8, ge=1, le=1_000)
    brands: int = Field(default=20, ge=1, le=10_000)
    new_product_share: Share = Field(
        default=0.1, description="share of products launched during the history (cold start)"
    )
    discontinued_share: Share = Field(default=0.05, description="share discontinued in history")
    long_tail_share: Share = Field(
        default=0.3, description="share of slow, intermittent items (many zero days)"
    )

    @model_validator(mode="after")
    def _fits(self) -> Catalog:
        if self.categories > self.products:
            raise ValueError(
                f"categories ({self.categories}) cannot exceed products ({self.products})"
            )
        return self


class Calendar(ScenarioModel):
    """The simulated clock: history (bulk-loaded) then the streaming window."""

    start: dt.date
    history_days: int = Field(ge=28, le=3_650)
    stream_days: int = Field(ge=1, le=60)
    timezone: Literal["UTC"] = "UTC"

    @model_validator(mode="after")
    def _ends_in_calendar(self) -> Calendar:
        if self.start.toordinal() + self.history_days + self.stream_days > dt.date.max.toordinal():
            raise ValueError(
                f"start {self.start} + history_days + stream_days runs past {dt.date.max}"
            )
        return self


class Campaigns(ScenarioModel):
    per_month: float = Field(default=2.0, ge=0.0, le=1_000.0)
    discount_min: float = Field(default=0.05, gt=0.0, lt=1.0)
    discount_max: float = Field(default=0.4, gt=0.0, lt=1.0)
    days_min: int = Field(default=3, ge=1, le=365)
    days_max: int = Field(default=14, ge=1, le=365)

    @model_validator(mode="after")
    def _ordered(self) -> Campaigns:
        if self.discount_min > self.discount_max:
            raise ValueError(
                f"discount_min ({self.discount_min}) is above discount_max ({self.discount_max})"
            )
        if self.days_min > self.days_max:
            raise ValueError(f"days_min ({self.days_min}) is above days_max ({self.days_max})")
        return self


class Anomalies(ScenarioModel):
    rate: Share = Field(default=0.01, description="share of product-days in the window hit")
    types: list[Literal["spike", "drop", "price_glitch", "duplicate_burst"]] = Field(
        default_factory=lambda: list(ANOMALY_TYPES), min_length=1
    )

    @field_validator("types")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("anomaly types are listed more than once")
        return value


class Ecommerce(ScenarioModel):
    """The optional path where the web shop puts its own order events on the CDC stream."""

    direct_events: bool = False
    channels: list[Literal["web", "app"]] = Field(default_factory=lambda: ["web"], min_length=1)


class Stores(ScenarioModel):
    """Locations: physical stores in regions and, optionally, one web location.

    Without this section the world has no locations (sales carry no store). With it, demand is
    simulated per product and store: the store's size and format, its region's seasonality and
    local holiday, openings (a new store ramps up: a cold start per item), closings, local
    promotions and stock-outs per store.
    """

    count: int = Field(ge=1, le=500, description="physical stores")
    regions: int = Field(default=3, ge=1, le=50)
    web_location: bool = Field(
        default=True, description="a web location fulfilling online orders besides the stores"
    )
    opening_share: Share = Field(
        default=0.1,
        description="share of stores opened during the history (cold starts); with two or "
        "more, one opens after the window, its row created during it",
    )
    closing_share: Share = Field(default=0.0, description="share of stores closed in history")
    local_campaign_share: Share = Field(
        default=0.3, description="share of campaigns run by a single store"
    )

    @model_validator(mode="after")
    def _fits(self) -> Stores:
        if self.regions > self.count:
            raise ValueError(f"regions ({self.regions}) cannot exceed count ({self.count})")
        return self


class WorldSpec(ScenarioModel):
    """Everything the simulator needs: one seed, the catalog, the clock, campaigns, anomalies."""

    seed: int = Field(ge=0, le=2**63 - 1)
    catalog: Catalog
    calendar: Calendar
    campaigns: Campaigns = Campaigns()
    anomalies: Anomalies = Anomalies()
    ecommerce: Ecommerce = Ecommerce()
    stores: Stores | None = None


# ------------------------------------------------------------------------ your own data
#: Contract columns a source file may map, per table. Sales may also carry the product attributes
#: (``name``, ``category`` …) when there is no products file: transaction logs often do.
SOURCE_COLUMNS = {"sales": tuple(SALES.names), "products": tuple(PRODUCTS.names),
                  "campaigns": tuple(CAMPAIGNS.names)}  # fmt: skip
PRODUCT_ATTRIBUTES = ("name", "category", "brand", "price_tier", "list_price")


#: ``date_format`` values for numbers: seconds and milliseconds since 1970-01-01 UTC.
UNIX_FORMATS = {"unix": "s", "unix_ms": "ms"}


class SourceTable(ScenarioModel):
    """One table of the user's data: a CSV or Parquet file and how its columns map to ours.

    ``columns`` maps a contract column to the file's column, or to a list of the file's columns
    whose values are joined with a space (a date and a time of day, say). Unmapped contract
    columns fall back to a file column of the same name, then to the documented default.
    """

    path: str = Field(min_length=1, max_length=4096)
    columns: dict[str, str | list[str]] = Field(default_factory=dict)
    # A CSV's text encoding, as Python names it (``cp1252``, ``latin-1``, ``utf-16``): exports
    # from spreadsheets and older systems are often not UTF-8. Parquet has its own.
    encoding: str = Field(default="utf-8", min_length=1, max_length=64)
    # How the file writes its dates and times, when its values cannot say: a strftime pattern
    # (``%d/%m/%Y %H:%M``), or ``unix`` / ``unix_ms`` for seconds / milliseconds since 1970.
    # Without it a numeric date's order (day or month first) is read from the column's values.
    date_format: str | None = Field(default=None, min_length=1, max_length=100)

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        try:
            "".encode(value)  # a text encoding: codecs.lookup also knows base64, zlib, rot13
        except LookupError:
            raise ValueError(f"unknown text encoding {value!r} (e.g. utf-8, cp1252, latin-1, "
                             "utf-16)") from None  # fmt: skip
        return value

    @field_validator("date_format")
    @classmethod
    def _a_date_format(cls, value: str | None) -> str | None:
        if value is None or value in UNIX_FORMATS:
            return value
        if "%" not in value:
            raise ValueError(f"date_format {value!r} is neither a strftime pattern (e.g. "
                             "'%d/%m/%Y %H:%M') nor unix or unix_ms")  # fmt: skip
        # A pattern must read back what it writes: '%Q' or a stray '%' would otherwise fail
        # only when the file is read, as a parser's traceback.
        moment = dt.datetime(2001, 2, 3, 4, 5, 6, tzinfo=dt.UTC)
        try:
            dt.datetime.strptime(moment.strftime(value), value)
        except ValueError as error:
            raise ValueError(f"date_format {value!r} is not a pattern dates can be read "
                             f"with: {error}") from None  # fmt: skip
        return value


class Source(ScenarioModel):
    """Replay the user's own tables (or a shipped public dataset) instead of simulating a world.

    The last ``stream_days`` days of sales are streamed change by change; everything before is
    the full load, as DMS would replicate an existing database.
    """

    # A public dataset an installed package ships, replayed like a user's files.
    dataset: Literal["pizzaplace"] | None = None
    sales: SourceTable | None = None
    products: SourceTable | None = None
    campaigns: SourceTable | None = None
    stream_days: int = Field(default=2, ge=1, le=60)
    max_items: int | None = Field(default=None, ge=1, le=1_000_000)
    # A sales row that does not fit the contract: ``stop`` the run naming it, or ``set_aside``
    # (replay the other rows; the run lists it in errors/source-rows.ndjson and counts it).
    bad_rows: Literal["stop", "set_aside"] = "stop"

    @model_validator(mode="after")
    def _one_origin(self) -> Source:
        if (self.dataset is None) == (self.sales is None):
            raise ValueError("give either dataset (a shipped one) or sales (your own file)")
        if self.dataset is not None and (self.products or self.campaigns):
            raise ValueError(f"dataset {self.dataset!r} brings its own tables; "
                             "products and campaigns go with sales")  # fmt: skip
        for table in ("sales", "products", "campaigns"):
            spec = getattr(self, table)
            allowed = SOURCE_COLUMNS[table]
            if table == "sales" and self.products is None:
                allowed = allowed + PRODUCT_ATTRIBUTES
            for column in spec.columns if spec else ():
                if column not in allowed:
                    raise ValueError(
                        f"{table}.columns: {column!r} is not a column of {table} "
                        f"(expected one of {', '.join(allowed)})"
                    )
        return self
