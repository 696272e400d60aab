"""Scenarios: YAML files validated by a schema before anything runs.

A scenario says how big the synthetic world is, how long its history and streaming window are,
what anomalies and campaigns it carries, how the forecast is configured, and what the run must
achieve (``expectations``). An unknown key, a wrong type or an impossible value is a
:class:`ScenarioError` naming the file, the key path and the offending value, because a typo that
silently falls back to a default produces a run that answers a different question.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import reprlib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from emulation.dms import DmsSettings
from harness.faults import Faults
from pipeline.contracts.periods import FIRST_DAY, LAST_DAY, forecast_end, whole_periods
from simulator.spec import MAX_GRID_CELLS, Calendar, Catalog, ScenarioModel, Source, WorldSpec

SCENARIO_DIR_ENV = "DFP_SCENARIO_DIR"
DEFAULT_SCENARIO = "smoke"
# A scenario is a page of settings; anything far larger is a mistake or an attack on the parser.
MAX_SCENARIO_BYTES = 256 * 1024
MAX_NESTING = 32

_shown = reprlib.Repr()
_shown.maxstring = 160
_shown.maxother = 160
_shown.maxlong = 60
_shown.maxlist = _shown.maxtuple = _shown.maxdict = _shown.maxset = 8
_shown.maxlevel = 3


def shown(value: Any) -> str:
    """A value as an error message shows it: its repr, at most ~200 characters."""
    text = _shown.repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


class ScenarioError(ValueError):
    """A scenario file is unreadable or invalid. ``problems`` lists (key path, value, message)."""

    def __init__(self, path: Path | str, problems: list[tuple[str, Any, str]]) -> None:
        self.path = str(path)
        self.problems = problems
        lines = [
            f"{self.path}: {_clip(key) or '(top level)'}"
            + ("" if value is _NO_VALUE else f" = {shown(value)}")
            + f": {_clip(message, 400)}"
            for key, value, message in problems[:_MAX_PROBLEMS]
        ]
        if len(problems) > _MAX_PROBLEMS:
            lines.append(f"{self.path}: … and {len(problems) - _MAX_PROBLEMS} more problems")
        super().__init__("\n".join(lines))


_MAX_PROBLEMS = 20


def _clip(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


_NO_VALUE = object()


#: The quantiles the ``forecast_enriched`` table (and so Athena and the web page) carries.
ENRICHED_QUANTILES = (0.1, 0.5, 0.9)


class Forecast(ScenarioModel):
    # The periods the ETL builds from daily sales (pipeline.contracts.periods).
    frequency: Literal["D", "W", "M", "3M", "Y"] = "D"
    horizon: int = Field(default=14, ge=1, le=500)
    quantiles: list[float] = Field(
        default_factory=lambda: [0.1, 0.5, 0.9], min_length=1, max_length=5
    )
    backtest_windows: int = Field(default=1, ge=1, le=5)
    # Forecast dimensions (AutoML's GroupingAttributeNames): a series per item and store.
    dimensions: list[Literal["store_id"]] = Field(default_factory=list, max_length=1)

    @field_validator("frequency", mode="before")
    @classmethod
    def _aws_spelling(cls, value: Any) -> Any:
        """AutoML's own spelling of a frequency (``1D``, ``1W``, ``1M``, ``1Y``: an integer and a
        unit, as its ``ForecastFrequency`` takes them) names the same period."""
        if isinstance(value, str) and value in {"1D", "1W", "1M", "1Y"}:
            return value[1:]
        return value

    @field_validator("quantiles")
    @classmethod
    def _quantiles(cls, value: list[float]) -> list[float]:
        for q in value:
            if not 0.01 <= q <= 0.99:
                raise ValueError(f"quantile {q} is outside 0.01-0.99")
            if abs(q * 100 - round(q * 100)) > 1e-9:  # AutoML refuses p2.5 (its pattern p1…p99)
                raise ValueError(
                    f"quantile {q} is not a whole percent: AutoML's ForecastQuantiles are p1 to "
                    "p99, in steps of 0.01"
                )
        if sorted(set(value)) != value:
            raise ValueError("quantiles must be increasing and distinct")
        missing = [q for q in ENRICHED_QUANTILES if q not in value]
        if missing:
            raise ValueError(
                f"lacks {', '.join(f'{q:g}' for q in missing)}: the enriched table, Athena and "
                "the web page read p10, p50 and p90 (other quantiles go to the export too)"
            )
        return value


class Expectation(ScenarioModel):
    """A bound on one value of ``summary.json``, addressed by a dotted path."""

    path: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_\-]*(\.[A-Za-z0-9_\-\[\]\.]+)*$")
    min: float | None = None
    max: float | None = None
    equals: bool | int | float | str | None = None

    @model_validator(mode="after")
    def _one_bound(self) -> Expectation:
        if self.min is None and self.max is None and self.equals is None:
            raise ValueError("give at least one of min, max, equals")
        if self.equals is not None and (self.min is not None or self.max is not None):
            raise ValueError("equals cannot be combined with min or max")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is above max ({self.max})")
        return self


_SYNTHETIC_ONLY = ("catalog", "calendar", "campaigns", "anomalies", "ecommerce", "stores")


class Scenario(WorldSpec):
    """One validated scenario: the world it simulates (or the real data it replays, ``source``),
    plus how the pipeline runs and is judged."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    description: str = ""
    catalog: Catalog | None = None  # type: ignore[assignment]  # required unless source
    calendar: Calendar | None = None  # type: ignore[assignment]  # required unless source
    source: Source | None = None
    dms: DmsSettings = DmsSettings()
    forecast: Forecast = Forecast()
    faults: Faults = Faults()
    expectations: list[Expectation] = Field(default_factory=list)
    _base: Path = PrivateAttr(default_factory=Path.cwd)

    @model_validator(mode="wrap")
    @classmethod
    def _world_needs_catalog_and_calendar(cls, data: Any, handler: Any) -> Scenario:
        """Without a source, catalog and calendar are required: reported with every other
        problem, as a missing key is."""
        missing: list[Any] = []
        if isinstance(data, dict) and data.get("source") is None:
            missing = [{"type": "missing", "loc": (key,), "input": data}
                       for key in ("catalog", "calendar") if data.get(key) is None]  # fmt: skip
        try:
            scenario = handler(data)
        except ValidationError as exc:
            if not missing:
                raise
            errors = [{k: e[k] for k in ("type", "loc", "input", "ctx") if k in e}
                      for e in exc.errors()]  # fmt: skip
            raise ValidationError.from_exception_data(cls.__name__, [*missing, *errors]) from None
        if missing:
            raise ValidationError.from_exception_data(cls.__name__, missing)
        return scenario

    @model_validator(mode="after")
    def _source_replaces_the_world(self) -> Scenario:
        if self.source is None:
            return self
        given = [key for key in _SYNTHETIC_ONLY if key in self.model_fields_set]
        if given:
            raise ValueError(
                f"{given[0]}: a scenario with a source replays real data; "
                f"{', '.join(given)} only shape a simulated world"
            )
        return self

    @model_validator(mode="after")
    def _faults_apply(self) -> Scenario:
        """A fault must have something to act on: no silent no-op drills."""
        bad = self.faults.bad_records
        if (
            bad is not None
            and "unknown_schema_version" in bad.kinds
            and not (self.source is None and self.ecommerce.direct_events)
        ):
            raise ValueError(
                "faults.bad_records.kinds: unknown_schema_version corrupts the shop's own events, "
                "and this scenario has none (set ecommerce.direct_events: true)"
            )
        if self.faults.glue.failed_runs:
            from deploy.stack import load_stack

            jobs = load_stack().glue.jobs
            for job in self.faults.glue.failed_runs:
                if job not in jobs:
                    raise ValueError(
                        f"faults.glue.failed_runs.{job}: no such Glue job in the stack "
                        f"(its jobs: {', '.join(sorted(jobs))})"
                    )
        return self

    @model_validator(mode="after")
    def _dimensions_exist(self) -> Scenario:
        """A forecast by store needs sales that name their store."""
        if "store_id" not in self.forecast.dimensions:
            return self
        mapped = (
            self.source is not None
            and self.source.sales is not None
            and ("store_id" in self.source.sales.columns)
        )
        if self.source is None and self.stores is None:
            raise ValueError(
                "forecast.dimensions: store_id needs a stores section (the world "
                "has no locations without one)"
            )
        if self.source is not None and not mapped:
            raise ValueError(
                "forecast.dimensions: store_id needs source.sales.columns to map "
                "store_id to a column of the sales file"
            )
        return self

    @model_validator(mode="after")
    def _world_fits_in_memory(self) -> Scenario:
        """Products × locations × days is the simulator's grid: refuse one that cannot fit."""
        if self.catalog is None or self.calendar is None or self.stores is None:
            return self
        locations = self.stores.count + self.stores.web_location
        cells = (self.catalog.products * locations
                 * (self.calendar.history_days + self.calendar.stream_days))  # fmt: skip
        if cells > MAX_GRID_CELLS:
            raise ValueError(
                f"stores: {self.catalog.products} products x {locations} locations x "
                f"{self.calendar.history_days + self.calendar.stream_days} days is {cells:,} "
                f"series-days; the simulator holds at most {MAX_GRID_CELLS:,}"
            )
        return self

    @model_validator(mode="after")
    def _horizon_fits_history(self) -> Scenario:
        if self.calendar is not None:
            first = self.calendar.start
            days = self.calendar.history_days + self.calendar.stream_days
            check_horizon(self.forecast, first, first + dt.timedelta(days=days - 1))
        return self

    @property
    def base_dir(self) -> Path:
        """Where a source's relative paths start: the scenario file's folder."""
        return self._base

    def with_seed(self, seed: int) -> Scenario:
        """This scenario with another seed, checked as the file's ``seed`` is."""
        limit = 2**63 - 1
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= limit:
            message = f"must be an integer from 0 to {limit}"
            raise ScenarioError(f"{self.name} (--seed)", [("seed", seed, message)])
        return self.model_copy(update={"seed": seed})  # keeps _base: private state is copied

    def with_changes(self, **sections: Any) -> Scenario:
        """This scenario with whole sections replaced (``faults={...}``, ``anomalies={...}``),
        validated as a scenario file is: a bad value is a :class:`ScenarioError` naming it."""
        raw = {**self.model_dump(mode="json", exclude_unset=True), **sections}
        try:
            changed = Scenario.model_validate(raw)
        except ValidationError as exc:
            raise ScenarioError(f"{self.name} (changed: {', '.join(sections)})",
                                _problems(raw, exc)) from None  # fmt: skip
        changed._base = self._base
        return changed

    def world_spec(self) -> WorldSpec:
        """The part of the scenario the simulator reads."""
        if self.source is not None:
            raise ValueError(f"scenario {self.name!r} replays a source; it has no world spec")
        return WorldSpec(**{name: getattr(self, name) for name in WorldSpec.model_fields})


