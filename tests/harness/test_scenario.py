"""Scenario files are validated; every error names the file, the key path and the value."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from harness.scenario import ScenarioError, list_scenarios, load_scenario, parse_scenario
from tests.conftest import REPO

VALID = textwrap.dedent(
    """
    name: tiny
    seed: 1
    catalog: {products: 10, categories: 2}
    calendar: {start: 2024-01-01, history_days: 120, stream_days: 1}
    forecast: {horizon: 7}
    """
)


def _with(change: dict) -> str:
    raw = yaml.safe_load(VALID)
    for dotted, value in change.items():
        node = raw
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return yaml.safe_dump(raw)


def test_shipped_scenarios_are_valid() -> None:
    found = list_scenarios()
    assert {"smoke", "standard"} <= set(found)
    for name in found:
        assert load_scenario(name).name == name
    standard = load_scenario("standard")
    assert standard.catalog.products == 1000
    assert standard.calendar.history_days >= 730


def test_valid_scenario_parses_with_defaults() -> None:
    scenario = parse_scenario(VALID, "tiny.yaml")
    assert scenario.catalog.products == 10
    assert scenario.forecast.quantiles == [0.1, 0.5, 0.9]
    assert scenario.anomalies.types == ["spike", "drop", "price_glitch", "duplicate_burst"]


@pytest.mark.parametrize(
    ("text", "path", "value", "message"),
    [
        (VALID + "catalgo: {products: 3}\n", "catalgo", "{'products': 3}", "unknown key"),
        (_with({"catalog.prodcts": 20}), "catalog.prodcts", "20", "unknown key"),
        (_with({"catalog.products": "many"}), "catalog.products", "'many'", "integer"),
        (_with({"catalog.products": -5}), "catalog.products", "-5", "greater than or equal"),
        (_with({"anomalies.rate": -0.1}), "anomalies.rate", "-0.1", "greater than or equal"),
        (_with({"anomalies.types": ["spike", "meteor"]}), "anomalies.types.1", "'meteor'", "spike"),
        (_with({"campaigns.days_min": 9, "campaigns.days_max": 3}), "campaigns", None, "days_min"),
        (_with({"calendar.start": "9999-10-01"}), "calendar", None, "runs past 9999-12-31"),
        (_with({"forecast.horizon": 40}), "forecast.horizon", "40", "quarter of the history"),
        (_with({"forecast.quantiles": [0.9, 0.1]}), "forecast.quantiles", None, "increasing"),
        (
            _with({"forecast.quantiles": [0.025, 0.1, 0.5, 0.9]}),
            "forecast.quantiles",
            "[0.025, 0.1, 0.5, 0.9]",
            "quantile 0.025 is not a whole percent",
        ),
        (
            _with({"forecast.quantiles": [0.05, 0.5, 0.95]}),
            "forecast.quantiles",
            "[0.05, 0.5, 0.95]",
            "lacks 0.1, 0.9: the enriched table",
        ),
        (_with({"calendar.start": "someday"}), "calendar.start", "'someday'", "date"),
        (_with({"expectations": [{"path": "anomaly.f1"}]}), "expectations.0", None, "at least one"),
        (_with({"forecast.dimensions": ["store"]}), "forecast.dimensions.0", "'store'", "store_id"),
        (
            _with({"forecast.dimensions": ["store_id"]}),
            "forecast.dimensions",
            None,
            "needs a stores section",
        ),
        (_with({"stores": {"count": 2, "regions": 3}}), "stores", None, "cannot exceed count"),
        (_with({"stores": {"count": 0}}), "stores.count", "0", "greater than or equal"),
        # a boolean where a section is meant: not taken for a number or a text
        (_with({"stores": True}), "stores", "True", "valid dictionary or instance of Stores"),
        (
            _with({"catalog.products": 200_000, "stores": {"count": 400}}),
            "stores",
            "{'count': 400}",
            "series-days; the simulator holds at most",
        ),
    ],
)
def test_invalid_scenarios_name_file_key_and_value(text, path, value, message) -> None:
    with pytest.raises(ScenarioError) as error:
        parse_scenario(text, "scenarios/broken.yaml")
    text_of_error = str(error.value)
    assert text_of_error.startswith("scenarios/broken.yaml: ")
    assert any(p == path for p, _, _ in error.value.problems), text_of_error
    if value is not None:
        assert f"= {value}" in text_of_error
    assert message in text_of_error


@pytest.mark.parametrize(
    ("line", "path", "value", "wanted"),
    [
        ("catalog: {products: yes, categories: 2}", "catalog.products", "True", "a number"),
        ("anomalies: {rate: on}", "anomalies.rate", "True", "a number"),
        ("forecast: {horizon: 7, quantiles: [0.1, true, 0.9]}", "forecast.quantiles",
         "[0.1, True, 0.9]", "a number"),
        ("faults: {kinesis: {put_records_entries: on}}", "faults.kinesis.put_records_entries",
         "True", "a number"),
        ("faults: {glue: {failed_runs: {forecast-input: yes}}}", "faults.glue.failed_runs",
         "{'forecast-input': True}", "a number"),
        ("anomalies: {types: [spike, off]}", "anomalies.types", "['spike', False]", "a text"),
        ("description: no", "description", "False", "a text"),
    ],
)  # fmt: skip
def test_a_yaml_boolean_where_a_number_or_text_is_meant_is_refused(line, path, value, wanted):
    """YAML 1.1 reads yes/no/on/off as booleans and pydantic reads True as 1: ``products: yes``
    would otherwise make a one-product world."""
    key = line.split(":")[0]  # the line replaces VALID's own line of that key
    text = "\n".join(kept for kept in VALID.strip().splitlines() if not kept.startswith(key + ":"))
    with pytest.raises(ScenarioError) as error:
        parse_scenario(text + "\n" + line + "\n", "scenarios/broken.yaml")
    assert [p for p, _, _ in error.value.problems] == [path], str(error.value)
    assert f"scenarios/broken.yaml: {path} = {value}: a boolean where {wanted} is meant" in str(
        error.value
    )


def test_a_yaml_boolean_where_a_boolean_is_meant_is_read() -> None:
    scenario = parse_scenario(
        VALID + "dms: {include_transaction_details: yes}\n"
        "expectations: [{path: reconciliation.ok, equals: yes}]\n",
        "tiny.yaml",
    )
    assert scenario.dms.include_transaction_details is True
    assert scenario.expectations[0].equals is True


def test_a_horizon_is_judged_against_the_whole_periods_the_etl_builds() -> None:
    weekly = {"forecast.frequency": "W", "forecast.horizon": 1, "calendar.history_days": 28,
              "calendar.stream_days": 1}  # fmt: skip
    # From a Monday, 29 days hold 4 whole weeks: a horizon of 1 is a quarter.
    assert parse_scenario(_with({**weekly, "calendar.start": "2025-02-03"}), "w.yaml")
    # From a Saturday, the first and last weeks are partial: 3 whole weeks are too few.
    with pytest.raises(ScenarioError) as error:
        parse_scenario(_with({**weekly, "calendar.start": "2025-02-01"}), "w.yaml")
    assert "w.yaml: forecast.horizon = 1: " in str(error.value)
    assert "3 whole periods at frequency W" in str(error.value)


def test_history_and_forecast_must_lie_in_the_days_every_engine_reads_alike() -> None:
    """Spark refuses Parquet timestamps before 1900 from Firehose; the forecaster's end in 2262.
    A scenario beyond them would fail a stage minutes in; it is refused naming the key."""
    assert parse_scenario(_with({"calendar.start": "1900-01-01"}), "edge.yaml")
    with pytest.raises(ScenarioError) as error:
        parse_scenario(_with({"calendar.start": "1899-12-31"}), "old.yaml")
    assert "old.yaml: calendar.start = " in str(error.value)
    assert "before 1900-01-01" in str(error.value)
    # The last forecast day counts: 2261-12 + 120 days of history, then 7 days, fits; years
    # of forecast after it do not, nor does a horizon past the year 9999.
    assert parse_scenario(_with({"calendar.start": "2261-12-01"}), "late.yaml")
    for change, end in (({"calendar.start": "2262-04-01"}, "end on 2262-08-06"),
                        ({"calendar.start": "9985-01-01", "calendar.history_days": 3650,
                          "forecast.frequency": "Y", "forecast.horizon": 20},
                         "end past the year 9999")):  # fmt: skip
        with pytest.raises(ScenarioError) as error:
            parse_scenario(_with(change), "far.yaml")
        assert "far.yaml: forecast.horizon = " in str(error.value)
        assert end in str(error.value) and "2262-04-10" in str(error.value)


@pytest.mark.parametrize(("given", "period"), [("1D", "D"), ("1W", "W"), ("1M", "M"), ("M", "M")])
def test_a_frequency_may_be_written_as_automl_writes_it(given: str, period: str) -> None:
    scenario = parse_scenario(_with({"forecast.frequency": given, "forecast.horizon": 1}), "f.yaml")
    assert scenario.forecast.frequency == period
    with pytest.raises(ScenarioError) as error:  # AutoML refuses 7D (use 1W), and so does this
        parse_scenario(_with({"forecast.frequency": "7D"}), "f.yaml")
    assert "f.yaml: forecast.frequency = '7D': " in str(error.value)


def test_missing_required_key_is_named() -> None:
    with pytest.raises(ScenarioError, match=r"calendar: required key is missing"):
        parse_scenario("name: x\nseed: 1\ncatalog: {products: 3}\n", "x.yaml")


def test_duplicate_keys_are_an_error_not_a_silent_override() -> None:
    with pytest.raises(ScenarioError, match=r"duplicate key 'seed'"):
        parse_scenario(VALID + "seed: 2\n", "dup.yaml")


def test_non_mapping_and_bad_yaml_are_refused() -> None:
    with pytest.raises(ScenarioError, match="mapping"):
        parse_scenario("- a\n- b\n", "list.yaml")
    with pytest.raises(ScenarioError, match="not valid YAML"):
        parse_scenario("name: [unclosed\n", "bad.yaml")


def test_an_impossible_date_is_named_with_its_line() -> None:
    text = VALID + "# one more\nfirst_order: 2024-02-30\n"
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text, "feb.yaml")
    message = str(caught.value)
    assert "'2024-02-30' is not a date: day is out of range for month" in message
    assert f"line {text.count(chr(10))}, column 14" in message  # the value's own line


def test_unknown_scenario_name_lists_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"no such scenario in .*scenarios"):
        load_scenario("no-such-scenario")
    with pytest.raises(ScenarioError, match="no such scenario file"):
        load_scenario(str(tmp_path / "missing.yaml"))


def test_scenario_path_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(VALID)
    assert load_scenario(str(path)).name == "tiny"
    assert (REPO / "scenarios" / "smoke.yaml").is_file()


@given(products=st.integers(min_value=-1000, max_value=300_000))
def test_products_bound_is_enforced_exactly(products: int) -> None:
    text = _with({"catalog.products": products, "catalog.categories": 1})
    if 1 <= products <= 200_000:
        assert parse_scenario(text).catalog.products == products
    else:
        with pytest.raises(ScenarioError, match=r"catalog\.products"):
            parse_scenario(text)


def test_a_seed_override_is_checked_like_the_files_seed() -> None:
    scenario = parse_scenario(VALID, "tiny.yaml")
    assert scenario.with_seed(42).seed == 42
    for bad in (-1, 2**63, True):
        with pytest.raises(ScenarioError, match=r"tiny \(--seed\): seed = .*: must be an integer"):
            scenario.with_seed(bad)


def test_a_folder_is_not_taken_for_a_scenario(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="is a folder, not a scenario file"):
        load_scenario(str(tmp_path))
    with pytest.raises(ScenarioError) as error:
        load_scenario("no-such-scenario")
    searched = str(error.value).split("no such scenario in ", 1)[1].split(", ")
    assert len(searched) == len({Path(s).resolve() for s in searched})  # each folder once
