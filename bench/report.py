"""Turns ``var/bench/results-*.json`` into ``docs/benchmarks.md`` and ``docs/benchmarks.png``."""

import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
TITLES = {"postgres": "PostgreSQL + Redis", "embedded": "Embedded (SQLite + filesystem broker + django-db)"}
IDLE_TARGET_MS = {"postgres": 150, "embedded": 1000}


def _sh(command: str) -> str:
    try:
        return subprocess.run(command, shell=True, capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return ""


def machine() -> list[str]:
    model = ""
    for line in _sh("lscpu").splitlines():
        if line.startswith("Model name:"):
            model = line.split(":", 1)[1].strip()
    mem = _sh("free -h").splitlines()
    return [
        f"- CPU: {_sh('nproc')} cores available (`nproc`), {model or 'unknown model'} (`lscpu`)",
        f"- Memory (`free -h`): {' '.join(mem[1].split()[1:2]) if len(mem) > 1 else '?'} total",
        f"- OS / Python: {platform.platform()}, Python {platform.python_version()}",
        f"- PostgreSQL: {_sh('psql -V') or 'n/a'}; Redis: {_sh('redis-server --version') or 'n/a'}",
        "- Shared machine: other test runs may have been running at the same time (numbers are noisy).",
    ]


def _get(data: dict[str, Any], *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "n/a"
    text = (f"{value:.1f}" if value >= 10 else f"{value:.2f}") if isinstance(value, float) else str(value)
    return f"{text}{unit}"


def _ratio(a: Any, b: Any) -> float | None:
    if not a or not b:
        return None
    return round(float(a) / float(b), 2)


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**met**" if ok else "**missed**")


def _saturation(sweep: list[dict[str, Any]] | None, clients: int) -> dict[str, Any]:
    for row in sweep or []:
        if row["clients"] == clients:
            return row
    return {}


def summary_rows(name: str, r: dict[str, Any]) -> list[list[str]]:
    rows: list[list[str]] = []
    sat = r["sizes"]["saturation_clients"]
    for workers in ("x2", "x1"):
        shop = _get(r, "throughput", f"shop_{workers}", "orders_per_s")
        run = _get(r, "throughput", f"shop_{workers}") or {}
        base = _get(r, "throughput", f"floor_{workers}", "chains_per_s")
        ratio = _ratio(shop, base)
        rows.append(
            [
                f"Saga throughput, {workers[1]} worker process(es) (orders/s vs bare 4-task chains/s)",
                _fmt(shop) + _trouble(run),
                _fmt(base),
                _fmt(ratio, "x"),
                ">= 0.8x" if workers == "x2" else "(info)",
                _verdict(ratio >= 0.8 if ratio is not None else None) if workers == "x2" else "",
            ]
        )
    idle = r.get("idle", {})
    p50 = idle.get("e2e_p50_ms")
    rows.append(
        [
            "Idle end-to-end POST -> completed, p50 / p99 (ms) vs one bare chain",
            f"{_fmt(p50)} / {_fmt(idle.get('e2e_p99_ms'))}",
            f"{_fmt(_get(idle, 'floor', 'p50_ms'))} / {_fmt(_get(idle, 'floor', 'p99_ms'))}",
            _fmt(_ratio(p50, _get(idle, "floor", "p50_ms")), "x"),
            f"p50 <= {IDLE_TARGET_MS[name]} ms",
            _verdict(p50 <= IDLE_TARGET_MS[name] if p50 is not None else None),
        ]
    )
    orders = _saturation(_get(r, "web_latency", "orders"), sat)
    bare = _saturation(_get(r, "web_latency", "bare"), sat)
    rows.append(
        [
            f"POST /api/orders/ at saturation ({sat} clients), p50 / p99 (ms) vs bare insert",
            f"{_fmt(orders.get('p50_ms'))} / {_fmt(orders.get('p99_ms'))}",
            f"{_fmt(bare.get('p50_ms'))} / {_fmt(bare.get('p99_ms'))}",
            "",
            "p99 <= 100 ms",
            _verdict(orders["p99_ms"] <= 100 if orders.get("p99_ms") is not None else None),
        ]
    )
    ratio = _ratio(orders.get("rate_per_s"), bare.get("rate_per_s"))
    rows.append(
        [
            "POST /api/orders/ throughput at saturation (req/s) vs bare insert",
            _fmt(orders.get("rate_per_s")),
            _fmt(bare.get("rate_per_s")),
            _fmt(ratio, "x"),
            ">= 0.7x",
            _verdict(ratio >= 0.7 if ratio is not None else None),
        ]
    )
    http = _get(r, "catalog", "http") or {}
    queries = _get(r, "catalog", "queries") or {}
    for label in ("/api/products/", "/ (storefront)"):
        small, full = _get(queries, "small", label), _get(queries, "full", label)
        constant = small == full if isinstance(small, int) and isinstance(full, int) else None
        rows.append(
            [
                f"{label}: queries per request, {_fmt(_get(queries, 'small', 'products'))} vs "
                f"{_fmt(_get(queries, 'full', 'products'))} products",
                f"{_fmt(small)} -> {_fmt(full)}",
                "",
                "",
                "constant",
                _verdict(constant),
            ]
        )
        for clients in (1, sat):
            row = http.get(f"{label} x{clients}")
            base = http.get(f"bare read x{clients}", {})
            if row is None:
                note = _get(r, "catalog", "storefront_note") if label.startswith("/ ") else None
                rows.append([f"{label} p99, {clients} client(s)", note or "n/a", "", "", "p99 <= 50 ms", "n/a"])
                continue
            rows.append(
                [
                    f"{label} p50 / p99 (ms), {clients} client(s), vs bare read",
                    f"{_fmt(row['p50_ms'])} / {_fmt(row['p99_ms'])}",
                    f"{_fmt(base.get('p50_ms'))} / {_fmt(base.get('p99_ms'))}",
                    "",
                    "p99 <= 50 ms",
                    _verdict(row["p99_ms"] <= 50 if row.get("p99_ms") is not None else None),
                ]
            )
    b = r.get("burst", {})
    if "orders" in b:
        flat = b["rss_mb_last_10pct"] <= 1.2 * b["rss_mb_first_10pct"]
        rows.append(
            [
                f"Burst of {b['orders']} orders: terminal / lost; worker RSS first 10% -> last 10% (MB)",
                f"{b['terminal']} / {b['lost']}; {b['rss_mb_first_10pct']} -> {b['rss_mb_last_10pct']} "
                f"(peak {b['rss_mb_peak']})" + _trouble(b),
                "",
                "",
                "none lost, flat memory",
                _verdict(b["lost"] == 0 and flat),
            ]
        )
    return rows


def _trouble(run: dict[str, Any]) -> str:
    """What went wrong in a run: worker crashes and orders that never finished."""
    notes = []
    if run.get("worker_crashes"):
        notes.append(f"{run['worker_crashes']} worker crash(es)")
    unfinished = run.get("accepted", 0) - run.get("completed", run.get("terminal", 0))
    if unfinished > 0:
        notes.append(f"{unfinished} not completed")
    return f" ({', '.join(notes)})" if notes else ""


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def details(name: str, r: dict[str, Any]) -> list[str]:
    out: list[str] = []
    sweep_rows = []
    for kind, label in (("orders", "POST /api/orders/"), ("bare", "POST bare insert")):
        for row in _get(r, "web_latency", kind) or []:
            sweep_rows.append([label, row["clients"], row["rate_per_s"], row["p50_ms"], row["p99_ms"], row["errors"]])
    if sweep_rows:
        out += ["", "Load sweep (gunicorn 4 workers x 2 threads; no Celery worker running):", ""]
        out += _table(["endpoint", "clients", "req/s", "p50 ms", "p99 ms", "errors"], sweep_rows)
    growth = []
    for lines, data in (r.get("lines") or {}).items():
        if not isinstance(data, dict) or "throughput" not in data:
            continue
        t, i = data["throughput"], data["idle"]
        growth.append(
            [
                lines,
                t["orders_per_s"],
                t["lines_per_s"],
                f"{t['completed']}/{t['orders']}",
                i["e2e_p50_ms"],
                i["e2e_p99_ms"],
            ]
        )  # fmt: skip
    if growth:
        out += ["", "Cost of the chord's fan-out (2 worker processes):", ""]
        out += _table(["lines per order", "orders/s", "lines/s", "completed", "idle p50 ms", "idle p99 ms"], growth)
    tp = r.get("throughput") or {}
    wrows = []
    for w in ("x1", "x2"):
        shop, floor = tp.get(f"shop_{w}"), tp.get(f"floor_{w}")
        if shop and floor and "orders_per_s" in shop:
            wrows.append(
                [w[1], shop["orders_per_s"], floor["chains_per_s"],
                 _fmt(_ratio(shop["orders_per_s"], floor["chains_per_s"]), "x"),
                 f"{shop['completed']}/{shop['orders']}"]
            )  # fmt: skip
    if wrows:
        out += ["", "Worker processes (`--concurrency`):", ""]
        out += _table(["processes", "saga orders/s", "floor chains/s", "ratio", "completed"], wrows)
    breakdown = _get(r, "idle", "breakdown_ms") or {}
    if breakdown:
        out += ["", "Where an idle saga's time goes (mean ms, from the steps' timestamps):", ""]
        out += _table(["segment", "ms"], [[k, v] for k, v in breakdown.items()])
    prof = r.get("profiles") or {}
    if "post_queries" in prof:
        out += ["", "Queries per POST /api/orders/ and per saga step (CaptureQueriesContext):", ""]
        qrows = [[f"POST, {k} line(s)", v["total"], _verbs(v)] for k, v in prof["post_queries"].items()]
        qrows += [[k, v["total"], _verbs(v)] for k, v in prof["step_queries"].items()]
        out += _table(["what", "queries", "by kind"], qrows)
        for key, label in (("post_self_time_pct", "POST /api/orders/"), ("saga_self_time_pct", "saga steps (eager)")):
            split = ", ".join(f"{k} {v}%" for k, v in prof.get(key, {}).items())
            out += ["", f"pyinstrument, {label}, self time by layer: {split}"]
    return out


def _verbs(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items() if k != "total")


def write(results: dict[str, Any], *, command: str, env: dict[str, str], wall_seconds: float | None) -> None:
    DOCS.mkdir(exist_ok=True)
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    md = [
        "# Benchmarks",
        "",
        f"Generated by `{command}` on {now}"
        + (f"; wall time {wall_seconds / 60:.1f} min." if wall_seconds else ".")
        + " Every figure is measured beside its baseline in the same run. Code: `bench/`.",
        "",
        "Environment: " + (", ".join(f"`{k}={v}`" for k, v in sorted(env.items())) or "defaults") + ".",
        "",
        "## Machine",
        "",
        *machine(),
        "",
        "## Method",
        "",
        "- The shop runs as in production: gunicorn (`config/gunicorn.py`: 4 workers x 2 threads), Celery prefork",
        "  workers on all four queues, `RATE_LIMITS=off`, `DEBUG` off; its settings are the base profile",
        "  (`bench/settings.py` only adds the baseline endpoints and a private cache). Loopback only.",
        "- Saga throughput: orders posted through the API by 8 keep-alive clients; the clock runs from the first",
        "  POST until every order is `completed`. Floor: the same number of bare Celery chains of four tasks with",
        "  one insert each (`bench/floor.py`: a plain Celery app, psycopg/sqlite3, no Django) on the same broker",
        "  and database, sent from one process, until every fourth step has run.",
        "- POST latency: a closed-loop asyncio client (`bench/load.py`) at 1..16 concurrent clients; saturation is",
        "  8 clients (the server's 8 threads); the baseline is `POST /bench/bare/write/`: DRF, token",
        "  authentication, the same JSON body, one INSERT, on the same gunicorn.",
        "- Idle end-to-end: one order at a time, from sending the POST until the bench sees `completed` in the",
        "  database (polled every 2 ms); the baseline is one bare chain at a time.",
        "- Catalog: query counts in process with `CaptureQueriesContext`, latency through gunicorn; the baseline",
        "  is `GET /bench/bare/read/` (one SELECT).",
        "- Burst: orders posted as fast as 8 clients can while 2 worker processes run them; worker RSS (main",
        "  process + pool) sampled every second.",
        "- Every latency sweep starts with 2 s of unmeasured load at the highest level, so each gunicorn thread",
        "  has its database and broker connections open: the figures are the steady state.",
        "- Percentiles are nearest-rank; p99 of fewer than 100 samples is close to the maximum.",
    ]
    for name, r in results.items():
        sizes = r.get("sizes", {})
        md += [
            "",
            f"## {TITLES.get(name, name)}",
            "",
            f"Sizes: {sizes.get('throughput_orders')} orders per throughput run, "
            f"{sizes.get('growth_orders')} per order-size run, burst {sizes.get('burst_orders')}, "
            f"{sizes.get('idle_orders')} idle orders, {sizes.get('products')} products, "
            f"{sizes.get('load_seconds')} s per load level. Run took {_fmt(r.get('total_seconds'))} s.",
            "",
        ]
        md += _table(["figure", "shop", "baseline", "ratio", "target", "verdict"], summary_rows(name, r))
        md += details(name, r)
        note = _get(r, "catalog", "storefront_note")
        if note:
            md += ["", f"Note: {note}."]
    md += ["", "![Throughput and latency against load](benchmarks.png)", ""]
    md += ["", *(ROOT / "bench" / "improvements.md").read_text().splitlines(), ""]
    (DOCS / "benchmarks.md").write_text("\n".join(md))
    chart(results)


def chart(results: dict[str, Any]) -> None:
    import matplotlib  # type: ignore[import-not-found,unused-ignore]

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # type: ignore[import-not-found,unused-ignore]

    fig, axes = plt.subplots(len(results), 3, figsize=(15, 4.2 * len(results)), squeeze=False)
    for row, (name, r) in enumerate(results.items()):
        title = TITLES.get(name, name)
        ax_rate, ax_lat, ax_mem = axes[row]
        for kind, label, color in (("orders", "POST /api/orders/", "tab:blue"), ("bare", "bare insert", "tab:gray")):
            sweep = _get(r, "web_latency", kind) or []
            if not sweep:
                continue
            clients = [s["clients"] for s in sweep]
            ax_rate.plot(clients, [s["rate_per_s"] for s in sweep], "o-", color=color, label=label)
            ax_lat.plot(clients, [s["p50_ms"] for s in sweep], "o-", color=color, label=f"{label} p50")
            ax_lat.plot(clients, [s["p99_ms"] for s in sweep], "s--", color=color, label=f"{label} p99")
        tp = r.get("throughput") or {}
        for key, label, style in (
            ("shop_x2", "saga orders/s (2 procs)", "tab:green"),
            ("floor_x2", "floor chains/s", "tab:red"),
        ):
            value = _get(tp, key, "orders_per_s") or _get(tp, key, "chains_per_s")
            if value:
                ax_rate.axhline(value, color=style, linestyle=":", label=label)
        ax_rate.set(title=f"{title}\nthroughput vs load", xlabel="concurrent clients", ylabel="per second")
        ax_lat.set(title="POST latency vs load", xlabel="concurrent clients", ylabel="ms")
        ax_lat.axhline(100, color="black", linewidth=0.6, linestyle=":", label="target p99 100 ms")
        for ax in (ax_rate, ax_lat):
            ax.set_xscale("log", base=2)
            ax.legend(fontsize=7)
            ax.grid(alpha=0.3)
        samples = _get(r, "burst", "rss_samples") or []
        if samples:
            ax_mem.plot([t for t, _ in samples], [mb for _, mb in samples], color="tab:purple")
        ax_mem.set(
            title=f"worker RSS during a burst of {_get(r, 'burst', 'orders')} orders",
            xlabel="seconds",
            ylabel="MB (main + pool)",
        )
        ax_mem.set_ylim(bottom=0)
        ax_mem.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(DOCS / "benchmarks.png", dpi=110)
    plt.close(fig)