def check_horizon(forecast: Forecast, first_day: dt.date, last_day: dt.date) -> None:
    """AWS refuses a horizon beyond a quarter of the target series (in periods): counted as the
    ETL will build it, whole periods only between the first and the last day of sales. The
    history and the forecast must also lie in the days every engine of the pipeline reads
    alike (:data:`~pipeline.contracts.periods.FIRST_DAY` to ``LAST_DAY``)."""
    if first_day < FIRST_DAY:
        raise ValueError(
            f"calendar.start: history from {first_day}, before {FIRST_DAY}: Spark refuses "
            "older timestamps in the Parquet files Firehose writes (READ_ANCIENT_DATETIME)"
        )
    end = forecast_end(last_day, forecast.horizon, forecast.frequency)
    if end is None or end > LAST_DAY:
        raise ValueError(
            f"forecast.horizon: {forecast.horizon} periods at frequency {forecast.frequency} "
            f"after {last_day} end {f'on {end}' if end else 'past the year 9999'}, after "
            f"{LAST_DAY}, the last day the forecaster's timestamps reach"
        )
    periods = whole_periods(first_day, last_day, forecast.frequency)
    if forecast.horizon * 4 > periods:
        raise ValueError(
            f"forecast.horizon: {forecast.horizon} is more than a quarter of the history "
            f"({periods} whole periods at frequency {forecast.frequency} from {first_day} to "
            f"{last_day}), which AWS refuses"
        )


