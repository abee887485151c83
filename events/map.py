"""Who reacts to what: the registry's declarations drawn as a Mermaid flowchart.

Nodes are services; an edge ``publisher --event--> subscriber`` says that ``subscriber``
reacts to ``event``, which ``publisher`` announces, either in reaction to an event of its own
(``subscribe(..., publishes=...)``) or on its own (``publishes(...)``). Pure functions over the
declarations, so they can be checked on a hand-built list; ``manage.py event_map`` prints the
map of this project and writes it into the README.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from events.registry import CHOREOGRAPHY, ORCHESTRATION, Publication, Subscription

ALL = "all"
MODES = (CHOREOGRAPHY, ORCHESTRATION)

README_START = "<!-- event-map:start -->"
README_END = "<!-- event-map:end -->"


@dataclass(frozen=True, order=True)
class Edge:
    publisher: str
    event: str
    subscriber: str


def event_publishers(
    subscriptions: Iterable[Subscription], publications: Iterable[Publication], *, mode: str
) -> dict[str, set[str]]:
    """Every event announced in sagas of ``mode``, with the services that may announce it."""
    found: dict[str, set[str]] = defaultdict(set)
    for sub in subscriptions:
        if mode in sub.modes:
            for event in sub.reacts_with:
                found[event].add(sub.service)
    for publication in publications:
        if mode in publication.modes:
            found[publication.event].add(publication.service)
    return dict(found)


def event_edges(
    subscriptions: Iterable[Subscription], publications: Iterable[Publication], *, mode: str = CHOREOGRAPHY
) -> list[Edge]:
    """Who reacts to whose events in sagas of ``mode`` (or of either, with ``all``), sorted."""
    subscriptions, publications = list(subscriptions), list(publications)
    edges: set[Edge] = set()
    for one_mode in MODES if mode == ALL else (mode,):
        publishers = event_publishers(subscriptions, publications, mode=one_mode)
        for sub in subscriptions:
            if one_mode in sub.modes:
                edges.update(Edge(publisher, sub.event, sub.service) for publisher in publishers.get(sub.event, ()))
    return sorted(edges)


def mermaid(edges: Iterable[Edge]) -> str:
    """A ``flowchart``, one arrow per publisher and subscriber labelled with its events."""
    events: dict[tuple[str, str], list[str]] = defaultdict(list)
    for edge in sorted(edges):
        events[edge.publisher, edge.subscriber].append(edge.event)
    lines = ["flowchart LR"]
    if not events:
        lines.append("    %% nobody reacts to anybody's events in this mode")
    for (publisher, subscriber), names in sorted(events.items()):
        lines.append(f"    {publisher} -->|{'<br/>'.join(names)}| {subscriber}")
    return "\n".join(lines) + "\n"


def event_map(
    subscriptions: Iterable[Subscription], publications: Iterable[Publication], *, mode: str = CHOREOGRAPHY
) -> str:
    return mermaid(event_edges(subscriptions, publications, mode=mode))


def readme_block(chart: str) -> str:
    """The map as the README shows it: a ``mermaid`` block between the marker comments."""
    return f"{README_START}\n```mermaid\n{chart}```\n{README_END}"


def readme_map(readme: str) -> str | None:
    """The README's copy of the map (its block, markers included), or None if it has none."""
    start, end = readme.find(README_START), readme.find(README_END)
    if start == -1 or end < start:
        return None
    return readme[start : end + len(README_END)]


def readme_with_map(readme: str, chart: str) -> str:
    """``readme`` with its copy of the map replaced by ``chart``."""
    current = readme_map(readme)
    if current is None:
        raise ValueError(f"The README has no {README_START} … {README_END} section.")
    return readme.replace(current, readme_block(chart), 1)
