"""An order's run drawn as a sequence diagram: one lane per service, time going down.

As ServicePulse or Step Functions draw a saga: a ``command`` is an arrow from ``orders`` to the
service whose task it names (``payments.charge_payment`` → payments); an ``event`` is an arrow from its
publisher to every service subscribed to it in the order's coordination mode; status changes,
retries, steps (their successes and failures), compensations and actions are marks on the lane of whoever acted.

A pure function from journal entries to inline SVG markup: no JavaScript, nothing fetched, no
``style`` attribute (the pages' Content-Security-Policy has no ``unsafe-inline``), every text
escaped. Each lane and arrow carries ``data-`` attributes saying what it is.
"""

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from orders.journal import JournalService, service_label, step_succeeded

LANE_ORDER = [service.value for service in JournalService]
LANE_WIDTH = 150
ROW_HEIGHT = 24
HEAD_HEIGHT = 40
TIME_WIDTH = 64  # the left column: seconds since the first line
CHAR_WIDTH = 6.5  # about the width of one character at font-size 11, to leave room for labels whole

COLOURS = {
    "command": "#1f5fa8",
    "event": "#237a3b",
    "status": "#555555",
    "retry": "#b26b00",
    "step": "#b3261e",
    "compensation": "#8a4fb0",
    "action": "#0f6e74",
}