# ------------------------------------------------------------------------------------ loading
class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader for scenarios: refuses duplicate keys instead of keeping the last one, and
    anchors, aliases and merge keys (a scenario never needs them, and an alias bomb expands a
    few hundred bytes into gigabytes), and nesting deeper than :data:`MAX_NESTING`."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed in a scenario", event.start_mark
            )
        event = self.peek_event()
        if getattr(event, "anchor", None):
            raise yaml.composer.ComposerError(
                None, None, "anchors (&name) are not allowed in a scenario", event.start_mark
            )
        self._depth = getattr(self, "_depth", 0) + 1
        try:
            if self._depth > MAX_NESTING:
                raise yaml.composer.ComposerError(
                    None, None, f"nested deeper than {MAX_NESTING} levels", event.start_mark
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False):
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            raise yaml.constructor.ConstructorError(
                None, None, "merge keys (<<) are not allowed in a scenario", key_node.start_mark
            )
        key = loader.construct_object(key_node, deep=deep)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "a key must be a plain value", key_node.start_mark
            ) from None
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key {shown(key)} (first on line {seen[key] + 1})",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


def _construct_timestamp(loader: _UniqueKeyLoader, node: yaml.Node) -> Any:
    """A YAML date, or an error at its line: PyYAML resolves ``2024-02-30`` as a date and then
    fails with Python's bare "day is out of range for month", naming neither value nor place."""
    try:
        return loader.construct_yaml_timestamp(node)
    except (ValueError, OverflowError) as exc:
        raise yaml.constructor.ConstructorError(
            None, None, f"{shown(node.value)} is not a date: {exc}", node.start_mark
        ) from None


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_UniqueKeyLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)


