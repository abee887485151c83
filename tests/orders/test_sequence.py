"""The run of an order as a sequence diagram (orders/sequence.py): lanes, arrows and marks."""

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest

from orders.journal import JournalEntry
from orders.sequence import command_target, sequence_svg

SVG = "{http://www.w3.org/2000/svg}"
START = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)


def journal(*lines: tuple[str, str, str, str]) -> list[JournalEntry]:
    return [
        JournalEntry(seq=i, at=START + timedelta(milliseconds=10 * i), service=s, kind=k, name=n, detail=d)
        for i, (s, k, n, d) in enumerate(lines, start=1)
    ]


def drawing(entries: list[JournalEntry], mode: str) -> ET.Element:
    return ET.fromstring(str(sequence_svg(entries, coordination=mode)))  # well-formed XML, or this raises


def lanes(svg: ET.Element) -> list[str]:
    return [g.get("data-service", "") for g in svg.iter(f"{SVG}g") if g.get("class") == "lane"]


def arrows(svg: ET.Element) -> list[tuple[str, str, str, str]]:
    return [
        (g.get("data-kind", ""), g.get("data-from", ""), g.get("data-to", ""), g.get("data-name", ""))
        for g in svg.iter(f"{SVG}g")
        if (g.get("class") or "").startswith("arrow")
    ]


def marks(svg: ET.Element) -> list[tuple[str, str]]:
    return [
        (g.get("data-kind", ""), g.get("data-service", ""))
        for g in svg.iter(f"{SVG}g")
        if (g.get("class") or "").startswith("mark")
    ]


def test_an_orchestrated_run_has_commands_from_orders_to_each_service():
    # given a declined order's journal, orchestrated
    entries = journal(
        ("inventory", "step", "reserve_stock", "succeeded for every line"),
        ("orders", "command", "payments.charge_payment", ""),
        ("orders", "status", "reserved", "reserve_stock succeeded (inventory)"),
        ("payments", "retry", "charge_payment", "ProviderUnavailable; again in 0.1s"),
        ("payments", "step", "charge_payment", "failed: PaymentDeclined"),
        ("orders", "status", "compensating", "charge_payment failed"),
        ("orders", "command", "orders.compensate", ""),
        ("orders", "command", "payments.refund_payment", ""),
        ("payments", "compensation", "refund_payment", "skipped"),
        ("orders", "command", "inventory.release_stock", ""),
        ("inventory", "compensation", "release_stock", "succeeded"),
        ("staff", "action", "", "Staff note: <b>call back</b>"),
    )

    svg = drawing(entries, "orchestration")

    # then one lane per service that appears, in the shop's order, time going down
    assert lanes(svg) == ["orders", "inventory", "payments", "staff"]
    assert arrows(svg) == [
        ("command", "orders", "payments", "payments.charge_payment"),
        ("command", "orders", "orders", "orders.compensate"),
        ("command", "orders", "payments", "payments.refund_payment"),
        ("command", "orders", "inventory", "inventory.release_stock"),
    ]
    assert marks(svg) == [
        ("step", "inventory"),
        ("status", "orders"),
        ("retry", "payments"),
        ("step", "payments"),
        ("status", "orders"),
        ("compensation", "payments"),
        ("compensation", "inventory"),
        ("action", "staff"),
    ]
    assert svg.get("data-coordination") == "orchestration"


def test_a_choreographed_run_has_events_from_their_publisher_to_each_subscriber():
    # given a declined order's journal, choreographed
    entries = journal(
        ("inventory", "event", "stock.reserved", ""),
        ("risk", "event", "risk.approved", ""),
        ("payments", "step", "charge_payment", "failed: PaymentDeclined"),
        ("orders", "status", "compensating", ""),
        ("payments", "event", "payment.declined", "error: PaymentDeclined"),
        ("inventory", "compensation", "release_stock", "succeeded"),
        ("inventory", "event", "stock.released", "outcome: succeeded"),
    )

    svg = drawing(entries, "choreography")

    assert lanes(svg) == ["orders", "inventory", "risk", "payments", "shipping"]
    drawn = arrows(svg)
    # stock.reserved wakes the risk service, its approval the payments service; a decline every
    # service that undoes its part
    assert ("event", "inventory", "risk", "stock.reserved") in drawn
    assert ("event", "risk", "payments", "risk.approved") in drawn
    declined = {to for kind, source, to, name in drawn if name == "payment.declined" and source == "payments"}
    assert declined == {"inventory", "payments", "shipping"}  # payments refunds its own charge
    assert ("event", "inventory", "orders", "stock.released") in drawn
    assert not [arrow for arrow in drawn if arrow[0] == "command"]


def test_the_same_event_goes_nowhere_in_the_other_mode():
    # stock.reserved has subscribers only when the services choreograph
    entries = journal(("inventory", "event", "stock.reserved", ""))

    svg = drawing(entries, "orchestration")

    assert arrows(svg) == []
    assert marks(svg) == [("event", "inventory")]


def test_every_text_is_escaped():
    entries = journal(("staff", "action", "<script>", 'Staff note: </text><script>alert("x")</script>'))

    markup = str(sequence_svg(entries, coordination="orchestration"))

    assert "<script>" not in markup
    assert "&lt;script&gt;" in markup
    ET.fromstring(markup)


@pytest.mark.parametrize(
    ("task", "service"),
    [
        ("payments.charge_payment", "payments"),
        ("inventory.reserve_stock", "inventory"),
        ("orders.finish_compensation", "orders"),
        ("shipping.cancel_shipment → payments.refund_payment", "shipping"),
    ],
)
def test_a_command_goes_to_the_service_its_task_names(task, service):
    assert command_target(task) == service


def test_an_empty_journal_draws_an_empty_diagram():
    svg = drawing([], "choreography")

    assert lanes(svg) == [] and arrows(svg) == []
