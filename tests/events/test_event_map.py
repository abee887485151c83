"""``manage.py event_map``: who reacts to what, drawn from the subscriptions, and docs/design.md's copy."""

import random
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from events.map import Edge, event_edges, event_map, readme_block, readme_map, readme_with_map
from events.registry import BOTH_MODES, CHOREOGRAPHY, ORCHESTRATION, Event, Publication, Subscription


def _handler(event: Event) -> None:
    pass


def sub(service: str, event: str, *, publishes: tuple[str, ...] = (), modes=(CHOREOGRAPHY,)) -> Subscription:
    return Subscription(
        service=service, event=event, handler=_handler, modes=frozenset(modes), step=False, reacts_with=publishes
    )


def pub(service: str, event: str, *, modes=BOTH_MODES) -> Publication:
    return Publication(service=service, event=event, modes=frozenset(modes))


SUBSCRIPTIONS = [
    sub("inventory", "order.placed", publishes=("stock.reserved", "stock.refused")),
    sub("payments", "stock.reserved", publishes=("payment.charged", "payment.declined")),
    sub("inventory", "payment.declined", publishes=("stock.released",)),
    sub("inventory", "stock.refused", publishes=("stock.released",)),
    sub("orders", "stock.released", publishes=("order.cancelled",)),
    sub("mailer", "order.placed", modes=BOTH_MODES),
    sub("mailer", "order.cancelled", modes=BOTH_MODES),
]
PUBLICATIONS = [pub("orders", "order.placed"), pub("orders", "order.compensating", modes=(CHOREOGRAPHY,))]


def chart(*lines: str) -> str:
    return "\n".join(["flowchart LR", *(f"    {line}" for line in lines)]) + "\n"


def test_each_service_points_at_the_services_that_react_to_its_events():
    assert event_map(SUBSCRIPTIONS, PUBLICATIONS) == chart(
        "inventory -->|stock.refused| inventory",
        "inventory -->|stock.released| orders",
        "inventory -->|stock.reserved| payments",
        "orders -->|order.placed| inventory",
        "orders -->|order.cancelled<br/>order.placed| mailer",
        "payments -->|payment.declined| inventory",
    )


def test_orchestration_shows_only_what_is_choreographed_in_both_modes():
    # order.cancelled is announced by a choreography-only handler: in orchestration nobody does.
    assert event_map(SUBSCRIPTIONS, PUBLICATIONS, mode=ORCHESTRATION) == chart("orders -->|order.placed| mailer")


def test_all_draws_the_edges_of_either_mode():
    assert event_edges(SUBSCRIPTIONS, PUBLICATIONS, mode="all") == event_edges(SUBSCRIPTIONS, PUBLICATIONS)
    assert Edge("orders", "order.placed", "mailer") in event_edges(SUBSCRIPTIONS, PUBLICATIONS, mode="all")


def test_an_event_nobody_announces_draws_no_edge_and_a_mode_without_edges_says_so():
    lonely = [sub("shipping", "payment.charged")]

    assert event_edges(lonely, PUBLICATIONS) == []
    assert event_map(lonely, PUBLICATIONS) == chart("%% nobody reacts to anybody's events in this mode")


def test_the_map_does_not_depend_on_the_order_of_declaration():
    shuffled_subscriptions, shuffled_publications = SUBSCRIPTIONS[:], PUBLICATIONS[::-1]
    random.Random(7).shuffle(shuffled_subscriptions)

    assert event_map(shuffled_subscriptions, shuffled_publications) == event_map(SUBSCRIPTIONS, PUBLICATIONS)


def test_the_readme_map_is_replaced_between_its_markers_and_nothing_else():
    readme = "# Shop\n\nintro\n\n" + readme_block("flowchart LR\n    a -->|x| b\n") + "\n\nafter\n"

    updated = readme_with_map(readme, "flowchart LR\n    c -->|y| d\n")

    assert updated == "# Shop\n\nintro\n\n" + readme_block("flowchart LR\n    c -->|y| d\n") + "\n\nafter\n"
    assert readme_map("# no map here\n") is None
    with pytest.raises(ValueError, match="event-map:start"):
        readme_with_map("# no map here\n", "flowchart LR\n")


def test_the_command_prints_the_map_of_this_project():
    out = StringIO()

    call_command("event_map", stdout=out)

    assert out.getvalue().startswith("flowchart LR\n")
    to_inventory = "order.cancelled<br/>order.compensating<br/>order.placed<br/>order.redriven"
    assert f"    orders -->|{to_inventory}| inventory\n" in out.getvalue()


def test_the_command_writes_only_the_choreography_map_into_the_docs():
    with pytest.raises(CommandError, match="choreography"):
        call_command("event_map", "--docs", "--mode", ORCHESTRATION)


def test_the_design_page_shows_the_map_the_command_prints():
    out = StringIO()
    call_command("event_map", stdout=out)
    design = (Path(settings.BASE_DIR) / "docs" / "design.md").read_text()

    assert readme_map(design) == readme_block(out.getvalue()), (
        "docs/design.md's event map is out of date: run `manage.py event_map --docs` to rewrite it."
    )