def _value_at(raw: Any, loc: tuple[Any, ...]) -> Any:
    node = raw
    for part in loc:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return _NO_VALUE
    return node


def _problems(raw: Any, exc: ValidationError) -> list[tuple[str, Any, str]]:
    out = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        path = ".".join(str(p) for p in loc)
        if err["type"] == "extra_forbidden":
            message = "unknown key"
        elif err["type"] == "missing":
            message = "required key is missing"
        else:
            message = err["msg"].removeprefix("Value error, ")
            # A model-level check names the key it is about as "key.path: message".
            named = _NAMED_KEY.match(message) if err["type"] == "value_error" else None
            if named:
                loc = (*loc, *named["key"].split("."))
                path = ".".join(str(p) for p in loc)
                message = named["message"]
        out.append((path, _value_at(raw, loc), message))
    return out


_NAMED_KEY = re.compile(r"^(?P<key>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_-]+)*): (?P<message>.+)$",
                        re.S)  # fmt: skip


def parse_scenario(text: str, source: str = "<string>") -> Scenario:
    """Validate scenario YAML text; errors name ``source``, the key path and the value."""
    if len(text) > MAX_SCENARIO_BYTES:
        raise ScenarioError(
            source,
            [("", _NO_VALUE, f"{len(text):,} characters; a scenario is at most "
                             f"{MAX_SCENARIO_BYTES:,}")],
        )  # fmt: skip
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        detail = str(exc)
        if len(detail) > 600:
            detail = detail[:597] + "..."
        raise ScenarioError(source, [("", _NO_VALUE, f"not valid YAML: {detail}")]) from None
    except (RecursionError, ValueError, OverflowError) as exc:  # e.g. a date out of range
        raise ScenarioError(
            source, [("", _NO_VALUE, f"not valid YAML: {shown(str(exc))}")]
        ) from None
    if not isinstance(raw, dict):
        raise ScenarioError(source, [("", raw, "a scenario must be a mapping of keys")])
    try:
        return Scenario.model_validate(raw)
    except ValidationError as exc:
        raise ScenarioError(source, _problems(raw, exc)) from None
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        # A validator met a value it could not even compare (pydantic wraps most of these).
        raise ScenarioError(source, [("", _NO_VALUE, shown(str(exc)))]) from None


def scenario_dirs() -> list[Path]:
    dirs = []
    if os.environ.get(SCENARIO_DIR_ENV):
        dirs.append(Path(os.environ[SCENARIO_DIR_ENV]))
    dirs.append(Path.cwd() / "scenarios")
    dirs.append(Path(__file__).resolve().parent.parent / "scenarios")
    unique: list[Path] = []  # run from the repository, the last two are one folder
    for folder in dirs:
        if folder.resolve() not in [u.resolve() for u in unique]:
            unique.append(folder)
    return unique


def find_scenario(name_or_path: str) -> Path:
    """A scenario file from a path, or a name looked up in the scenario directories."""
    candidate = Path(name_or_path)
    if candidate.is_dir():
        raise ScenarioError(candidate, [("", _NO_VALUE, "is a folder, not a scenario file")])
    if candidate.suffix in (".yaml", ".yml") or candidate.is_file():
        if not candidate.is_file():
            raise ScenarioError(candidate, [("", _NO_VALUE, "no such scenario file")])
        return candidate
    searched = scenario_dirs()
    for directory in searched:
        for suffix in (".yaml", ".yml"):
            path = directory / f"{name_or_path}{suffix}"
            if path.is_file():
                return path
    raise ScenarioError(
        name_or_path,
        [("", _NO_VALUE, "no such scenario in " + ", ".join(str(d) for d in searched))],
    )


def load_scenario(name_or_path: str = DEFAULT_SCENARIO) -> Scenario:
    path = find_scenario(name_or_path)
    try:
        size = path.stat().st_size
        if size > MAX_SCENARIO_BYTES:
            raise ScenarioError(
                path,
                [("", _NO_VALUE, f"{size:,} bytes; a scenario is at most "
                                 f"{MAX_SCENARIO_BYTES:,}")],
            )  # fmt: skip
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ScenarioError(
            path, [("", _NO_VALUE, f"cannot read: {exc.strerror or exc}")]
        ) from None
    except UnicodeDecodeError as exc:
        raise ScenarioError(
            path, [("", _NO_VALUE, f"not UTF-8 text (byte {exc.start}: {exc.reason})")]
        ) from None
    scenario = parse_scenario(text, str(path))
    scenario._base = path.resolve().parent
    return scenario


def list_scenarios() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for directory in reversed(scenario_dirs()):
        if directory.is_dir():
            for path in sorted(directory.glob("*.yaml")):
                found[path.stem] = path
    return dict(sorted(found.items()))
