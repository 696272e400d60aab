"""The synthetic retail world: products, campaigns, order lines, their changes, and the truth.

One seed drives everything random (one independent generator per component, spawned from it, so
changing how campaigns are drawn never shifts the sales); one simulated clock drives event time.
Everything is computed on numpy arrays over the product × day grid; the only Python loops run
over campaigns and injected anomalies, never over rows.

Time: the history (``calendar.history_days`` from ``calendar.start``) is what DMS bulk-loads; the
full load runs at the start of the streaming window, and the window's ``stream_days`` are
replicated change by change. Times are integer seconds since ``calendar.start`` 00:00 UTC
(commit times in microseconds).

The demand model, per product and day: a base rate (regular or slow long-tail item) × trend ×
weekly profile (by category) × yearly seasonality (by category) × holidays × price elasticity
against the product's launch price × promotion lift (channel-weighted, at most
``MAX_PROMOTION_LIFT`` times however deep or many the campaigns) × a post-promotion dip × a
launch ramp. Realised demand is negative-binomial around it; stock-outs leave demand unserved.
Served units are split into order lines of one or more units, each with a channel and a time of
day.

Locations (the optional ``stores`` section): the grid's rows become product × location series.
Each store's demand is the product's (above) × the store's size (by format) × its region's
yearly seasonality and local holiday × a ramp after it opens (a cold start for every item it
sells) × local promotions, and nothing after it closes; realised demand and stock-outs are drawn
per series. Lines at a store are mostly sold in the store (some are online orders it fulfils);
lines of the web location are online orders. Injected drops hit the product in every location
on that day (the stream's detector looks at the product, not the store).

Not modelled: returns after the window, per-customer behaviour, multi-line orders as one
transaction (each order line commits alone), transfers of stock between stores.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field, replace

import numpy as np
import pyarrow as pa

from pipeline.contracts.cdc import (
    CAMPAIGN_CHANNELS,
    CAMPAIGNS,
    CHANNELS,
    PRODUCTS,
    SALES,
    STORES,
)
from simulator.spec import WorldSpec

logger = logging.getLogger(__name__)

DAY = 86_400
_CATEGORY_NAMES = (
    "grocery", "beverages", "household", "personal-care", "electronics", "toys", "garden",
    "apparel", "sports", "books", "pets", "baby", "beauty", "office", "kitchen", "outdoor",
)  # fmt: skip
_NOUNS = ("pack", "set", "bottle", "box", "kit", "bundle", "jar", "bag", "case", "tin")
_ADJECTIVES = ("classic", "fresh", "smart", "eco", "ultra", "mini", "max", "pure", "daily", "pro")
_SYLLABLES = ("nor", "vel", "ark", "lum", "tes", "qui", "zan", "mor", "pel", "dri", "sol", "kai")
PRICE_TIERS = ("budget", "standard", "premium")
_TIER_PRICE = np.array([4.0, 14.0, 45.0])
_CHANNEL_SHARE = np.array([0.45, 0.45, 0.10])  # web, store, app (order of CHANNELS)
#: The most a promotion multiplies a product's expected demand, however deep the discount and
#: however many campaigns overlap: demand saturates (a household stocks up once, a shelf
#: empties). Without it, 85 % off at elasticity 2.5 gave 0.15 ** -3.75 ≈ 1,230 times the demand.
MAX_PROMOTION_LIFT = 10.0
_CAMPAIGN_CHANNEL_P = np.array([0.6, 0.2, 0.15, 0.05])  # order of CAMPAIGN_CHANNELS
_HOURLY = np.array(
    [1, 0.5, 0.3, 0.2, 0.2, 0.4, 1, 2, 3, 4, 5, 6, 7, 6, 5, 5, 6, 7, 8, 8, 7, 5, 3, 2], dtype=float
)
_HOURLY /= _HOURLY.sum()
_WEEKLY_BASE = np.array([0.9, 0.88, 0.92, 0.98, 1.1, 1.35, 1.2])  # Monday … Sunday
_ANOMALY_CODES = {"spike": 0, "drop": 1, "price_glitch": 2, "duplicate_burst": 3}
_REGION_NAMES = ("north", "south", "east", "west", "central", "coast", "lakes", "highlands")
STORE_FORMATS = ("hypermarket", "supermarket", "express", "online")
_FORMAT_SIZE = np.array([2.2, 1.0, 0.35])  # demand relative to a supermarket
_WEB_SIZE = 1.5
_NEVER = 10**9  # a closing day that never comes (still safe to multiply by DAY)
# Channels of a line (order of CHANNELS) at a physical store and at the web location.
_STORE_CHANNELS = np.array([0.1, 0.85, 0.05])
_ONLINE_CHANNELS = np.array([0.8, 0.0, 0.2])


@dataclass(frozen=True)
class SimulatedWorld:
    """The generated world. Tables follow :mod:`pipeline.contracts.cdc`.

    ``products``, ``campaigns``, ``sales``: the source tables at the end of the window.
    ``changes[table]``: every version DMS sees: the full-load snapshot (``_op`` = ``load``) then the
    window's changes (``insert``/``update``/``delete``, row *after* the change), with ``_commit_us``
    (µs since the start of the calendar), ``_seq`` (global commit order) and ``_txn`` (transaction
    id; null for load rows). ``truth_daily``, ``truth_anomalies``: the ground truth, never fed to
    the pipeline. ``ecommerce_events``: order lines the web shop puts on the stream itself.
    """

    spec: WorldSpec | None  # None for a replay of real data (simulator.source)
    start: dt.datetime
    load_seconds: int
    end_seconds: int
    products: pa.Table
    campaigns: pa.Table
    sales: pa.Table
    changes: dict[str, pa.Table]
    truth_daily: pa.Table
    truth_anomalies: pa.Table
    ecommerce_events: pa.Table
    stats: dict[str, int] = field(default_factory=dict)
    origin: str = "simulated"  # or the replayed files / dataset
    # A replay's sales rows that did not fit the contract, with why (``bad_rows: set_aside``).
    set_aside: pa.Table | None = None
    # The locations (``stores`` table) at the end of the window; empty in a world without them.
    stores: pa.Table = field(default_factory=STORES.empty_table)

    @property
    def has_stores(self) -> bool:
        """Whether sales carry a location (a ``stores`` section, or a replay that maps one)."""
        return self.stores.num_rows > 0

    @property
    def has_truth(self) -> bool:
        """Whether the ground truth is known (simulated), not just what was sold (replayed)."""
        return self.spec is not None

    @property
    def window_start(self) -> dt.datetime:
        return self.start + dt.timedelta(seconds=self.load_seconds)

    @property
    def window_end(self) -> dt.datetime:
        return self.start + dt.timedelta(seconds=self.end_seconds)


# ------------------------------------------------------------------------------------ helpers
def _ids(prefix: str, n: int, width: int) -> np.ndarray:
    if n == 0:  # numpy's zfill cannot size an empty array (a world without campaigns)
        return np.empty(0, dtype=f"<U{len(prefix) + width}")
    return np.char.add(prefix, np.char.zfill(np.arange(1, n + 1).astype(str), width))


def _round_price(x: np.ndarray) -> np.ndarray:
    """Shelf prices end in .99 (at least 0.99)."""
    return np.maximum(np.floor(x), 0.0) + 0.99


def _dates(start: np.datetime64, day_index: np.ndarray) -> pa.Array:
    return pa.array((start + day_index.astype("timedelta64[D]")).astype("datetime64[D]"))


def _timestamps(start: np.datetime64, seconds: np.ndarray) -> pa.Array:
    values = start.astype("datetime64[s]") + seconds.astype("timedelta64[s]")
    return pa.array(values.astype("datetime64[s]"), type=pa.timestamp("s", tz="UTC"))


def _holiday_multipliers(start: dt.date, n_days: int) -> np.ndarray:
    """Daily demand multipliers for retail holidays (fixed and computed dates)."""
    days = np.datetime64(start, "D") + np.arange(n_days)
    months = days.astype("datetime64[M]").astype(int) % 12 + 1
    dom = (days - days.astype("datetime64[M]")).astype(int) + 1
    dow = (days.astype(int) + 3) % 7  # 0 = Monday
    mult = np.ones(n_days)
    mult[(months == 12) & (dom >= 1) & (dom <= 23)] *= 1.25
    mult[(months == 12) & (dom == 24)] *= 0.8
    mult[(months == 12) & (dom == 25)] *= 0.15
    mult[(months == 12) & (dom == 26)] *= 1.4
    mult[(months == 1) & (dom == 1)] *= 0.4
    # Black Friday: the fourth Friday of November; Cyber Monday three days later.
    november = (months == 11) & (dow == 4)
    fridays_so_far = (dom - 1) // 7 + 1
    black_friday = november & (fridays_so_far == 4)
    mult[black_friday] *= 2.6
    cyber = np.roll(black_friday, 3)
    cyber[:3] = False
    mult[cyber] *= 1.8
    return mult


# ------------------------------------------------------------------------- the typed grid
# simulate() runs one pure function per section below, each with its own random generator
# (spawned from the seed in a fixed order), over the product × day grid. What a section gives
# the next is one of these small records, never a shared local.
@dataclass(frozen=True)
class _Grid:
    """The product × day grid and its clock (days and seconds since ``calendar.start``)."""

    P: int  # products
    H: int  # history days (bulk-loaded)
    S: int  # streamed days (the window)
    D: int  # all days
    load_s: int  # the full load: the window's start
    end_s: int  # the window's end
    start: dt.date
    start64: np.datetime64

    @classmethod
    def of(cls, spec: WorldSpec) -> _Grid:
        H, S = spec.calendar.history_days, spec.calendar.stream_days
        return cls(P=spec.catalog.products, H=H, S=S, D=H + S, load_s=H * DAY,
                   end_s=(H + S) * DAY, start=spec.calendar.start,
                   start64=np.datetime64(spec.calendar.start, "D"))  # fmt: skip


@dataclass(frozen=True)
class _Catalog:
    """Products: attributes, lifecycle (days) and the moments their rows change (seconds)."""

    category: np.ndarray
    brand: np.ndarray
    tier: np.ndarray
    launch_price: np.ndarray
    long_tail: np.ndarray
    launch: np.ndarray  # launch day
    discontinued: np.ndarray  # last day + 1 (far future when never)
    has_disc: np.ndarray
    disc_announce_s: np.ndarray
    delete_s: np.ndarray  # -1 when never deleted
    insert_s: np.ndarray
    product_ids: np.ndarray
    cat_names: np.ndarray
    brand_names: np.ndarray
    product_names: np.ndarray


@dataclass(frozen=True)
class _Prices:
    """Each product's list-price history: the launch price, then its updates."""

    upd_product: np.ndarray
    upd_s: np.ndarray
    ev_key: np.ndarray
    ev_price: np.ndarray

    _SPAN = 10**13

    def at(self, products: np.ndarray, seconds: np.ndarray) -> np.ndarray:
        key = products.astype(np.int64) * self._SPAN + (seconds.astype(np.int64) + 10**12)
        return self.ev_price[np.searchsorted(self.ev_key, key, side="right") - 1]