class Line(Protocol):
    """A journal line as the diagram reads it (``orders.journal.JournalEntry`` is one)."""

    @property
    def service(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def detail(self) -> str: ...
    @property
    def at(self) -> datetime: ...


Receivers = Callable[[str, str], Iterable[str]]  # (event, mode) → the subscribed services


def registry_receivers(event: str, mode: str) -> list[str]:
    """The services subscribed to ``event`` in ``mode`` (``events.registry``), each once."""
    from events.registry import subscribers

    return list(dict.fromkeys(s.service for s in subscribers(event, mode)))


def command_target(task: str) -> str:
    """The service a command goes to, from its task name: ``payments.charge_payment`` → ``payments``;
    a chain (``a.x → b.y``) goes to its first task's service."""
    first = task.split("→")[0].strip()
    return first.split(".", 1)[0] if "." in first else "orders"


@dataclass(frozen=True)
class Arrow:
    source: str
    target: str
    kind: str
    label: str
    tooltip: str


@dataclass(frozen=True)
class Mark:
    service: str
    kind: str
    label: str
    tooltip: str
    succeeded: bool = False  # a step's success: drawn in the colour of good news, not a failure's


Row = tuple[float | None, Arrow | Mark]


def sequence_rows(lines: Sequence[Line], *, coordination: str, receivers: Receivers | None = None) -> list[Row]:
    """What the diagram draws, one row per arrow or mark, in the journal's order; each row
    with its time in seconds since the first line."""
    receivers = receivers or registry_receivers
    start = lines[0].at if lines else None
    rows: list[Row] = []
    for line in lines:
        offset = (line.at - start).total_seconds() if start is not None and line.at is not None else None
        tooltip = " · ".join(part for part in (line.kind, line.name, line.detail) if part)
        if line.kind == "command":
            rows.append((offset, Arrow(line.service, command_target(line.name), "command", line.name, tooltip)))
        elif line.kind == "event":
            targets = list(receivers(line.name, coordination))
            if not targets:  # announced, nobody in this mode listens
                rows.append((offset, Mark(line.service, "event", f"{line.name} (no subscriber)", tooltip)))
            for target in targets:
                rows.append((offset, Arrow(line.service, target, "event", line.name, tooltip)))
        else:
            done = step_succeeded(line.kind, line.detail)
            rows.append((offset, Mark(line.service, line.kind, _mark_label(line), tooltip, succeeded=done)))
    return rows


def _mark_label(line: Line) -> str:
    if line.kind == "status":
        return f"→ {line.name.replace('_', ' ')}"
    if line.kind == "retry":
        return f"retry {line.name}"
    if line.kind == "step":
        return f"{line.name}: {line.detail}"
    if line.kind == "compensation":
        return f"undo {line.name}: {line.detail}"
    return line.detail or line.name  # an action: what was done


def lanes_of(rows: Iterable[Row]) -> list[str]:
    """The services that appear, in the fixed lane order (unknown services after them)."""
    seen: list[str] = []
    for _, item in rows:
        for service in (item.source, item.target) if isinstance(item, Arrow) else (item.service,):
            if service not in seen:
                seen.append(service)
    known = [service for service in LANE_ORDER if service in seen]
    return known + [service for service in seen if service not in LANE_ORDER]


def sequence_svg(lines: Sequence[Line], *, coordination: str, receivers: Receivers | None = None) -> SafeString:
    """The journal ``lines`` (oldest first) of an order coordinated by ``coordination``, drawn."""
    rows = sequence_rows(lines, coordination=coordination, receivers=receivers)
    lanes = lanes_of(rows)
    x = {service: TIME_WIDTH + LANE_WIDTH * i + LANE_WIDTH // 2 for i, service in enumerate(lanes)}
    # Room on the right for the last lane's labels, whole: the drawing scales to its column.
    last = lanes[-1] if lanes else ""
    longest = max((len(item.label) for _, item in rows if isinstance(item, Mark) and item.service == last), default=0)
    width = TIME_WIDTH + LANE_WIDTH * max(len(lanes), 1) + max(LANE_WIDTH // 2, int(longest * CHAR_WIDTH) + 20)
    height = HEAD_HEIGHT + ROW_HEIGHT * (len(rows) + 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="sequence-diagram" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" data-coordination="{escape(coordination)}" '
        f'font-family="sans-serif" font-size="11">',
        f"<title>{escape(f'The run of this order ({coordination}), one lane per service, time going down')}</title>",
        "<defs>"
        + "".join(
            f'<marker id="seq-head-{kind}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
            f'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="{colour}"/></marker>'
            for kind, colour in COLOURS.items()
        )
        + "</defs>",
    ]
    for service in lanes:
        cx = x[service]
        parts.append(
            f'<g class="lane" data-service="{escape(service)}">'
            f'<rect x="{cx - 60}" y="6" width="120" height="22" rx="4" fill="#eef2f7" stroke="#8a99ad"/>'
            f'<text x="{cx}" y="21" text-anchor="middle" font-weight="bold">{escape(service_label(service))}</text>'
            f'<line x1="{cx}" y1="28" x2="{cx}" y2="{height - 4}" stroke="#b8c2cf" stroke-dasharray="4 3"/></g>'
        )
    for index, (offset, item) in enumerate(rows):
        y = HEAD_HEIGHT + ROW_HEIGHT * index + ROW_HEIGHT // 2
        if offset is not None:
            parts.append(f'<text x="4" y="{y + 4}" fill="#777777">+{offset:.3f}s</text>')
        parts.append(_arrow(item, x, y) if isinstance(item, Arrow) else _mark(item, x, y))
    parts.append("</svg>")
    return mark_safe("".join(parts))  # every text above went through escape()


def _arrow(arrow: Arrow, x: dict[str, int], y: int) -> str:
    colour = COLOURS.get(arrow.kind, "#333333")
    x1, x2 = x[arrow.source], x[arrow.target]
    head = f'marker-end="url(#seq-head-{arrow.kind})"' if arrow.kind in COLOURS else ""
    if x1 == x2:  # a service tells itself (payment.declined → its own refund): a loop
        shape = f'<path d="M {x1} {y - 6} h 24 v 12 h -22" fill="none" stroke="{colour}" stroke-width="1.5" {head}/>'
        label_x, anchor = x1 + 28, "start"
    else:
        shape = f'<line x1="{x1}" y1="{y}" x2="{x2}" y2="{y}" stroke="{colour}" stroke-width="1.5" {head}/>'
        label_x, anchor = (x1 + x2) // 2, "middle"
    return (
        f'<g class="arrow arrow--{escape(arrow.kind)}" data-kind="{escape(arrow.kind)}" '
        f'data-from="{escape(arrow.source)}" data-to="{escape(arrow.target)}" data-name="{escape(arrow.label)}">'
        f"<title>{escape(arrow.tooltip)}</title>{shape}"
        f'<text x="{label_x}" y="{y - 4}" text-anchor="{anchor}" fill="{colour}">{escape(arrow.label)}</text></g>'
    )


def _mark(mark: Mark, x: dict[str, int], y: int) -> str:
    colour = COLOURS["event"] if mark.succeeded else COLOURS.get(mark.kind, "#333333")
    cx = x[mark.service]
    return (
        f'<g class="mark mark--{escape(mark.kind)}" data-kind="{escape(mark.kind)}" '
        f'data-service="{escape(mark.service)}"><title>{escape(mark.tooltip)}</title>'
        f'<rect x="{cx - 5}" y="{y - 5}" width="10" height="10" rx="2" fill="{colour}"/>'
        f'<text x="{cx + 9}" y="{y + 4}" fill="{colour}">{escape(mark.label)}</text></g>'
    )
