"""Lines of code per coordination mode, counted from the source each time the report is written.

A line counts when it holds code: blank lines, comments and docstrings do not. ``path:Name``
counts one top-level class or function of a module (``sagas/hops.py`` holds both modes' hops).
"""

import ast
import io
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# What only one mode runs, and what both run. events/ is the choreography's machinery; the
# orchestrated saga uses it too, for the customer's emails (the hybrid of contract §7).
MODULES: dict[str, list[str]] = {
    "orchestration": [
        "orders/saga.py",
        "shop/tasks.py",
        "payments/tasks.py",
        "shipping/tasks.py",
        "orders/tasks.py:finish_compensation",
        "sagas/hops.py:CanvasHops",
        "sagas/hops.py:_task_name",
    ],
    "choreography": [
        "shop/handlers.py",
        "payments/handlers.py",
        "shipping/handlers.py",
        "orders/handlers.py",
        "events/",
        "sagas/hops.py:EventHops",
        "sagas/hops.py:_summary",
    ],
    "shared": [
        "sagas/runtime.py",
        "sagas/ledger.py",
        "sagas/plan.py",
        "sagas/models.py",
        "sagas/hops.py:Hops",
        "orders/coordination.py",
        "orders/events.py",
        "orders/ledger.py",
        "orders/plan.py",
        "orders/services.py",
        "orders/tasks.py:recover_stalled_sagas",
        "shop/steps.py",
        "shop/services.py",
        "payments/steps.py",
        "payments/services.py",
        "shipping/steps.py",
        "shipping/services.py",
        "notifications/handlers.py",
        "notifications/services.py",
        "outbox/",
    ],
}


def code_lines(source: str, *, first: int = 1, last: int | None = None) -> int:
    """Lines between ``first`` and ``last`` (1-based, inclusive) that hold a code token."""
    tree = ast.parse(source)
    docstrings: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            head = node.body[0]
            value = head.value if isinstance(head, ast.Expr) else None
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                docstrings.update(range(head.lineno, (head.end_lineno or head.lineno) + 1))
    ignored = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER}
    lines: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in ignored:
            lines.update(range(token.start[0], token.end[0] + 1))
    last = last or len(source.splitlines())
    return len({n for n in lines - docstrings if first <= n <= last})


def count(spec: str) -> list[tuple[str, int]]:
    """``(file or file:Name, lines)`` for a module, a package folder or one top-level definition."""
    path, _, name = spec.partition(":")
    target = ROOT / path
    if target.is_dir():
        files = sorted(p for p in target.rglob("*.py") if "migrations" not in p.parts)
        counted = [(str(p.relative_to(ROOT)), code_lines(p.read_text())) for p in files]
        return [(file, n) for file, n in counted if n]  # empty __init__.py files say nothing
    source = target.read_text()
    if not name:
        return [(path, code_lines(source))]
    for node in ast.parse(source).body:
        if getattr(node, "name", None) == name:
            first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
            return [(spec, code_lines(source, first=first, last=node.end_lineno))]
    raise LookupError(f"{spec}: no top-level {name}")


def lines_of_code() -> dict[str, dict[str, int]]:
    """Per mode (and shared), lines per file; the report sums them."""
    return {mode: dict(row for spec in specs for row in count(spec)) for mode, specs in MODULES.items()}


if __name__ == "__main__":
    for mode, files in lines_of_code().items():
        print(f"{mode}: {sum(files.values())}")
        for file, n in files.items():
            print(f"  {n:5} {file}")