@dataclass(frozen=True)
class _Campaigns:
    """Campaigns as created, edited and cancelled, and their discount per channel × product-day."""

    n: int
    scope_product: np.ndarray
    product: np.ndarray
    category: np.ndarray
    start: np.ndarray
    end: np.ndarray
    end2: np.ndarray  # the end after an edit
    discount: np.ndarray
    discount2: np.ndarray  # the discount after an edit
    channel: np.ndarray
    created_s: np.ndarray
    edited: np.ndarray
    edit_s: np.ndarray
    deleted: np.ndarray
    delete_s: np.ndarray
    disc: np.ndarray  # (all, web, store, app) × product × day: the best discount
    dip: np.ndarray  # product × day: the post-promotion dip
    store: np.ndarray  # a local campaign's store index, -1 for every store
    local: np.ndarray | None = None  # series × day: the best local discount (None: no locations)


@dataclass(frozen=True)
class _Locations:
    """The grid's rows: one per product without locations, one per product × location with them
    (product-major: row = product · K + location). The stores' attributes and daily factors."""

    K: int  # locations (0: none)
    series_product: np.ndarray  # product of each row
    series_store: np.ndarray  # location of each row (-1 without locations)
    store_ids: np.ndarray
    region: np.ndarray  # region names
    store_format: np.ndarray  # index into STORE_FORMATS
    open_day: np.ndarray
    close_day: np.ndarray  # far future when never
    close_announce_s: np.ndarray
    insert_s: np.ndarray
    online: np.ndarray  # bool per location
    factor: np.ndarray  # location × day: size × regional season × local holiday × ramp, 0 closed
    physical: int = 0  # physical stores (local campaigns run in one of them)

    @classmethod
    def none(cls, P: int) -> _Locations:
        empty = np.empty(0, dtype=np.int64)
        return cls(K=0, series_product=np.arange(P), series_store=np.full(P, -1),
                   store_ids=np.empty(0, dtype="<U4"), region=np.empty(0, dtype="<U4"),
                   store_format=empty, open_day=empty, close_day=empty, close_announce_s=empty,
                   insert_s=empty, online=np.empty(0, bool), factor=np.empty((0, 0)))  # fmt: skip

    def rows_of(self, product: int) -> np.ndarray:
        """The rows of one product (its series in every location; a world with locations)."""
        return product * self.K + np.arange(self.K)


@dataclass(frozen=True)
class _Demand:
    expected: np.ndarray  # row (product, or product × location) × day
    demand: np.ndarray  # realised (negative binomial)
    served: np.ndarray  # demand less stock-outs and injected drops
    stockout: np.ndarray
    active: np.ndarray


@dataclass(frozen=True)
class _Anomalies:
    n: int
    type: np.ndarray  # codes of _ANOMALY_CODES
    product: np.ndarray
    day: np.ndarray
    drop_before: np.ndarray  # served units before a drop, per anomaly
    drop_after: np.ndarray  # and after it
    start_s: np.ndarray | None = None
    end_s: np.ndarray | None = None
    magnitude: np.ndarray | None = None


@dataclass(frozen=True)
class _Lines:
    """Order lines in sale-id order (sale ids follow time, as an auto-increment key does)."""

    row: np.ndarray  # the grid row (series) the line belongs to
    store: np.ndarray  # its location (-1 without locations)
    product: np.ndarray
    s: np.ndarray
    qty: np.ndarray
    channel: np.ndarray
    anomaly: np.ndarray  # index into the anomalies, -1 for a normal line
    day: np.ndarray
    sale_id: np.ndarray
    price: np.ndarray


@dataclass(frozen=True)
class _SalesChanges:
    """What happens to order lines during the window: commits, cancellations, corrections."""

    in_window: np.ndarray
    commit_us: np.ndarray
    cancel: np.ndarray
    cancel_us: np.ndarray
    correct: np.ndarray
    correct_us: np.ndarray
    corrected_qty: np.ndarray
    final_qty: np.ndarray
    alive: np.ndarray


