"""Per-hop counts reconcile: losses and duplicates within and between hops are found."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from harness.ledger import Ledger


def test_balanced_chain_reconciles() -> None:
    ledger = Ledger()
    ledger.link("producer", "stream")
    ledger.hop("producer").add(received=10, written=9)
    ledger.hop("producer").reject("negative quantity")
    ledger.hop("stream").add(received=9, written=9)
    result = ledger.reconcile()
    assert result == {"ok": True, "lost": 0, "duplicated": 0, "problems": []}
    assert ledger.counts()["producer"] == {
        "in": 10,
        "out": 9,
        "rejected": 1,
        "reasons": {"negative quantity": 1},
    }


def test_loss_between_hops_is_reported() -> None:
    ledger = Ledger()
    ledger.link("stream", "firehose")
    ledger.hop("stream").add(received=5, written=5)
    ledger.hop("firehose").add(received=3, written=3)
    result = ledger.reconcile()
    assert not result["ok"]
    assert result["lost"] == 2
    assert "stream → firehose: 2 lost" in result["problems"]


def test_unaccounted_records_inside_a_hop_are_lost() -> None:
    ledger = Ledger()
    ledger.hop("etl").add(received=7, written=4)
    ledger.hop("etl").reject("bad row", 2)
    assert ledger.reconcile()["lost"] == 1


@given(
    sent=st.integers(min_value=0, max_value=10_000),
    arrived=st.integers(min_value=0, max_value=10_000),
)
def test_link_difference_is_lost_or_duplicated(sent: int, arrived: int) -> None:
    ledger = Ledger()
    ledger.link("a", "b")
    ledger.hop("a").add(received=sent, written=sent)
    ledger.hop("b").add(received=arrived, written=arrived)
    result = ledger.reconcile()
    assert result["lost"] == max(sent - arrived, 0)
    assert result["duplicated"] == max(arrived - sent, 0)
    assert result["ok"] == (sent == arrived)
