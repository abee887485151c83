"""The architecture holds: the participants and the machinery do not depend on the orders
service, and in choreography every service announces only its own facts, each heard by someone."""

import ast
import graphlib
from collections import defaultdict
from pathlib import Path

import pytest
from django.conf import settings

from events import registry
from events.map import event_publishers
from events.registry import CHOREOGRAPHY, ORCHESTRATION

PARTICIPANTS = ("shop", "risk", "payments", "shipping", "notifications")
MACHINERY = ("sagas", "events", "outbox", "telemetry")
IMPORTERS = ("import_module", "import_string", "__import__")


def orders_imports(source: str) -> list[str]:
    """Every import of ``orders`` in ``source``: at any depth (functions, ``TYPE_CHECKING``),
    and by name through ``import_module``/``import_string``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "id", getattr(node.func, "attr", None)) in IMPORTERS
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names = [node.args[0].value]
        else:
            continue
        found += [f"line {node.lineno}: {name}" for name in names if name == "orders" or name.startswith("orders.")]
    return found


def test_the_import_check_sees_imports_anywhere():
    source = """
from typing import TYPE_CHECKING
import ordersheet
from shop.orders import x
if TYPE_CHECKING:
    from orders.models import Order
def f():
    import orders.ledger as ledger
    return import_string("orders.ledger.OrderLedger")
"""
    assert orders_imports(source) == [
        "line 6: orders.models",
        "line 8: orders.ledger",
        "line 9: orders.ledger.OrderLedger",
    ]


@pytest.mark.parametrize("package", PARTICIPANTS + MACHINERY)
def test_participants_and_machinery_import_nothing_from_orders(package):
    root = Path(settings.BASE_DIR) / package
    if package == "notifications" and not root.is_dir():
        pytest.skip("no notifications service in this tree")
    files = sorted(root.rglob("*.py"))
    assert files, f"no Python source under {root}"

    found = {
        str(path.relative_to(settings.BASE_DIR)): hits for path in files if (hits := orders_imports(path.read_text()))
    }

    assert found == {}, f"{package} depends on its coordinator: {found}"


def _choreography_publishers() -> dict[str, set[str]]:
    return event_publishers(registry.subscriptions(), registry.publications(), mode=CHOREOGRAPHY)


def test_in_choreography_each_service_announces_only_events_named_after_itself():
    # The service -> prefix mapping comes from what is declared: each service must announce
    # under one name (``stock``, ``payment``, ...) and no other service under the same name.
    # A service announcing another's event (``payments`` publishing ``shipment.create``) would
    # be deciding that service's next step: a command dressed as an event.
    prefixes_of: dict[str, set[str]] = defaultdict(set)
    services_of: dict[str, set[str]] = defaultdict(set)
    for event, services in _choreography_publishers().items():
        prefix = event.partition(".")[0]
        for service in services:
            prefixes_of[service].add(prefix)
            services_of[prefix].add(service)

    assert {service for service, prefixes in prefixes_of.items() if len(prefixes) != 1} == set(), prefixes_of
    assert {prefix for prefix, services in services_of.items() if len(services) != 1} == set(), services_of
    assert {"inventory", "payments", "shipping", "orders"} <= prefixes_of.keys()


@pytest.mark.parametrize("mode", [CHOREOGRAPHY, ORCHESTRATION])
def test_every_event_a_service_reacts_to_is_announced_by_someone(mode):
    publishers = event_publishers(registry.subscriptions(), registry.publications(), mode=mode)

    orphans = sorted(
        f"{sub.consumer} on {sub.event}"
        for sub in registry.subscriptions()
        if mode in sub.modes and not publishers.get(sub.event)
    )

    assert orphans == [], f"subscriptions to events nobody announces in {mode}: {orphans}"


def test_every_event_announced_in_choreography_is_heard_or_ends_the_saga():
    heard = {sub.event for sub in registry.subscriptions() if CHOREOGRAPHY in sub.modes}

    unheard = sorted(set(_choreography_publishers()) - heard - registry.end_events())

    assert unheard == [], f"announced in choreography, yet nobody reacts and the saga goes on: {unheard}"


def test_every_declared_end_is_announced():
    assert sorted(registry.end_events() - set(_choreography_publishers())) == []


def app_imports() -> dict[str, set[str]]:
    """Which of the project's apps each app imports (at any depth, migrations aside)."""
    root = Path(settings.BASE_DIR)
    apps = {p.name for p in root.iterdir() if (p / "apps.py").exists()}
    graph: dict[str, set[str]] = {app: set() for app in apps}
    for app in apps:
        for path in (root / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                graph[app] |= {name.split(".")[0] for name in names} & (apps - {app})
    return graph


def test_the_apps_depend_on_each_other_one_way():
    # graphlib refuses a graph with a cycle: no app imports, through any chain, an app that imports it
    graph = app_imports()
    assert {"orders", "sagas", "events", "core", "risk"} <= graph.keys()
    order = list(graphlib.TopologicalSorter(graph).static_order())
    assert order.index("core") < order.index("sagas") < order.index("orders")