# ---------------------------------------------------------------------------------- sections
def _catalog(spec: WorldSpec, g: _Grid, g_prod: np.random.Generator,
             names: np.random.Generator) -> _Catalog:  # fmt: skip
    """Products, their launches, discontinuations and deletions, and their names."""
    cat, P, H, S, D = spec.catalog, g.P, g.H, g.S, g.D
    load_s = g.load_s
    every_category = np.arange(cat.categories)  # each category has at least one product
    category = g_prod.permutation(
        np.concatenate([every_category, g_prod.integers(0, cat.categories, P - cat.categories)])
    )
    brand = g_prod.integers(0, cat.brands, P)
    tier = g_prod.choice(3, size=P, p=[0.35, 0.45, 0.20])
    launch_price = _round_price(_TIER_PRICE[tier] * g_prod.lognormal(0.0, 0.4, P))
    long_tail = g_prod.random(P) < cat.long_tail_share
    n_new = round(cat.new_product_share * P)
    new_idx = g_prod.choice(P, size=n_new, replace=False)
    launch = -g_prod.integers(30, 1_000, P)  # launched before the calendar starts
    launch[new_idx] = g_prod.integers(min(14, H - 1), max(15, H - 28), n_new)
    # Launches in the window come from the products not already launched during the history
    # (none are left when every product is new).
    established = np.setdiff1d(np.arange(P), new_idx)
    n_window_launch = min(
        len(established), max(1 if P >= 10 else 0, round(cat.new_product_share * P * S / H))
    )
    window_launch = g_prod.choice(established, size=n_window_launch, replace=False)
    launch[window_launch] = g_prod.integers(H, D, n_window_launch)
    # Discontinuation: a share of products stop selling at some day; announced a little earlier.
    n_disc = round(cat.discontinued_share * P)
    eligible = np.flatnonzero(launch < H - 90)
    disc_idx = g_prod.choice(eligible, size=min(n_disc, len(eligible)), replace=False)
    discontinued = np.full(P, np.iinfo(np.int64).max // 4, dtype=np.int64)  # never
    if len(disc_idx):
        lo = np.maximum(launch[disc_idx] + 60, 30)
        discontinued[disc_idx] = lo + (g_prod.random(len(disc_idx)) * (D + 10 - lo)).astype(int)
        # At least one discontinuation lands in the window, so the stream carries one.
        in_window = (discontinued[disc_idx] >= H) & (discontinued[disc_idx] < D)
        if not in_window.any() and S > 1:
            discontinued[disc_idx[0]] = H + 1
    has_disc = discontinued < D
    disc_announce_s = discontinued * DAY - g_prod.integers(DAY, 14 * DAY, P)
    # Deletions: some products discontinued before the window are deleted during it.
    gone = np.flatnonzero(has_disc & (disc_announce_s < load_s) & (discontinued < H))
    n_delete = min(len(gone), max(1, round(0.3 * len(gone)))) if len(gone) else 0
    deleted = g_prod.choice(gone, size=n_delete, replace=False) if n_delete else np.array([], int)
    delete_s = np.full(P, -1, dtype=np.int64)
    delete_s[deleted] = load_s + g_prod.integers(60, S * DAY - 60, n_delete)
    insert_s = launch * DAY - g_prod.integers(3_600, 12 * 3_600, P)  # created before launch

    # Names come from their own generator, so they never shift the numbers.
    cat_names = np.array(
        [
            _CATEGORY_NAMES[i % len(_CATEGORY_NAMES)]
            + ("" if i < len(_CATEGORY_NAMES) else f"-{i // len(_CATEGORY_NAMES)}")
            for i in range(cat.categories)
        ]
    )
    syl = np.array(_SYLLABLES)
    brand_names = np.char.capitalize(
        np.char.add(syl[np.arange(cat.brands) % len(syl)],
                    syl[(np.arange(cat.brands) // len(syl) + np.arange(cat.brands) * 7) % len(syl)])
    )  # fmt: skip
    product_names = np.char.add(
        np.char.add(brand_names[brand], " "),
        np.char.add(
            np.char.add(np.array(_ADJECTIVES)[names.integers(0, len(_ADJECTIVES), P)], " "),
            np.array(_NOUNS)[names.integers(0, len(_NOUNS), P)],
        ),
    )
    return _Catalog(category=category, brand=brand, tier=tier, launch_price=launch_price,
                    long_tail=long_tail, launch=launch, discontinued=discontinued,
                    has_disc=has_disc, disc_announce_s=disc_announce_s, delete_s=delete_s,
                    insert_s=insert_s, product_ids=_ids("P", P, 5), cat_names=cat_names,
                    brand_names=brand_names, product_names=product_names)  # fmt: skip


def _prices(g: _Grid, c: _Catalog, g_price: np.random.Generator) -> _Prices:
    """Each product's list price changes now and then (a Poisson number of updates)."""
    P, D, S, load_s, end_s = g.P, g.D, g.S, g.load_s, g.end_s
    n_updates = g_price.poisson(D / 150.0, P)
    upd_product = np.repeat(np.arange(P), n_updates)
    upd_s = g_price.integers(0, end_s, len(upd_product))
    # At least one price change lands in the window, so the stream carries a product update.
    alive_in_window = np.flatnonzero((c.insert_s < load_s) & (c.delete_s < 0))
    if (
        len(alive_in_window)
        and not ((upd_s > load_s) & np.isin(upd_product, alive_in_window)).any()
    ):
        upd_product = np.r_[upd_product, g_price.choice(alive_in_window)]
        upd_s = np.r_[upd_s, load_s + g_price.integers(60, S * DAY - 60)]
    upd_factor = g_price.uniform(0.9, 1.15, len(upd_product))
    order = np.lexsort((upd_s, upd_product))
    upd_product, upd_s, upd_factor = upd_product[order], upd_s[order], upd_factor[order]
    # Cumulative factor per product → price after each update.
    log_f = np.log(upd_factor)
    csum = np.cumsum(log_f)
    first_of_product = (
        np.r_[0, np.flatnonzero(np.diff(upd_product)) + 1] if len(upd_product) else []
    )
    base_csum = np.zeros(len(upd_product))
    if len(upd_product):
        starts = np.zeros(len(upd_product), dtype=int)
        starts[first_of_product] = first_of_product
        starts = np.maximum.accumulate(starts)
        base_csum = csum - np.where(starts > 0, csum[starts - 1], 0.0)
    upd_price = _round_price(c.launch_price[upd_product] * np.exp(base_csum))
    # Price events: the launch price at time -inf, then each update.
    ev_product = np.concatenate([np.arange(P), upd_product])
    ev_s = np.concatenate([np.full(P, -(10**12)), upd_s])
    ev_price = np.concatenate([c.launch_price, upd_price])
    ev_order = np.lexsort((ev_s, ev_product))
    ev_product, ev_s, ev_price = ev_product[ev_order], ev_s[ev_order], ev_price[ev_order]
    ev_key = ev_product.astype(np.int64) * _Prices._SPAN + (ev_s + 10**12)
    return _Prices(upd_product=upd_product, upd_s=upd_s, ev_key=ev_key, ev_price=ev_price)


def _day_of_year(g: _Grid) -> np.ndarray:
    d_idx = np.arange(g.D)
    return (g.start64 + d_idx - (g.start64 + d_idx).astype("datetime64[Y]")).astype(int)


def _locations(spec: WorldSpec, g: _Grid, g_store: np.random.Generator) -> _Locations:
    """Stores (regions, formats, openings, closings) and each one's daily demand factor."""
    if spec.stores is None:
        return _Locations.none(g.P)
    st, H, D = spec.stores, g.H, g.D
    n = st.count
    region = g_store.permutation(
        np.concatenate([np.arange(st.regions), g_store.integers(0, st.regions, n - st.regions)])
    )
    store_format = g_store.choice(3, size=n, p=[0.2, 0.5, 0.3])
    size = _FORMAT_SIZE[store_format] * g_store.lognormal(0.0, 0.2, n)
    open_day = -g_store.integers(365, 3_000, n)
    n_open = min(n, round(st.opening_share * n))
    opening = g_store.choice(n, size=n_open, replace=False)
    open_day[opening] = g_store.integers(min(30, H - 1), max(31, H - 60), n_open)
    insert_s = open_day * DAY - g_store.integers(7, 60, n) * DAY
    if n_open >= 2 and g.S:  # one opening is still to come: its row arrives in the window
        open_day[opening[-1]] = D + g_store.integers(7, 30)
        insert_s[opening[-1]] = g.load_s + g_store.integers(60, g.S * DAY - 60)
    close_day = np.full(n, _NEVER, dtype=np.int64)
    settled = np.setdiff1d(np.arange(n), opening)
    n_close = min(len(settled), round(st.closing_share * n))
    closing = g_store.choice(settled, size=n_close, replace=False)
    close_day[closing] = g_store.integers(min(90, H - 1), D, n_close)
    close_announce_s = close_day * DAY - g_store.integers(14, 60, n) * DAY
    # Each region has its own yearly swing and a three-day local holiday.
    doy = _day_of_year(g)
    amp = g_store.uniform(0.0, 0.15, st.regions)
    peak = g_store.uniform(0, 365, st.regions)
    feast = g_store.integers(0, 362, st.regions)
    seasonal = 1 + amp[region][:, None] * np.cos(
        2 * np.pi * (doy[None, :] - peak[region][:, None]) / 365.25
    )
    since_feast = doy[None, :] - feast[region][:, None]
    local_day = (since_feast >= 0) & (since_feast < 3)
    d_idx = np.arange(D)
    is_open = (d_idx[None, :] >= open_day[:, None]) & (d_idx[None, :] < close_day[:, None])
    ramp = np.clip((d_idx[None, :] - open_day[:, None] + 1) / 60.0, 0.0, 1.0)
    factor = size[:, None] * seasonal * np.where(local_day, 1.6, 1.0) * ramp * is_open
    region_names = np.array([
        _REGION_NAMES[i % len(_REGION_NAMES)]
        + ("" if i < len(_REGION_NAMES) else f"-{i // len(_REGION_NAMES)}")
        for i in range(st.regions)
    ])[region]  # fmt: skip
    store_ids = _ids("S", n, 3)
    online = np.zeros(n, bool)
    if st.web_location:  # always open, no region of its own
        store_ids = np.append(store_ids, "W01")
        region_names = np.append(region_names, "online")
        store_format = np.r_[store_format, STORE_FORMATS.index("online")]
        open_day, insert_s = np.r_[open_day, -3_000], np.r_[insert_s, -3_001 * DAY]
        close_day = np.r_[close_day, _NEVER]
        close_announce_s = np.r_[close_announce_s, _NEVER * DAY]
        online = np.r_[online, True]
        factor = np.vstack([factor, np.full((1, D), _WEB_SIZE)])
    K = len(store_ids)
    return _Locations(K=K, series_product=np.repeat(np.arange(g.P), K),
                      series_store=np.tile(np.arange(K), g.P), store_ids=store_ids,
                      region=region_names, store_format=store_format, open_day=open_day,
                      close_day=close_day, close_announce_s=close_announce_s, insert_s=insert_s,
                      online=online, factor=factor, physical=n)  # fmt: skip


def _local_discount(g: _Grid, c: _Catalog, loc: _Locations, k: _Campaigns,
                    local: np.ndarray) -> np.ndarray:  # fmt: skip
    """Series × day: the best discount of a local campaign (one store's) covering it."""
    out = np.zeros((g.P * loc.K, g.D))
    for i in local:
        d0, d1 = max(k.start[i], 0), min(k.end2[i] if k.edited[i] else k.end[i], g.D - 1)
        if d0 > d1:
            continue
        products = (np.array([k.product[i]]) if k.scope_product[i]
                    else np.flatnonzero(c.category == k.category[i]))  # fmt: skip
        rows = products * loc.K + k.store[i]
        discount = k.discount2[i] if k.edited[i] else k.discount[i]
        out[rows, d0 : d1 + 1] = np.maximum(out[rows, d0 : d1 + 1], discount)
    return out


def _campaigns(spec: WorldSpec, g: _Grid, c: _Catalog, g_camp: np.random.Generator,
               loc: _Locations, g_store: np.random.Generator) -> _Campaigns:  # fmt: skip
    """Campaigns created, edited and cancelled; the best discount per channel and product-day."""
    camp, P, D, S, load_s, end_s = spec.campaigns, g.P, g.D, g.S, g.load_s, g.end_s
    n_camp = round(camp.per_month * (D + 60) / 30.44)
    c_scope_product = g_camp.random(n_camp) < 0.7
    c_product = g_camp.integers(0, P, n_camp)
    c_category = g_camp.integers(0, spec.catalog.categories, n_camp)
    c_start = g_camp.integers(-20, D + 60, n_camp)
    c_days = g_camp.integers(camp.days_min, camp.days_max + 1, n_camp)
    c_end = c_start + c_days - 1
    c_discount = np.round(g_camp.uniform(camp.discount_min, camp.discount_max, n_camp) * 20) / 20
    c_discount = np.clip(c_discount, camp.discount_min, camp.discount_max).round(2)
    c_channel = g_camp.choice(4, size=n_camp, p=_CAMPAIGN_CHANNEL_P)
    c_created_s = c_start * DAY - g_camp.integers(3 * DAY, 21 * DAY, n_camp)
    # Edits happen before the campaign starts: a new discount or a longer run.
    c_edited = g_camp.random(n_camp) < 0.2
    c_edit_s = c_created_s + (g_camp.random(n_camp) * (c_start * DAY - c_created_s)).astype(
        np.int64
    )
    c_discount2 = np.where(
        g_camp.random(n_camp) < 0.5,
        np.clip(np.round((c_discount + g_camp.choice([-0.05, 0.05], n_camp)) * 20) / 20,
                camp.discount_min, camp.discount_max).round(2),
        c_discount,
    )  # fmt: skip
    c_end2 = np.where(c_discount2 == c_discount, c_end + g_camp.integers(1, 6, n_camp), c_end)
    # Cancellations: some campaigns not yet started are deleted during the window.
    future = (c_start * DAY > load_s) & (c_created_s < end_s)
    c_deleted = future & (g_camp.random(n_camp) < 0.15)
    c_delete_s = np.maximum(c_created_s, load_s) + (
        g_camp.random(n_camp) * (np.minimum(c_start * DAY, end_s) - np.maximum(c_created_s, load_s))
    ).astype(np.int64)
    c_deleted &= c_delete_s < end_s
    # The window carries at least one created, one edited and one cancelled campaign.
    upcoming = np.flatnonzero(c_start * DAY > end_s + 3 * DAY)
    if S and len(upcoming) >= 3:
        new_c, edit_c, drop_c = g_camp.choice(upcoming, 3, replace=False)
        at = load_s + g_camp.integers(60, S * DAY - 60, 3)
        if not ((c_created_s > load_s) & (c_created_s <= end_s) & ~c_deleted).any():
            c_created_s[new_c], c_deleted[new_c] = at[0], False
        if not (c_edited & (c_edit_s > load_s) & (c_edit_s <= end_s) & ~c_deleted).any():
            c_created_s[edit_c] = min(c_created_s[edit_c], load_s - DAY)
            c_edited[edit_c], c_edit_s[edit_c], c_deleted[edit_c] = True, at[1], False
        if not c_deleted.any():
            c_created_s[drop_c] = min(c_created_s[drop_c], load_s - DAY)
            c_deleted[drop_c], c_delete_s[drop_c] = True, at[2]
    c_edited &= ~c_deleted | (c_edit_s < c_delete_s)
    final_discount = np.where(c_edited, c_discount2, c_discount)
    final_end = np.where(c_edited, c_end2, c_end)
    effective = ~c_deleted & (c_created_s < end_s)
    # Local promotions: a share of campaigns runs in one physical store, for every channel there.
    c_store = np.full(n_camp, -1)
    if loc.K and spec.stores is not None:
        local = g_store.random(n_camp) < spec.stores.local_campaign_share
        c_store[local] = g_store.integers(0, loc.physical, int(local.sum()))
        c_channel[local] = CAMPAIGN_CHANNELS.index("all")

    # Per product-day discount, by channel (max over overlapping campaigns).
    disc = np.zeros((4, P, D))  # all, web, store, app
    dip = np.ones((P, D))
    for k in np.flatnonzero(effective & (c_store < 0)):
        d0, d1 = max(c_start[k], 0), min(final_end[k], D - 1)
        rows = (
            np.array([c_product[k]])
            if c_scope_product[k]
            else np.flatnonzero(c.category == c_category[k])
        )
        if d0 <= d1:
            block = disc[c_channel[k], rows, d0 : d1 + 1]
            disc[c_channel[k], rows, d0 : d1 + 1] = np.maximum(block, final_discount[k])
        p0, p1 = max(final_end[k] + 1, 0), min(final_end[k] + 5, D - 1)
        if p0 <= p1:
            dip[rows, p0 : p1 + 1] = np.minimum(dip[rows, p0 : p1 + 1], 0.85)
    camps = _Campaigns(n=n_camp, scope_product=c_scope_product, product=c_product,
                       category=c_category, start=c_start, end=c_end, end2=c_end2,
                       discount=c_discount, discount2=c_discount2, channel=c_channel,
                       created_s=c_created_s, edited=c_edited, edit_s=c_edit_s,
                       deleted=c_deleted, delete_s=c_delete_s, disc=disc, dip=dip,
                       store=c_store)  # fmt: skip
    if not loc.K:
        return camps
    local_disc = _local_discount(g, c, loc, camps, np.flatnonzero(effective & (c_store >= 0)))
    return replace(camps, local=local_disc)


def _demand(spec: WorldSpec, g: _Grid, c: _Catalog, prices: _Prices, camps: _Campaigns,
            loc: _Locations, g_dem: np.random.Generator) -> _Demand:  # fmt: skip
    """Expected demand (the model in the module docstring), realised demand, stock-outs."""
    P, D = g.P, g.D
    categories = spec.catalog.categories
    d_idx = np.arange(D)
    long_tail, category, launch = c.long_tail, c.category, c.launch
    base = np.where(long_tail, g_dem.uniform(0.05, 0.6, P), g_dem.lognormal(np.log(4.0), 0.7, P))
    trend = np.exp(np.outer(g_dem.normal(0.0, 0.25, P), d_idx / 365.25))
    weekly_cat = _WEEKLY_BASE * g_dem.uniform(0.9, 1.1, (categories, 7))
    dow = (np.datetime64(g.start, "D").astype(int) + 3 + d_idx) % 7
    weekly = weekly_cat[category][:, dow]
    doy = _day_of_year(g)
    amp = g_dem.uniform(0.05, 0.35, categories)
    peak = g_dem.uniform(0, 365, categories)
    yearly = 1 + amp[category][:, None] * np.cos(
        2 * np.pi * (doy[None, :] - peak[category][:, None]) / 365.25
    )
    holidays = _holiday_multipliers(g.start, D)
    elasticity = g_dem.uniform(1.0, 2.5, P)
    day_price = prices.at(np.repeat(np.arange(P), D), np.tile(d_idx * DAY + DAY // 2, P)).reshape(
        P, D
    )
    price_effect = (day_price / c.launch_price[:, None]) ** (-elasticity[:, None])
    disc = camps.disc
    lift_all = (1 - disc[0]) ** (-1.5 * elasticity[:, None])
    lift = lift_all.copy()
    for ch in range(3):
        lift *= 1 + _CHANNEL_SHARE[ch] * ((1 - disc[ch + 1]) ** (-1.5 * elasticity[:, None]) - 1)
    lift = np.minimum(lift, MAX_PROMOTION_LIFT)
    active = (d_idx[None, :] >= launch[:, None]) & (d_idx[None, :] < c.discontinued[:, None])
    ramp = np.clip((d_idx[None, :] - launch[:, None] + 1) / 30.0, 0.0, 1.0)
    expected = (
        base[:, None]
        * trend
        * weekly
        * yearly
        * holidays[None, :]
        * price_effect
        * lift
        * camps.dip
        * ramp
    )
    if loc.K:  # one series per product and location
        sp, ss = loc.series_product, loc.series_store
        local_lift = (1 - camps.local) ** (-1.5 * elasticity[sp][:, None])
        # Capped with the product's own lift: the store's shelf empties as fast either way.
        capped = np.minimum(local_lift, MAX_PROMOTION_LIFT / lift[sp])
        expected = expected[sp] * loc.factor[ss] * capped
        active = active[sp] & (loc.factor[ss] > 0)
        long_tail = long_tail[sp]
    n_rows = expected.shape[0]
    expected = np.where(active, expected, 0.0)
    dispersion = np.where(long_tail, 50.0, 4.0)[:, None]
    demand = g_dem.negative_binomial(dispersion, dispersion / (dispersion + expected))
    demand = np.where(active, demand, 0)
    # Stock-outs: episodes of 1–7 days in which nothing is served.
    starts = np.argwhere(g_dem.random((n_rows, D)) < np.where(long_tail, 0.002, 0.004)[:, None])
    lengths = g_dem.integers(1, 8, len(starts))
    rows = np.repeat(starts[:, 0], lengths)
    cols = np.repeat(starts[:, 1], lengths) + (
        np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    )
    keep = cols < D
    stockout = np.zeros((len(expected), D), dtype=bool)
    stockout[rows[keep], cols[keep]] = True
    served = np.where(stockout, 0, demand)
    return _Demand(expected=expected, demand=demand, served=served, stockout=stockout,
                   active=active)  # fmt: skip


def _place_anomalies(spec: WorldSpec, g: _Grid, c: _Catalog, loc: _Locations, dem: _Demand,
                     g_anom: np.random.Generator) -> tuple[_Anomalies, _Demand]:  # fmt: skip
    """Where anomalies go (grid rows: products, or series with locations); the demand with
    their days' stock restored and drops applied."""
    an, H, S = spec.anomalies, g.H, g.S
    expected, demand = dem.expected, dem.demand
    served, stockout = dem.served.copy(), dem.stockout.copy()
    sp = loc.series_product
    window_active = dem.active[:, H:].all(axis=1) & ~c.long_tail[sp]
    candidates = np.flatnonzero(window_active & (c.delete_s[sp] < 0))
    n_anom = 0
    if an.rate > 0 and not len(candidates):
        logger.warning(
            "anomalies.rate %s: no product can carry an anomaly (each must sell every day of the "
            "window and not be long-tail), so none is injected", an.rate,
        )  # fmt: skip
    if an.rate > 0 and len(candidates) and S > 0:
        n_anom = max(len(an.types), round(an.rate * len(candidates) * S))
    a_type = np.array([_ANOMALY_CODES[t] for t in an.types])[np.arange(n_anom) % len(an.types)]
    a_type = g_anom.permutation(a_type) if n_anom else a_type
    a_product = g_anom.choice(candidates, size=n_anom) if n_anom else np.array([], int)
    a_day = H + g_anom.integers(0, S, n_anom)
    # A drop only shows where there was demand to lose: drops take busy product-days.
    drops = np.flatnonzero(a_type == _ANOMALY_CODES["drop"])
    if len(drops):
        # Busy by expectation, not by noise; but only days whose realised demand is positive,
        # since a drop on a day nobody wanted the product removes nothing.
        realised = demand[candidates, H:]
        window_demand = np.where(realised > 0, expected[candidates, H:], -1.0)
        busiest = np.argsort(window_demand, axis=None, kind="stable")[::-1][: max(20, len(drops))]
        busiest = busiest[realised.ravel()[busiest] > 0] if realised.any() else busiest
        picked = g_anom.choice(busiest, size=len(drops), replace=len(busiest) < len(drops))
        a_product[drops] = candidates[picked // S]
        a_day[drops] = H + picked % S
    if loc.K and len(drops):
        # A drop hits the product in every location: another anomaly of that product on that
        # day (at one store) would hide it in the day's total. Such an anomaly moves to a series
        # of another product.
        dropped = {(int(sp[a_product[i]]), int(a_day[i])) for i in drops}
        for i in np.flatnonzero(a_type != _ANOMALY_CODES["drop"]):
            if (int(sp[a_product[i]]), int(a_day[i])) in dropped:
                others = candidates[~np.isin(sp[candidates], [p for p, _ in dropped])]
                if len(others):
                    a_product[i] = g_anom.choice(others)
    # An anomaly on a stocked-out day would be invisible; move those days' stock back.
    stockout[a_product, a_day] = False
    served[a_product, a_day] = demand[a_product, a_day]
    a_drop = a_type == _ANOMALY_CODES["drop"]
    drop_factor = g_anom.uniform(0.0, 0.1, n_anom)
    drop_before = served[a_product, a_day].copy()
    if not loc.K:
        served[a_product[a_drop], a_day[a_drop]] = np.floor(
            served[a_product[a_drop], a_day[a_drop]] * drop_factor[a_drop]
        ).astype(served.dtype)
        drop_after = served[a_product, a_day].copy()
    else:  # a drop hits the product in every location that day
        drop_after = served[a_product, a_day].copy()
        for i in np.flatnonzero(a_drop):
            rows, day = loc.rows_of(sp[a_product[i]]), a_day[i]
            stockout[rows, day] = False
            served[rows, day] = demand[rows, day]
            drop_before[i] = served[rows, day].sum()
            served[rows, day] = np.floor(served[rows, day] * drop_factor[i]).astype(served.dtype)
            drop_after[i] = served[rows, day].sum()
    anomalies = _Anomalies(n=n_anom, type=a_type, product=a_product, day=a_day,
                           drop_before=drop_before, drop_after=drop_after)  # fmt: skip
    return anomalies, replace(dem, served=served, stockout=stockout)


def _normal_lines(g: _Grid, loc: _Locations, served: np.ndarray,
                  g_lines: np.random.Generator) -> dict:  # fmt: skip
    """Served units split into order lines of one or more units, with a time and a channel."""
    flat = served.ravel()
    cells = np.flatnonzero(flat)
    units = flat[cells]
    unit_cell = np.repeat(np.arange(len(cells)), units)
    new_line = g_lines.random(len(unit_cell)) < 0.55
    new_line[np.r_[0, np.cumsum(units)[:-1]] if len(units) else []] = True
    line_of_unit = np.cumsum(new_line) - 1
    n_lines = int(line_of_unit[-1] + 1) if len(line_of_unit) else 0
    line_qty = np.bincount(line_of_unit, minlength=n_lines).astype(np.int32)
    line_cell = cells[unit_cell[new_line]]
    line_row = line_cell // g.D
    line_day = line_cell % g.D
    hour = g_lines.choice(24, size=n_lines, p=_HOURLY)
    line_s = line_day.astype(np.int64) * DAY + hour * 3600 + g_lines.integers(0, 3600, n_lines)
    if loc.K:  # in a store mostly; at the web location online
        online = loc.online[loc.series_store[line_row]]
        draw = g_lines.random(n_lines)
        line_channel = np.where(
            online,
            np.searchsorted(np.cumsum(_ONLINE_CHANNELS), draw, side="right"),
            np.searchsorted(np.cumsum(_STORE_CHANNELS), draw, side="right"),
        ).clip(0, 2)
    else:
        line_channel = g_lines.choice(3, size=n_lines, p=_CHANNEL_SHARE)
    return {"row": line_row, "s": line_s, "qty": line_qty, "channel": line_channel,
            "anomaly": np.full(n_lines, -1), "glitch": np.ones(n_lines)}  # fmt: skip


def _anomalous_lines(dem: _Demand, a: _Anomalies,
                     g_anom: np.random.Generator) -> tuple[dict, _Anomalies]:  # fmt: skip
    """Spikes (one huge line), price glitches (wrong price), duplicate bursts; drops' extent."""
    expected = dem.expected
    a_product, a_day, a_type, n_anom = a.product, a.day, a.type, a.n
    extra_p, extra_s, extra_q, extra_c, extra_a, glitch = [], [], [], [], [], []
    a_magnitude = np.zeros(n_anom)
    a_start_s = a_day.astype(np.int64) * DAY + g_anom.integers(8 * 3600, 20 * 3600, n_anom)
    a_end_s = a_start_s.copy()
    for i in range(n_anom):
        p, t = a_product[i], a_start_s[i]
        typical = max(1.0, float(expected[p, a_day[i]]))
        if a_type[i] == _ANOMALY_CODES["spike"]:
            q = max(12, round(g_anom.uniform(6, 15) * typical))
            extra_p.append([p]), extra_s.append([t]), extra_q.append([q])
            extra_c.append([g_anom.integers(0, 3)]), extra_a.append([i]), glitch.append([1.0])
            a_magnitude[i] = q / typical
        elif a_type[i] == _ANOMALY_CODES["duplicate_burst"]:
            n = int(g_anom.integers(6, 16))
            q = int(g_anom.integers(1, 4))
            ts = t + np.sort(g_anom.integers(0, 60, n))
            extra_p.append([p] * n), extra_s.append(list(ts)), extra_q.append([q] * n)
            extra_c.append([g_anom.integers(0, 3)] * n), extra_a.append([i] * n)
            glitch.append([1.0] * n)
            a_magnitude[i], a_end_s[i] = n, ts[-1]
        elif a_type[i] == _ANOMALY_CODES["price_glitch"]:
            n = int(g_anom.integers(1, 4))
            factor = float(g_anom.choice([0.01, 0.1, 10.0]))
            ts = t + np.sort(g_anom.integers(0, 1800, n))
            extra_p.append([p] * n), extra_s.append(list(ts)), extra_q.append([1] * n)
            extra_c.append(list(g_anom.integers(0, 3, n))), extra_a.append([i] * n)
            glitch.append([factor] * n)
            a_magnitude[i], a_end_s[i] = factor, ts[-1]
        else:  # drop: fewer lines that day
            a_start_s[i] = a_day[i] * DAY
            a_end_s[i] = (a_day[i] + 1) * DAY - 1
            a_magnitude[i] = a.drop_after[i] / max(1.0, float(a.drop_before[i]))

    def _cat(parts: list[list], dtype) -> np.ndarray:
        return np.array([x for part in parts for x in part], dtype=dtype)

    lines = {"row": _cat(extra_p, np.int64), "s": _cat(extra_s, np.int64),
             "qty": _cat(extra_q, np.int32), "channel": _cat(extra_c, np.int64),
             "anomaly": _cat(extra_a, np.int64), "glitch": _cat(glitch, np.float64)}  # fmt: skip
    return lines, replace(a, start_s=a_start_s, end_s=a_end_s, magnitude=a_magnitude)


def _lines(normal: dict, extra: dict, prices: _Prices, camps: _Campaigns,
           loc: _Locations) -> _Lines:  # fmt: skip
    """All order lines in time order, numbered, priced (list price, discount, glitches)."""
    line_product = np.concatenate([normal["row"], extra["row"]])  # the row, until sorted
    line_s = np.concatenate([normal["s"], extra["s"]])
    line_qty = np.concatenate([normal["qty"], extra["qty"]])
    line_channel = np.concatenate([normal["channel"], extra["channel"]])
    line_anomaly = np.concatenate([normal["anomaly"], extra["anomaly"]])
    price_factor = np.concatenate([normal["glitch"], extra["glitch"]])
    line_day = line_s // DAY
    # Sale ids follow time, as an auto-increment key does.
    order = np.lexsort((line_product, line_s))
    line_product, line_s, line_qty = line_product[order], line_s[order], line_qty[order]
    line_channel, line_anomaly = line_channel[order], line_anomaly[order]
    price_factor, line_day = price_factor[order], line_day[order]
    sale_id = np.arange(1, len(line_s) + 1, dtype=np.int64)
    line_row = line_product
    line_product = loc.series_product[line_row]
    line_store = loc.series_store[line_row]
    disc = camps.disc
    line_disc = np.maximum(
        disc[0, line_product, line_day], disc[line_channel + 1, line_product, line_day]
    )
    if loc.K:
        line_disc = np.maximum(line_disc, camps.local[line_row, line_day])
        # An anomaly's line at the web location is an online order whatever was drawn.
        in_store = loc.online[line_store] & (line_channel == CHANNELS.index("store"))
        line_channel = np.where(in_store, CHANNELS.index("web"), line_channel)
    line_price = np.round(prices.at(line_product, line_s) * (1 - line_disc) * price_factor, 2)
    line_price = np.maximum(line_price, 0.01)
    return _Lines(row=line_row, store=line_store, product=line_product, s=line_s, qty=line_qty,
                  channel=line_channel, anomaly=line_anomaly, day=line_day, sale_id=sale_id,
                  price=line_price)  # fmt: skip


def _sales_changes(g: _Grid, lines: _Lines, g_changes: np.random.Generator) -> _SalesChanges:
    """Window lines commit shortly after the sale; a few are cancelled or corrected."""
    load_s, end_s = g.load_s, g.end_s
    in_window = lines.s >= load_s
    commit_s_frac = g_changes.uniform(0.05, 2.0, len(lines.s))
    line_commit_us = lines.s * 1_000_000 + (commit_s_frac * 1_000_000).astype(np.int64)
    normal_window = np.flatnonzero(in_window & (lines.anomaly < 0))
    cancel = normal_window[g_changes.random(len(normal_window)) < 0.01]
    cancel_us = line_commit_us[cancel] + g_changes.integers(60, 4 * 3600, len(cancel)) * 1_000_000
    cancel = cancel[cancel_us < end_s * 1_000_000]
    cancel_us = cancel_us[cancel_us < end_s * 1_000_000]
    rest = np.setdiff1d(normal_window, cancel)
    correct = rest[g_changes.random(len(rest)) < 0.005]
    if len(rest) and not len(correct):  # at least one correction, so sales see an update
        correct = rest[g_changes.integers(0, len(rest), 1)]
    correct_us = (
        line_commit_us[correct] + g_changes.integers(60, 4 * 3600, len(correct)) * 1_000_000
    )
    keep_c = correct_us < end_s * 1_000_000
    correct, correct_us = correct[keep_c], correct_us[keep_c]
    line_qty = lines.qty
    corrected_qty = np.where(line_qty[correct] > 1, line_qty[correct] - 1, line_qty[correct] + 1)
    final_qty = line_qty.copy()
    final_qty[correct] = corrected_qty
    alive = np.ones(len(lines.s), dtype=bool)
    alive[cancel] = False
    return _SalesChanges(in_window=in_window, commit_us=line_commit_us, cancel=cancel,
                         cancel_us=cancel_us, correct=correct, correct_us=correct_us,
                         corrected_qty=corrected_qty, final_qty=final_qty,
                         alive=alive)  # fmt: skip


# ------------------------------------------------------------------------------ table rows
def _store_column(loc: _Locations, store: np.ndarray) -> pa.Array:
    """Location ids of a column of location indexes (null where -1, or without locations)."""
    if not loc.K:
        return pa.nulls(len(store), pa.string())
    return pa.array(loc.store_ids[np.maximum(store, 0)], mask=store < 0, type=pa.string())


def _sales_rows(g: _Grid, c: _Catalog, loc: _Locations, lines: _Lines, idx: np.ndarray,
                qty: np.ndarray) -> dict[str, pa.Array]:  # fmt: skip
    return {
        "sale_id": pa.array(lines.sale_id[idx]),
        "product_id": pa.array(c.product_ids[lines.product[idx]]),
        "quantity": pa.array(qty, type=pa.int32()),
        "unit_price": pa.array(lines.price[idx]),
        "channel": pa.array(np.array(CHANNELS)[lines.channel[idx]]),
        "sold_at": _timestamps(g.start64, lines.s[idx]),
        "store_id": _store_column(loc, lines.store[idx]),
    }


def _store_rows(g: _Grid, loc: _Locations, idx: np.ndarray,
                at_s: np.ndarray) -> dict[str, pa.Array]:  # fmt: skip
    """Location rows as they read at ``at_s`` (a closing shows once announced)."""
    closing = loc.close_announce_s[idx] <= at_s
    return {
        "store_id": pa.array(loc.store_ids[idx], pa.string()),
        "region": pa.array(loc.region[idx], pa.string()),
        "store_format": pa.array(np.array(STORE_FORMATS)[loc.store_format[idx]], pa.string()),
        "opened_date": _dates(g.start64, loc.open_day[idx]),
        "closed_date": pa.array(
            _dates(g.start64, np.where(closing, loc.close_day[idx], 0)).to_numpy(
                zero_copy_only=False
            ),
            mask=~closing,
            type=pa.date32(),
        ),
    }


def _product_rows(g: _Grid, c: _Catalog, prices: _Prices, idx: np.ndarray,
                  at_s: np.ndarray) -> dict[str, pa.Array]:  # fmt: skip
    """Product rows as they read at ``at_s`` (list price, known discontinuation)."""
    disc_known = c.has_disc[idx] & (c.disc_announce_s[idx] <= at_s)
    disc_dates = _dates(g.start64, np.where(disc_known, c.discontinued[idx], 0))
    return {
        "product_id": pa.array(c.product_ids[idx]),
        "name": pa.array(c.product_names[idx]),
        "category": pa.array(c.cat_names[c.category[idx]]),
        "brand": pa.array(c.brand_names[c.brand[idx]]),
        "price_tier": pa.array(np.array(PRICE_TIERS)[c.tier[idx]]),
        "list_price": pa.array(prices.at(idx, at_s)),
        "launch_date": _dates(g.start64, c.launch[idx]),
        "discontinued_date": pa.array(
            disc_dates.to_numpy(zero_copy_only=False), mask=~disc_known, type=pa.date32()
        ),
    }


def _campaign_rows(g: _Grid, c: _Catalog, loc: _Locations, k: _Campaigns, idx: np.ndarray,
                   edited: np.ndarray) -> dict[str, pa.Array]:  # fmt: skip
    """Campaign rows, before or after their edit."""
    scope_p = k.scope_product[idx]
    return {
        "campaign_id": pa.array(_ids("C", k.n, 6)[idx]),
        "scope": pa.array(np.where(scope_p, "product", "category")),
        "product_id": pa.array(c.product_ids[k.product[idx]], mask=~scope_p),
        "category": pa.array(c.cat_names[k.category[idx]], mask=scope_p),
        "start_date": _dates(g.start64, k.start[idx]),
        "end_date": _dates(g.start64, np.where(edited, k.end2[idx], k.end[idx])),
        "discount": pa.array(np.where(edited, k.discount2[idx], k.discount[idx])),
        "channel": pa.array(np.array(CAMPAIGN_CHANNELS)[k.channel[idx]]),
        "store_id": _store_column(loc, k.store[idx]),
    }


_Changes = dict[str, list[tuple[dict[str, pa.Array], str, np.ndarray]]]


def _change_log(g: _Grid, c: _Catalog, loc: _Locations, prices: _Prices, k: _Campaigns,
                lines: _Lines, sc: _SalesChanges) -> _Changes:  # fmt: skip
    """Every version DMS sees: the full load at the window's start, then the window's changes."""
    load_s, end_s = g.load_s, g.end_s
    load_us = load_s * 1_000_000
    changes: _Changes = {}
    # Full load snapshot at the window start.
    p_load = np.flatnonzero(c.insert_s <= load_s)
    changes["products"] = [(_product_rows(g, c, prices, p_load, np.full(len(p_load), load_s)),
                            "load", np.full(len(p_load), load_us))]  # fmt: skip
    c_load = np.flatnonzero(k.created_s <= load_s)
    changes["campaigns"] = [(_campaign_rows(g, c, loc, k, c_load,
                                            k.edited[c_load] & (k.edit_s[c_load] <= load_s)),
                             "load", np.full(len(c_load), load_us))]  # fmt: skip
    s_load = np.flatnonzero(~sc.in_window)
    changes["sales"] = [
        (_sales_rows(g, c, loc, lines, s_load, lines.qty[s_load]), "load",
         np.full(len(s_load), load_us))
    ]  # fmt: skip
    if loc.K:  # locations: the load, stores opening (their rows are created), closings announced
        o_load = np.flatnonzero(loc.insert_s <= load_s)
        o_ins = np.flatnonzero((loc.insert_s > load_s) & (loc.insert_s <= end_s))
        o_close = np.flatnonzero((loc.close_announce_s > load_s) & (loc.close_announce_s <= end_s)
                                 & (loc.insert_s < loc.close_announce_s))  # fmt: skip
        changes["stores"] = [
            (_store_rows(g, loc, o_load, np.full(len(o_load), load_s)), "load",
             np.full(len(o_load), load_us)),
            (_store_rows(g, loc, o_ins, loc.insert_s[o_ins]), "insert",
             loc.insert_s[o_ins] * 1_000_000),
            (_store_rows(g, loc, o_close, loc.close_announce_s[o_close]), "update",
             loc.close_announce_s[o_close] * 1_000_000 + 3),
        ]  # fmt: skip
    # Products: inserts (new in the window), price updates, discontinuation notices, deletes.
    insert_s, delete_s, upd_product, upd_s = (
        c.insert_s,
        c.delete_s,
        prices.upd_product,
        prices.upd_s,
    )
    p_ins = np.flatnonzero((insert_s > load_s) & (insert_s <= end_s))
    p_upd_mask = (upd_s > load_s) & (upd_s <= end_s) & (insert_s[upd_product] < upd_s)
    p_upd_mask &= (delete_s[upd_product] < 0) | (upd_s < delete_s[upd_product])
    p_upd, p_upd_s = upd_product[p_upd_mask], upd_s[p_upd_mask]
    announce_s = c.disc_announce_s
    p_disc = np.flatnonzero(c.has_disc & (announce_s > load_s) & (announce_s <= end_s)
                            & (insert_s < announce_s))  # fmt: skip
    p_del = np.flatnonzero(delete_s >= 0)
    changes["products"] += [
        (
            _product_rows(g, c, prices, p_ins, insert_s[p_ins]),
            "insert",
            insert_s[p_ins] * 1_000_000,
        ),
        (_product_rows(g, c, prices, p_upd, p_upd_s), "update", p_upd_s * 1_000_000 + 1),
        (
            _product_rows(g, c, prices, p_disc, announce_s[p_disc]),
            "update",
            announce_s[p_disc] * 1_000_000 + 2,
        ),
        (
            _product_rows(g, c, prices, p_del, delete_s[p_del]),
            "delete",
            delete_s[p_del] * 1_000_000,
        ),
    ]
    # Campaigns: created, edited and cancelled during the window.
    c_ins = np.flatnonzero((k.created_s > load_s) & (k.created_s <= end_s))
    c_upd = np.flatnonzero(k.edited & (k.edit_s > load_s) & (k.edit_s <= end_s))
    c_del = np.flatnonzero(k.deleted)
    changes["campaigns"] += [
        (_campaign_rows(g, c, loc, k, c_ins,
                        k.edited[c_ins] & (k.edit_s[c_ins] <= k.created_s[c_ins])),
         "insert", k.created_s[c_ins] * 1_000_000),
        (_campaign_rows(g, c, loc, k, c_upd, np.ones(len(c_upd), bool)), "update",
         k.edit_s[c_upd] * 1_000_000 + 1),
        (_campaign_rows(g, c, loc, k, c_del,
                        k.edited[c_del] & (k.edit_s[c_del] <= k.delete_s[c_del])),
         "delete", k.delete_s[c_del] * 1_000_000 + 2),
    ]  # fmt: skip
    # Sales: new order lines, cancellations (delete), quantity corrections (update).
    s_ins = np.flatnonzero(sc.in_window)
    changes["sales"] += [
        (_sales_rows(g, c, loc, lines, s_ins, lines.qty[s_ins]), "insert", sc.commit_us[s_ins]),
        (_sales_rows(g, c, loc, lines, sc.correct, sc.corrected_qty), "update", sc.correct_us),
        (_sales_rows(g, c, loc, lines, sc.cancel, lines.qty[sc.cancel]), "delete", sc.cancel_us),
    ]
    return changes


def _truth_daily(g: _Grid, c: _Catalog, loc: _Locations, dem: _Demand, k: _Campaigns,
                 lines: _Lines, sc: _SalesChanges) -> pa.Table:  # fmt: skip
    """Per active product-day (product × location × day with locations): expected, demanded,
    served and sold units, stock-out, discount."""
    R, D = len(dem.active), g.D
    sold = np.zeros(R * D, dtype=np.int64)
    alive = sc.alive
    np.add.at(sold, lines.row[alive] * D + lines.day[alive], sc.final_qty[alive])
    act_rows, act_days = np.nonzero(dem.active)
    act_products = loc.series_product[act_rows]
    discount = k.disc[:, act_products, act_days].max(axis=0)
    if loc.K:
        discount = np.maximum(discount, k.local[act_rows, act_days])
    return pa.table(
        {
            "product_id": pa.array(c.product_ids[act_products]),
            "store_id": _store_column(loc, loc.series_store[act_rows]),
            "date": _dates(g.start64, act_days),
            "expected": pa.array(np.round(dem.expected[act_rows, act_days], 6)),
            "demand": pa.array(dem.demand[act_rows, act_days].astype(np.int64)),
            "served": pa.array(dem.served[act_rows, act_days].astype(np.int64)),
            "sold": pa.array(sold.reshape(R, D)[act_rows, act_days]),
            "stockout": pa.array(dem.stockout[act_rows, act_days]),
            "discount": pa.array(discount),
            "in_window": pa.array(act_days >= g.H),
        }
    )


TRUTH_ANOMALIES = pa.schema(
    [
        ("anomaly_id", pa.string()),
        ("type", pa.string()),
        ("product_id", pa.string()),
        ("store_id", pa.string()),  # null: every location (a drop), or a world without them
        ("start", pa.timestamp("s", tz="UTC")),
        ("end", pa.timestamp("s", tz="UTC")),
        ("magnitude", pa.float64()),
        ("sale_ids", pa.list_(pa.int64())),
    ]
)


def empty_truth_anomalies() -> pa.Table:
    return TRUTH_ANOMALIES.empty_table()


def _truth_anomalies(g: _Grid, c: _Catalog, loc: _Locations, a: _Anomalies,
                     lines: _Lines) -> pa.Table:  # fmt: skip
    """Each injected anomaly: type, product, location, moment, magnitude and its sale ids."""
    n_anom = a.n
    a_store = np.where(a.type == _ANOMALY_CODES["drop"], -1, loc.series_store[a.product])
    a_sales = [lines.sale_id[lines.anomaly == i].tolist() for i in range(n_anom)]
    type_names = np.array(list(_ANOMALY_CODES))
    return pa.table(
        {
            "anomaly_id": pa.array(
                _ids("A", n_anom, 5) if n_anom else np.array([], str), pa.string()
            ),
            "type": pa.array(type_names[a.type] if n_anom else np.array([], str), pa.string()),
            "product_id": pa.array(
                c.product_ids[loc.series_product[a.product]] if n_anom else np.array([], str),
                pa.string(),
            ),
            "store_id": _store_column(loc, a_store),
            "start": _timestamps(g.start64, a.start_s),
            "end": _timestamps(g.start64, a.end_s),
            "magnitude": pa.array(np.round(a.magnitude, 4), pa.float64()),
            "sale_ids": pa.array(a_sales, type=pa.list_(pa.int64())),
        }
    )


def _shop_events(spec: WorldSpec, g: _Grid, c: _Catalog, lines: _Lines,
                 sc: _SalesChanges) -> pa.Table:  # fmt: skip
    """Order lines of the shop's channels that the shop also puts on the stream itself."""
    direct = np.flatnonzero(
        sc.in_window
        & np.isin(lines.channel, [CHANNELS.index(ch) for ch in spec.ecommerce.channels])
    )
    if not spec.ecommerce.direct_events:
        direct = direct[:0]
    return pa.table(
        {
            "sale_id": pa.array(lines.sale_id[direct]),
            "product_id": pa.array(c.product_ids[lines.product[direct]]),
            "quantity": pa.array(lines.qty[direct], pa.int32()),
            "unit_price": pa.array(lines.price[direct]),
            "channel": pa.array(np.array(CHANNELS)[lines.channel[direct]]),
            "sold_at": _timestamps(g.start64, lines.s[direct]),
            "_sent_us": pa.array(lines.s[direct] * 1_000_000 + 200_000),
        }
    )


# --------------------------------------------------------------------------------- simulation
def simulate(spec: WorldSpec) -> SimulatedWorld:
    """Generate the world for ``spec`` (pure: same spec ⇒ same tables)."""
    # The ninth generator (locations) is spawned after the first eight, which therefore stay
    # the same with or without locations.
    gens = [np.random.default_rng(s) for s in np.random.SeedSequence(spec.seed).spawn(9)]
    g_prod, g_price, g_camp, g_dem, g_lines, g_anom, g_changes, g_names, g_store = gens
    grid = _Grid.of(spec)
    catalog = _catalog(spec, grid, g_prod, g_names)
    locations = _locations(spec, grid, g_store)
    prices = _prices(grid, catalog, g_price)
    campaigns = _campaigns(spec, grid, catalog, g_camp, locations, g_store)
    demand = _demand(spec, grid, catalog, prices, campaigns, locations, g_dem)
    anomalies, demand = _place_anomalies(spec, grid, catalog, locations, demand, g_anom)
    normal = _normal_lines(grid, locations, demand.served, g_lines)
    extra, anomalies = _anomalous_lines(demand, anomalies, g_anom)
    lines = _lines(normal, extra, prices, campaigns, locations)
    sales_changes = _sales_changes(grid, lines, g_changes)

    alive = sales_changes.alive
    sales_final = pa.table(
        _sales_rows(grid, catalog, locations, lines, np.flatnonzero(alive),
                    sales_changes.final_qty[alive]),
        schema=SALES,
    )  # fmt: skip
    exists_end = (catalog.insert_s <= grid.end_s) & (catalog.delete_s < 0)
    products_final = pa.table(
        _product_rows(grid, catalog, prices, np.flatnonzero(exists_end),
                      np.full(exists_end.sum(), grid.end_s)),
        schema=PRODUCTS,
    )  # fmt: skip
    camp_exists_end = (campaigns.created_s <= grid.end_s) & ~campaigns.deleted
    ce = np.flatnonzero(camp_exists_end)
    campaigns_final = pa.table(
        _campaign_rows(grid, catalog, locations, campaigns, ce,
                       campaigns.edited[ce] & (campaigns.edit_s[ce] <= grid.end_s)),
        schema=CAMPAIGNS,
    )  # fmt: skip
    change_log = _change_log(grid, catalog, locations, prices, campaigns, lines, sales_changes)
    store_rows = np.flatnonzero(locations.insert_s <= grid.end_s)
    stores_final = pa.table(
        _store_rows(grid, locations, store_rows, np.full(len(store_rows), grid.end_s)),
        schema=STORES,
    )
    change_tables = assemble_changes(change_log, g_changes)
    stats = {
        "products": grid.P,
        "sales_lines": len(lines.s),
        "window_lines": int(sales_changes.in_window.sum()),
        "anomalies": anomalies.n,
        "campaigns": int(camp_exists_end.sum()),
    }
    if locations.K:
        stats["stores"] = locations.K
    logger.info("simulated world: %s", stats)
    return SimulatedWorld(
        spec=spec,
        start=dt.datetime.combine(grid.start, dt.time(), tzinfo=dt.UTC),
        load_seconds=grid.load_s,
        end_seconds=grid.end_s,
        products=products_final,
        campaigns=campaigns_final,
        sales=sales_final,
        changes=change_tables,
        truth_daily=_truth_daily(grid, catalog, locations, demand, campaigns, lines, sales_changes),
        truth_anomalies=_truth_anomalies(grid, catalog, locations, anomalies, lines),
        ecommerce_events=_shop_events(spec, grid, catalog, lines, sales_changes),
        stats=stats,
        stores=stores_final,
    )


# At one commit time a location is created before the sales that name it.
_TABLE_ORDER = {"stores": -1, "products": 0, "campaigns": 1, "sales": 2}
_SCHEMAS = {"products": PRODUCTS, "campaigns": CAMPAIGNS, "sales": SALES, "stores": STORES}


def assemble_changes(
    parts: dict[str, list[tuple[dict[str, pa.Array], str, np.ndarray]]],
    rng: np.random.Generator,
) -> dict[str, pa.Table]:
    """One table of versions per source table, with commit order and transaction ids.

    The commit order is global across tables (by commit time, then table, then key) and each
    change commits in its own transaction; transaction ids increase in commit order from a
    seeded base, as a database's do.
    """
    tables: dict[str, pa.Table] = {}
    for name, chunks in parts.items():
        pieces = []
        for columns, op, commit_us in chunks:
            table = pa.table(columns, schema=_SCHEMAS[name])
            table = table.append_column("_op", pa.array([op] * len(table), pa.string()))
            table = table.append_column("_commit_us", pa.array(commit_us.astype(np.int64)))
            pieces.append(table)
        tables[name] = pa.concat_tables(pieces)
    # Global commit order over the CDC part (load rows keep their place first).
    keys = []
    for name, table in tables.items():
        op = table.column("_op").to_numpy(zero_copy_only=False)
        keys.append(
            (
                table.column("_commit_us").to_numpy(),
                np.full(len(table), _TABLE_ORDER[name]),
                np.arange(len(table)),
                op == "load",
            )
        )
    commit = np.concatenate([k[0] for k in keys])
    table_no = np.concatenate([k[1] for k in keys])
    row_no = np.concatenate([k[2] for k in keys])
    is_load = np.concatenate([k[3] for k in keys])
    order = np.lexsort((row_no, table_no, commit, ~is_load))
    seq = np.empty(len(order), dtype=np.int64)
    seq[order] = np.arange(len(order))
    n_load = int(is_load.sum())
    base_txn = 10_000_000 + int(rng.integers(0, 10_000_000))
    txn = np.where(is_load, -1, base_txn + seq - n_load)
    offset = 0
    for name in list(tables):
        n = len(tables[name])
        t = tables[name]
        t = t.append_column("_seq", pa.array(seq[offset : offset + n]))
        t = t.append_column(
            "_txn", pa.array(txn[offset : offset + n], mask=is_load[offset : offset + n])
        )
        tables[name] = t.take(pa.array(np.argsort(seq[offset : offset + n], kind="stable")))
        offset += n
    return tables
