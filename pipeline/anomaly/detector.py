"""Anomalous order lines, detected one record at a time with per-product state.

A plain module so it can be tested without Flink: the reference that the job's detection in the
JVM (``pipeline/anomaly/detection``, the same rules) is held to, record for record. Input is
either DMS's message for a ``sales`` row or the web shop's own ``order_line`` event (the same sale
may come both ways; it is seen once, by ``sale_id``). Other tables, updates, deletes and control
records are ignored; records that cannot be read are rejected with a reason.

Rules, each robust to promotions and seasonality by construction:

* ``spike``: one line's quantity far above the product's usual line sizes (campaigns bring more
  lines, not bigger ones): ``quantity >= max(min_spike, spike_factor × p99 line quantity)``.
* ``price_glitch``: the unit price is off the usual price paid for the product by more than
  ``price_ratio`` either way, and off its list price and the price of every campaign running for
  it that day on the sale's channel by as much: a deep discount (a 70 % clearance) is a price,
  and so is a full-price sale after weeks of campaigns, not a glitch.
  Campaigns come from the profiles (those the batch side knew, :attr:`Profile.promotions`) and
  from the stream's own ``campaigns`` changes (``products`` changes keep each product's category
  for category campaigns); a campaign or product record the detector cannot read is left to the
  Glue job, which rejects it.
* ``duplicate_burst``: ``burst_min`` or more identical lines (product, quantity, price, channel)
  within ``burst_seconds``; every line of the burst is reported.
* ``drop``: at the end of a day, a busy product (expected ≥ ``drop_min_expected`` units for that
  weekday) sold under ``drop_ratio`` of its expectation.

The reference profile of each product (usual line sizes, price, units per weekday) comes from its
history: :func:`build_profiles`.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from itertools import pairwise
from typing import Any

import numpy as np

from pipeline.contracts.cdc import ECOMMERCE_EVENT_TYPE, ECOMMERCE_SCHEMA_VERSIONS


@dataclass(frozen=True)
class Sale:
    sale_id: int
    product_id: str
    quantity: int
    unit_price: float
    channel: str
    sold_at: dt.datetime
    source: str  # dms or shop


@dataclass(frozen=True)
class Rejected:
    reason: str
    raw: bytes


@dataclass(frozen=True)
class Outlier:
    product_id: str
    reason: str
    score: float
    sold_at: dt.datetime
    sale_id: int | None = None
    quantity: int | None = None
    unit_price: float | None = None
    channel: str | None = None
    source: str | None = None

    @property
    def outlier_id(self) -> str:
        """A name for this finding that stays the same however often it is found: a restarted
        job, a redelivered sale or a replay emit the same id, so consumers keep one row per id."""
        if self.sale_id is None:
            return f"{self.reason}:{self.product_id}:{self.sold_at.date().isoformat()}"
        return f"{self.reason}:{self.sale_id}"


@dataclass(frozen=True)
class Promotion:
    """A campaign's price effect on one product: ``discount`` off on the days from ``start`` to
    ``end`` (inclusive) on ``channel`` (``all`` for every channel)."""

    campaign_id: str
    start: dt.date
    end: dt.date
    discount: float
    channel: str = "all"

    def applies(self, day: dt.date, channel: str) -> bool:
        return self.start <= day <= self.end and self.channel in ("all", channel)


@dataclass(frozen=True)
class CampaignChange:
    """A ``campaigns`` row from the stream, or its deletion (``promotion`` ``None``: DMS may send
    a delete with the primary key alone)."""

    campaign_id: str
    scope: str = ""  # product or category
    target: str = ""  # the product id or the category
    promotion: Promotion | None = None

    @property
    def deleted(self) -> bool:
        return self.promotion is None


@dataclass(frozen=True)
class ProductChange:
    """A ``products`` row from the stream: its list price (the price rule's reference) and its
    category (what category campaigns reach it)."""

    product_id: str
    category: str
    list_price: float | None = None


@dataclass(frozen=True)
class Profile:
    line_qty_p99: float
    price_reference: float
    units_by_weekday: tuple[float, ...]  # Monday … Sunday, mean units per day
    dispersion: float = 1e6  # negative-binomial r of daily units (large: Poisson-like)
    category: str | None = None
    promotions: tuple[Promotion, ...] = ()  # campaigns for it the batch side knew
    list_price: float | None = None  # the catalogue's price, undiscounted


@dataclass(frozen=True)
class DetectorConfig:
    spike_factor: float = 1.5
    min_spike: int = 10
    price_ratio: float = 3.0
    burst_seconds: int = 60
    burst_min: int = 4
    drop_ratio: float = 0.2
    drop_min_expected: float = 4.0
    drop_alpha: float = 0.005  # how unlikely so few units must be, given the product's variability
    # How many closed days a sale id is remembered to recognise the same sale arriving again (via
    # the shop and DMS, or redelivered); older ids are forgotten so the state stays bounded.
    dedup_days: int = 2


def _timestamp(text: Any) -> dt.datetime:
    if not isinstance(text, str):
        raise ValueError(f"sold_at {text!r:.40} is not a timestamp string")
    when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


_INTEGER_TEXT = re.compile(r"^[+-]?[0-9]+$")


def _integer(value: Any, name: str, bits: int = 64) -> int:
    """An integer field as the lake reads it (Firehose's OpenX SerDe): a JSON integer, or a
    string of digits (a column changed to a character type upstream). ``2.7`` is no quantity:
    ``int()`` would quietly make it 2. It must fit the column's type (``bigint`` ids, ``int``
    quantities): a larger one would fail the job where it writes the outlier."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and _INTEGER_TEXT.match(value):
        number = int(value)
    else:
        raise ValueError(f"{name} {value!r:.40} is not an integer")
    if not -(2 ** (bits - 1)) <= number < 2 ** (bits - 1):
        raise ValueError(f"{name} {value!r:.40} is out of range")
    return number


def _number(value: Any, name: str) -> float:
    """A numeric field: a JSON number or a string holding one (never ``true``)."""
    if isinstance(value, bool):
        raise ValueError(f"{name} {value!r} is not a number")
    return float(value)


def _reference_change(meta: dict, row: Any) -> CampaignChange | ProductChange | None:
    """A campaign or product change the price rule reads; ``None`` for one it cannot read (the
    Glue job rejects it with its reason; here it only means one explanation fewer)."""
    if not isinstance(row, dict):
        return None
    try:
        if meta.get("table-name") == "products":
            if meta.get("operation") == "delete":
                return None
            price = row.get("list_price")
            price = _positive(_number(price, "list_price")) if price is not None else None
            return ProductChange(str(row["product_id"]), str(row["category"]), price)
        if meta.get("operation") == "delete":
            return CampaignChange(str(row["campaign_id"]))
        scope = str(row["scope"])
        target = row["product_id"] if scope == "product" else row["category"]
        promotion = Promotion(
            campaign_id=str(row["campaign_id"]),
            start=dt.date.fromisoformat(str(row["start_date"])[:10]),
            end=dt.date.fromisoformat(str(row["end_date"])[:10]),
            discount=_number(row["discount"], "discount"),
            channel=str(row.get("channel") or "all"),
        )
    except (KeyError, TypeError, ValueError):
        return None
    if not 0 < promotion.discount < 1:
        return None
    return CampaignChange(promotion.campaign_id, scope, str(target), promotion)


def parse(raw: bytes) -> Sale | Rejected | CampaignChange | ProductChange | None:
    """A sale, a rejection with its reason, a campaign or product change (for the price rule),
    or ``None`` for a record that is none of these."""
    try:
        message = json.loads(raw)
    except ValueError as exc:
        return Rejected(f"malformed JSON: {exc}", raw)
    if not isinstance(message, dict):
        return Rejected("record is not a JSON object", raw)
    if "metadata" in message:
        meta = message["metadata"] or {}
        if not isinstance(meta, dict):
            return Rejected("metadata is not a JSON object", raw)
        if meta.get("record-type") != "data":
            return None
        if meta.get("table-name") in ("campaigns", "products"):
            return _reference_change(meta, message.get("data"))
        if meta.get("table-name") != "sales":
            return None
        if meta.get("operation") not in ("insert", "load"):
            return None  # corrections and cancellations are not new order lines
        row, source = message.get("data") or {}, "dms"
    elif message.get("event_type") == ECOMMERCE_EVENT_TYPE:
        version = message.get("schema_version")
        if version not in ECOMMERCE_SCHEMA_VERSIONS or isinstance(version, bool):
            return Rejected(f"unknown shop event schema_version {version!r:.40}", raw)
        row, source = message, "shop"
    elif "event_type" in message:
        return None
    else:
        return Rejected("neither a DMS message nor a shop event", raw)
    try:
        sale = Sale(
            sale_id=_integer(row["sale_id"], "sale_id"),
            product_id=str(row["product_id"]),
            quantity=_integer(row["quantity"], "quantity", bits=32),
            unit_price=_number(row["unit_price"], "unit_price"),
            channel=str(row["channel"]),
            sold_at=_timestamp(row["sold_at"]),
            source=source,
        )
    except KeyError as exc:
        return Rejected(f"missing field {exc.args[0]}", raw)
    except (TypeError, ValueError, OverflowError) as exc:
        return Rejected(f"bad value: {exc!s:.200}", raw)
    if not math.isfinite(sale.unit_price):
        return Rejected(f"unit_price {sale.unit_price} is not a finite number", raw)
    if sale.quantity <= 0:
        return Rejected(f"quantity {sale.quantity} is not positive", raw)
    if sale.unit_price <= 0:
        return Rejected(f"unit_price {sale.unit_price} is not positive", raw)
    return sale


def build_profiles(
    product_ids: Iterable[str],
    quantities: Iterable[int],
    unit_prices: Iterable[float],
    sold_at: Iterable[dt.datetime],
    recent_days: int = 56,
) -> dict[str, Profile]:
    """Per-product reference from history order lines (columns of equal length).

    The columns may be numpy arrays (``sold_at`` as UTC ``datetime64``): a full load has millions
    of lines, and turning each into a Python object first took longer than the profiles.
    """
    pid = _column(product_ids).astype(str)
    qty = _column(quantities).astype(float)
    price = _column(unit_prices).astype(float)
    sold = _column(sold_at)
    if sold.dtype.kind != "M":  # datetimes, aware or naive, as UTC wall time
        sold = np.asarray([np.datetime64(t.replace(tzinfo=None), "s") for t in sold])
    when = sold.astype("datetime64[s]")
    if len(pid) == 0:
        return {}
    day = when.astype("datetime64[D]")
    last = day.max()
    recent = day > last - np.timedelta64(recent_days, "D")
    profiles: dict[str, Profile] = {}
    order = np.argsort(pid, kind="stable")
    pid, qty, price, day, recent = pid[order], qty[order], price[order], day[order], recent[order]
    bounds = np.flatnonzero(np.r_[True, pid[1:] != pid[:-1], True])
    for start, end in pairwise(bounds):
        window = slice(start, end)
        mask = recent[window]
        days = day[window][mask]
        units = qty[window][mask]
        by_weekday = [0.0] * 7
        if len(days):
            first = max(days.min(), last - np.timedelta64(recent_days - 1, "D"))
            span = np.arange(first, last + np.timedelta64(1, "D"))
            weekday_of_span = (span.astype(int) + 3) % 7
            counts = np.bincount(weekday_of_span, minlength=7)
            sums = np.bincount((days.astype(int) + 3) % 7, weights=units, minlength=7)
            by_weekday = [float(s / c) if c else 0.0 for s, c in zip(sums, counts, strict=True)]
        # Variability around the weekday pattern (not the pattern itself) sets how unusual a
        # quiet day is: dispersion r of a negative binomial, by the method of moments.
        dispersion = 1e6
        if len(days):
            offset = (days - first).astype(int)
            daily = np.bincount(offset, weights=units, minlength=len(span))
            expected_daily = np.asarray(by_weekday)[weekday_of_span]
            mean = float(daily.mean())
            resid_var = float(np.mean((daily - expected_daily) ** 2))
            if resid_var > mean > 0:
                dispersion = mean * mean / (resid_var - mean)
        profiles[str(pid[start])] = Profile(
            line_qty_p99=float(np.percentile(qty[window], 99)),
            price_reference=float(np.median(price[window][mask] if mask.any() else price[window])),
            units_by_weekday=tuple(by_weekday),
            dispersion=float(dispersion),
        )
    return profiles


def _column(values: Iterable[Any]) -> np.ndarray:
    return values if isinstance(values, np.ndarray) else np.asarray(list(values))


def with_campaigns(profiles: dict[str, Profile], categories: dict[str, str],
                   campaigns: Iterable[dict[str, Any]],
                   list_prices: dict[str, float] | None = None) -> dict[str, Profile]:  # fmt: skip
    """Profiles with each product's category, the campaigns that reach it (rows of the
    ``campaigns`` table: scope ``product`` or ``category``, dates, discount, channel) and its
    list price where known: when campaigns ran on most recent days, the median price paid is a
    discounted one, and a full-price sale is no glitch."""
    list_prices = list_prices or {}
    reach: dict[str, list[Promotion]] = {}
    by_category: dict[str, list[str]] = {}
    for product, category in categories.items():
        by_category.setdefault(category, []).append(product)
    for row in campaigns:
        promotion = Promotion(str(row["campaign_id"]), row["start_date"], row["end_date"],
                              float(row["discount"]), str(row.get("channel") or "all"))  # fmt: skip
        if row["scope"] == "product":
            targets = [str(row["product_id"])]
        else:
            targets = by_category.get(str(row["category"]), [])
        for product in targets:
            reach.setdefault(product, []).append(promotion)
    return {
        product: replace(profile, category=categories.get(product),
                         list_price=_positive(list_prices.get(product)),
                         promotions=tuple(sorted(reach.get(product, []),
                                                 key=lambda q: (q.start, q.campaign_id))))
        for product, profile in profiles.items()
    }  # fmt: skip


def _positive(price: float | None) -> float | None:
    ok = price is not None and math.isfinite(price) and price > 0
    return float(price) if ok else None


def profiles_document(profiles: dict[str, Profile]) -> dict[str, dict]:
    """Profiles as the JSON document the job loads (``profiles.uri``)."""
    return {
        product: {
            "line_qty_p99": p.line_qty_p99,
            "price_reference": p.price_reference,
            "units_by_weekday": list(p.units_by_weekday),
            "dispersion": p.dispersion,
            **({"category": p.category} if p.category is not None else {}),
            **({"list_price": p.list_price} if p.list_price is not None else {}),
            **({"promotions": [[q.campaign_id, q.start.isoformat(), q.end.isoformat(),
                                q.discount, q.channel] for q in p.promotions]}
               if p.promotions else {}),
        }
        for product, p in sorted(profiles.items())
    }  # fmt: skip


def profiles_from_document(document: dict[str, dict]) -> dict[str, Profile]:
    """The inverse of :func:`profiles_document`."""
    return {
        product: Profile(
            line_qty_p99=float(p["line_qty_p99"]),
            price_reference=float(p["price_reference"]),
            units_by_weekday=tuple(float(u) for u in p["units_by_weekday"]),
            dispersion=float(p.get("dispersion", 1e6)),
            category=p.get("category"),
            list_price=_positive(p.get("list_price")),
            promotions=tuple(
                Promotion(str(cid), dt.date.fromisoformat(start), dt.date.fromisoformat(end),
                          float(discount), str(channel))
                for cid, start, end, discount, channel in p.get("promotions", [])
            ),
        )
        for product, p in document.items()
    }  # fmt: skip


def _nb_cdf(k: int, mean: float, r: float) -> float:
    """P(X <= k) for a negative binomial with this mean and dispersion ``r``."""
    p = r / (r + mean)
    term = p**r if r < 1e5 else np.exp(-mean)  # Poisson limit for huge r
    ratio = (1 - p) if r < 1e5 else None
    total = 0.0
    for i in range(int(k) + 1):
        total += term
        term *= ((i + r) / (i + 1) * ratio) if ratio is not None else mean / (i + 1)
    return float(total)


@dataclass
class _ProductState:
    recent: deque = field(default_factory=deque)  # (sold_at, signature, Sale)
    burst_reported: set = field(default_factory=set)  # sale ids of lines now in ``recent``
    units_by_day: dict = field(default_factory=lambda: defaultdict(int))  # open days only


class Detector:
    """Feed sales in arrival order; collect outliers (and close days for drops).

    Its state is bounded: a closed day's units are forgotten once the day is evaluated, sale ids
    ``dedup_days`` after their day closed, burst bookkeeping with the line leaving the burst
    window. It pickles without its profiles and configuration (a snapshot holds what the stream
    taught it; :meth:`attach` gives them back after a restore)."""

    def __init__(self, profiles: dict[str, Profile], config: DetectorConfig | None = None) -> None:
        self.profiles = profiles
        self.config = config or DetectorConfig()
        self._state: dict[str, _ProductState] = defaultdict(_ProductState)
        self._seen: dict[dt.date, set[int]] = {}  # sale ids by the day of their sale
        self._closed: dt.date | None = None  # the last day end_of_day evaluated
        # What the stream said about campaigns (by id; a deleted one as such) and categories.
        self._campaigns: dict[str, CampaignChange] = {}
        self._categories: dict[str, str] = {}
        self._list_prices: dict[str, float] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("profiles", "config")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        # A snapshot taken before the detector tracked campaigns restores with none known.
        self.__dict__.update({"_campaigns": {}, "_categories": {}, "_list_prices": {}}, **state,
                             profiles=None, config=None)  # fmt: skip

    def attach(self, profiles: dict[str, Profile], config: DetectorConfig) -> None:
        """Give a restored detector its profiles and configuration back."""
        self.profiles, self.config = profiles, config

    def learn(self, change: CampaignChange | ProductChange) -> None:
        """A campaign or product change from the stream, for the price rule."""
        if isinstance(change, ProductChange):
            self._categories[change.product_id] = change.category
            if change.list_price is not None:
                self._list_prices[change.product_id] = change.list_price
        elif change.deleted and not any(
            q.campaign_id == change.campaign_id
            for p in self.profiles.values() for q in p.promotions
        ):  # fmt: skip
            self._campaigns.pop(change.campaign_id, None)  # nothing else knows of it
        else:  # a deletion of a campaign the profiles hold stays, so that it stays deleted
            self._campaigns[change.campaign_id] = change

    def _off(self, ratio: float) -> bool:
        return ratio >= self.config.price_ratio or ratio <= 1 / self.config.price_ratio

    def _explained_by_a_campaign(self, sale: Sale, profile: Profile, reference: float) -> bool:
        """Whether a campaign running for the product that day on the sale's channel prices it
        within ``price_ratio`` of what was paid."""
        day = sale.sold_at.date()
        category = self._categories.get(sale.product_id, profile.category)
        running = {q.campaign_id: q for q in profile.promotions}
        for change in self._campaigns.values():
            running.pop(change.campaign_id, None)
            reaches = (change.target == sale.product_id if change.scope == "product"
                       else change.target == category)  # fmt: skip
            if reaches and change.promotion is not None:
                running[change.campaign_id] = change.promotion
        return any(
            promotion.applies(day, sale.channel)
            and not self._off(sale.unit_price / (reference * (1 - promotion.discount)))
            for promotion in running.values()
        )

    def state_size(self) -> dict[str, int]:
        """How much the detector holds: what a snapshot of it grows with."""
        return {
            "products": len(self._state),
            "sale_ids": sum(len(ids) for ids in self._seen.values()),
            "open_days": sum(len(s.units_by_day) for s in self._state.values()),
            "recent_lines": sum(len(s.recent) for s in self._state.values()),
        }

    def process(self, sale: Sale) -> list[Outlier]:
        day = sale.sold_at.date()
        if any(sale.sale_id in ids for ids in self._seen.values()):
            return []  # the same sale via DMS and via the shop, or delivered again
        self._seen.setdefault(day, set()).add(sale.sale_id)
        cfg, state = self.config, self._state[sale.product_id]
        if self._closed is None or day > self._closed:
            state.units_by_day[day] += sale.quantity  # a closed day's count is no longer read
        profile = self.profiles.get(sale.product_id)
        out: list[Outlier] = []

        def flag(reason: str, score: float, line: Sale = sale) -> None:
            out.append(
                Outlier(
                    line.product_id,
                    reason,
                    score,
                    line.sold_at,
                    line.sale_id,
                    line.quantity,
                    line.unit_price,
                    line.channel,
                    line.source,
                )
            )

        threshold = max(cfg.min_spike, cfg.spike_factor * (profile.line_qty_p99 if profile else 1))
        if sale.quantity >= threshold:
            flag("spike", sale.quantity / threshold)
        if profile and profile.price_reference > 0:
            # Off the usual price paid, off the list price (after weeks of campaigns the usual
            # price is a discounted one) and off every running campaign's price.
            ratio = sale.unit_price / profile.price_reference
            listed = self._list_prices.get(sale.product_id, profile.list_price)
            if (
                self._off(ratio)
                and (listed is None or self._off(sale.unit_price / listed))
                and not self._explained_by_a_campaign(sale, profile, listed or
                                                      profile.price_reference)
            ):  # fmt: skip
                flag("price_glitch", max(ratio, 1 / ratio))
        # Duplicate bursts: identical lines close together.
        signature = (sale.quantity, round(sale.unit_price, 2), sale.channel)
        try:
            horizon = sale.sold_at - dt.timedelta(seconds=cfg.burst_seconds)
        except OverflowError:  # a line stamped at the very start of year 1
            horizon = dt.datetime.min.replace(tzinfo=sale.sold_at.tzinfo)
        while state.recent and state.recent[0][0] < horizon:
            # A line that has left the window can never be in a burst again.
            state.burst_reported.discard(state.recent.popleft()[2].sale_id)
        state.recent.append((sale.sold_at, signature, sale))
        # Only lines within the burst window of this one: a late or reordered line is compared
        # with its own neighbours in time, not with whatever arrived just before it.
        same = [line for moment, sig, line in state.recent
                if sig == signature and abs(moment - sale.sold_at) <= dt.timedelta(
                    seconds=cfg.burst_seconds)]  # fmt: skip
        if len(same) >= cfg.burst_min:
            for line in same:
                if line.sale_id not in state.burst_reported:
                    state.burst_reported.add(line.sale_id)
                    flag("duplicate_burst", float(len(same)), line)
        return out

    def end_of_day(self, day: dt.date) -> list[Outlier]:
        """Drops: busy products that sold far less than usual on ``day``; then ``day`` and the
        days before it are closed and forgotten."""
        cfg = self.config
        out = []
        for product_id, profile in self.profiles.items():
            expected = profile.units_by_weekday[day.weekday()]
            if expected < cfg.drop_min_expected:
                continue
            sold = (
                self._state[product_id].units_by_day.get(day, 0) if product_id in self._state else 0
            )
            # The tail only for a quiet day: its cost grows with the units sold.
            if sold < cfg.drop_ratio * expected and (
                _nb_cdf(sold, expected, profile.dispersion) < cfg.drop_alpha
            ):
                moment = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
                out.append(Outlier(product_id, "drop", 1 - sold / expected, moment))
        self._forget(day)
        return out

    def _forget(self, closed: dt.date) -> None:
        self._closed = closed if self._closed is None else max(self._closed, closed)
        for product_id in list(self._state):
            state = self._state[product_id]
            for day in [d for d in state.units_by_day if d <= self._closed]:
                del state.units_by_day[day]
            if not state.units_by_day and not state.recent:
                del self._state[product_id]
        try:
            oldest = self._closed - dt.timedelta(days=self.config.dedup_days)
        except OverflowError:  # a day in year 1 closed: nothing is older than it
            oldest = dt.date.min
        for day in [d for d in self._seen if d <= oldest]:
            del self._seen[day]
        # A campaign over before the oldest day a sale can still arrive for explains nothing.
        over = [c for c, ch in self._campaigns.items()
                if ch.promotion is not None and ch.promotion.end <= oldest]  # fmt: skip
        for cid in over:
            del self._campaigns[cid]
