"""Turns ``var/bench/results-*.json`` into ``docs/benchmarks.md`` and ``docs/benchmarks.png``."""

import platform
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
TITLES = {"postgres": "PostgreSQL + Redis", "embedded": "Embedded (SQLite + filesystem broker + django-db)"}
TITLES_SHORT = {"postgres": "PostgreSQL + Redis", "embedded": "embedded"}
IDLE_TARGET_MS = {"postgres": 50, "embedded": 1000}  # issue 14 (PostgreSQL); issue 5 (embedded)


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


MODES = ("orchestration", "choreography")
NO_MODE = "—"
MODE_COLORS = {"orchestration": "tab:green", "choreography": "tab:orange"}


def _modes(r: dict[str, Any], *path: str) -> list[tuple[str, dict[str, Any]]]:
    """(mode, that mode's result) for a saga figure, in the order of ``MODES``."""
    found = _get(r, *path) or {}
    return [(mode, found[mode]) for mode in MODES if isinstance(found.get(mode), dict)]


def summary_rows(name: str, r: dict[str, Any]) -> list[list[str]]:
    rows: list[list[str]] = []
    sat = r["sizes"]["saturation_clients"]
    for workers in ("x2", "x1"):
        base = _get(r, "throughput", f"floor_{workers}", "chains_per_s")
        for mode, runs in _modes(r, "throughput", "modes"):
            run = runs.get(f"shop_{workers}") or {}
            shop = run.get("orders_per_s")
            ratio = _ratio(shop, base)
            rows.append(
                [
                    f"Saga throughput, {workers[1]} worker process(es) (orders/s vs bare 4-task chains/s)",
                    mode,
                    _fmt(shop) + _trouble(run),
                    _fmt(base),
                    _fmt(ratio, "x"),
                    ">= 0.5x (aim 0.8x)" if workers == "x2" else "(info)",
                    _verdict(ratio >= 0.5 if ratio is not None else None) if workers == "x2" else "",
                ]
            )
    dbos = _get(r, "throughput", "dbos", "queue_x2", "orders_per_s")
    if dbos:
        for mode, runs in _modes(r, "throughput", "modes"):
            run = runs.get("shop_x2") or {}
            ratio = _ratio(run.get("orders_per_s"), dbos)
            rows.append(
                [
                    "Saga throughput, 2 worker processes (orders/s vs DBOS Transact's saga, queue-driven)",
                    mode,
                    _fmt(run.get("orders_per_s")),
                    _fmt(dbos),
                    _fmt(ratio, "x"),
                    "ahead, > 1x (aim 1.5x)",
                    _verdict(ratio > 1.0 if ratio is not None else None),
                ]
            )
    floor_idle = _get(r, "idle", "floor") or {}
    for mode, idle in _modes(r, "idle", "modes"):
        p50 = idle.get("e2e_p50_ms")
        rows.append(
            [
                "Idle end-to-end POST -> completed, p50 / p99 (ms) vs one bare chain",
                mode,
                f"{_fmt(p50)} / {_fmt(idle.get('e2e_p99_ms'))}",
                f"{_fmt(floor_idle.get('p50_ms'))} / {_fmt(floor_idle.get('p99_ms'))}",
                _fmt(_ratio(p50, floor_idle.get("p50_ms")), "x"),
                f"p50 <= {IDLE_TARGET_MS[name]} ms",
                _verdict(p50 <= IDLE_TARGET_MS[name] if p50 is not None else None),
            ]
        )
    orders = _saturation(_get(r, "web_latency", "orders"), sat)
    bare = _saturation(_get(r, "web_latency", "bare"), sat)
    bare_latency = f"{_fmt(bare.get('p50_ms'))} / {_fmt(bare.get('p99_ms'))}"
    for mode, runs in _modes(r, "throughput", "modes"):
        post = _get(runs, "shop_x2", "post") or {}
        rows.append(
            [
                f"POST /api/orders/, {sat} clients posting as fast as they can (closed loop) with 2 worker "
                "processes running, p50 / p99 (ms) vs bare insert",
                mode,
                f"{_fmt(post.get('p50_ms'))} / {_fmt(post.get('p99_ms'))}",
                bare_latency,
                "",
                "p99 <= 100 ms",
                _verdict(post["p99_ms"] <= 100 if post.get("p99_ms") is not None else None),
            ]
        )
    for mode, runs in _modes(r, "throughput", "modes"):
        paced = runs.get("paced_x2")
        if not paced or "post" not in paced:
            continue
        post = paced["post"]
        rows.append(
            [
                f"POST /api/orders/ at the saga's saturation rate ({_fmt(paced['rate_per_s'])} orders/s arriving, "
                "open loop) with 2 worker processes busy on a backlog, p50 / p99 (ms) vs bare insert",
                mode,
                f"{_fmt(post.get('p50_ms'))} / {_fmt(post.get('p99_ms'))}"
                + (" (the backlog ran out)" if not paced.get("unfinished_when_window_ended") else "")
                + _trouble(paced),
                bare_latency,
                "",
                "p99 <= 100 ms",
                _verdict(post["p99_ms"] <= 100 if post.get("p99_ms") is not None else None),
            ]
        )
    rows.append(
        [
            f"POST /api/orders/ at saturation ({sat} clients), no worker running, p50 / p99 (ms) vs bare insert",
            NO_MODE,
            f"{_fmt(orders.get('p50_ms'))} / {_fmt(orders.get('p99_ms'))}",
            bare_latency,
            "",
            "(info)",
            "",
        ]
    )
    ratio = _ratio(orders.get("rate_per_s"), bare.get("rate_per_s"))
    rows.append(
        [
            "POST /api/orders/ throughput at saturation (req/s) vs bare insert",
            NO_MODE,
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
                NO_MODE,
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
                rows.append(
                    [f"{label} p99, {clients} client(s)", NO_MODE, note or "n/a", "", "", "p99 <= 50 ms", "n/a"]
                )
                continue
            rows.append(
                [
                    f"{label} p50 / p99 (ms), {clients} client(s), vs bare read",
                    NO_MODE,
                    f"{_fmt(row['p50_ms'])} / {_fmt(row['p99_ms'])}",
                    f"{_fmt(base.get('p50_ms'))} / {_fmt(base.get('p99_ms'))}",
                    "",
                    "p99 <= 50 ms",
                    _verdict(row["p99_ms"] <= 50 if row.get("p99_ms") is not None else None),
                ]
            )
    for mode, b in _modes(r, "burst"):
        if "orders" not in b:
            continue
        flat = b["rss_mb_last_10pct"] <= 1.2 * b["rss_mb_first_10pct"]
        rows.append(
            [
                f"Burst of {b['orders']} orders: terminal / lost; worker RSS first 10% -> last 10% (MB)",
                mode,
                f"{b['terminal']} / {b['lost']}; {b['rss_mb_first_10pct']} -> {b['rss_mb_last_10pct']} "
                f"(peak {b['rss_mb_peak']})" + _trouble(b),
                "",
                "",
                "none lost, flat memory",
                _verdict(b["lost"] == 0 and flat),
            ]
        )
        if b.get("post"):
            rows.append(
                [
                    f"Burst of {b['orders']} orders: POST /api/orders/ p50 / p99 (ms), {sat} clients, workers running",
                    mode,
                    f"{_fmt(b['post'].get('p50_ms'))} / {_fmt(b['post'].get('p99_ms'))}",
                    "",
                    "",
                    "(info)",
                    "",
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


def _table(header: list[str], rows: Sequence[Sequence[Any]]) -> list[str]:
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
        out += [
            "",
            "Load sweep (gunicorn 4 x 2 threads; no Celery worker running; the web's default mode):",
            "",
        ]
        out += _table(["endpoint", "clients", "req/s", "p50 ms", "p99 ms", "errors"], sweep_rows)
    growth = []
    for mode, sizes in _modes(r, "lines"):
        for lines, data in sizes.items():
            if not isinstance(data, dict) or "throughput" not in data:
                continue
            t, i = data["throughput"], data["idle"]
            growth.append(
                [mode, lines, t["orders_per_s"], t["lines_per_s"], f"{t['completed']}/{t['orders']}",
                 i["e2e_p50_ms"], i["e2e_p99_ms"]]
            )  # fmt: skip
    if growth:
        out += ["", "Cost of the fan-out over an order's lines (2 worker processes):", ""]
        out += _table(
            ["mode", "lines per order", "orders/s", "lines/s", "completed", "idle p50 ms", "idle p99 ms"], growth
        )
    tp = r.get("throughput") or {}
    wrows = []
    for w in ("x1", "x2"):
        floor = tp.get(f"floor_{w}") or {}
        for mode, runs in _modes(r, "throughput", "modes"):
            shop = runs.get(f"shop_{w}") or {}
            if "orders_per_s" in shop and "chains_per_s" in floor:
                wrows.append(
                    [mode, w[1], shop["orders_per_s"], floor["chains_per_s"],
                     _fmt(_ratio(shop["orders_per_s"], floor["chains_per_s"]), "x"),
                     f"{shop['completed']}/{shop['orders']}", _fmt(shop.get("settled_after_s"))]
                )  # fmt: skip
    if wrows:
        out += ["", "Worker processes (`--concurrency`):", ""]
        out += _table(
            ["mode", "processes", "saga orders/s", "floor chains/s", "ratio", "completed", "emails done after (s)"],
            wrows,
        )
    breakdowns = {mode: idle.get("breakdown_ms") or {} for mode, idle in _modes(r, "idle", "modes")}
    segments = list(dict.fromkeys(k for b in breakdowns.values() for k in b))
    if segments:
        out += ["", "Where an idle saga's time goes (mean ms, from the steps' timestamps and the journal):", ""]
        out += _table(["segment", *breakdowns], [[k, *(_fmt(b.get(k)) for b in breakdowns.values())] for k in segments])
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


def peers(results: dict[str, Any]) -> list[str]:
    """The shop beside DBOS Transact and the floor: what each does per order, and how fast."""
    r: dict[str, Any] = results.get("postgres") or {}
    tp: dict[str, Any] = r.get("throughput") or {}
    dbos: dict[str, Any] = tp.get("dbos") or {}
    if not isinstance(dbos.get("queue_x2"), dict):
        return []
    floor = _get(tp, "floor_x2", "chains_per_s")
    queries = r.get("queries") or {}
    out = [
        "",
        "## Against DBOS Transact and the floor (PostgreSQL + Redis)",
        "",
        "The same saga on DBOS Transact (`bench/peers/dbos_saga.py`, `dbos` "
        f"{dbos['queue_x2'].get('dbos_version', '')}): reserve the stock, charge, ship, and give the stock back",
        "when the charge is declined (the shop's test token `tok_decline`; every benchmark order uses `tok_visa`,",
        "as the shop's do). One workflow per order on a DBOS queue, each step a datasource transaction whose effect",
        "and DBOS's checkpoint of it commit together (exactly once), as DBOS's docs recommend: a per-process",
        f"limit (`worker_concurrency={dbos['queue_x2']['worker_concurrency']}`) with a unique `executor_id` per",
        f"process, the queue polled every {dbos['queue_x2']['polling_interval_s']} s (DBOS's default is 1 s, which",
        "caps a process at `worker_concurrency` workflows a second), isolation "
        f"`{dbos['queue_x2']['isolation']}` (the default, `SERIALIZABLE`, fails and retries the",
        "hot product rows under load; each step is a conditional UPDATE or an INSERT that needs no snapshot).",
        "Two worker processes, as the shop's worker pool; its own database (`bench_dbos`) on the same server.",
        "Queue-driven: 8 threads of the benchmark write each order row and its workflow's queue entry in one",
        "transaction (`DBOSClient.enqueue_in_transaction`); HTTP-driven: the same behind `POST /orders/` on",
        "gunicorn (4 x 2, as the shop), 8 clients. Declined orders checked: "
        f"{_get(dbos, 'compensation', 'statuses')}, stock given back: "
        f"{_get(dbos, 'compensation', 'declined_stock_given_back')}.",
        "",
        "Per order: commits and rows written are `pg_stat_database` deltas over the run (net of the idle",
        "workers' own polling); statements are counted by the shop's processes themselves (`bench/querycount.py`,",
        "a separate untimed run of 50 orders per mode), POST included; messages are broker messages (the shop's",
        "outbox rows, each published once to Redis; DBOS has no broker: its queue is a table).",
        "",
    ]
    rows = []
    for mode, runs in _modes(r, "throughput", "modes"):
        # hops in the process that wrote them (the default), then every hop through the broker
        for key, label in (("shop_x2", ""), ("through_broker_x2", ", every hop through the broker")):
            run = runs.get(key) or {}
            if not run:
                continue
            per = run.get("per_order") or {}
            db: dict[str, Any] = per["database"] if isinstance(per.get("database"), dict) else {}
            q = queries.get(mode) or {}
            rows.append(
                [
                    f"shop, {mode}{label}",
                    _fmt(run.get("orders_per_s")),
                    _fmt(_ratio(run.get("orders_per_s"), floor), "x"),
                    f"{_fmt(run.get('worker_cpu_ms_per_order'))} + web {_fmt(run.get('web_cpu_ms_per_order'))}",
                    "yes (`POST /api/orders/`, DRF)",
                    _fmt(q.get("total_net")) if key == "shop_x2" else "",
                    _fmt(db.get("commits_net_of_idle_polling")),
                    _fmt(db.get("rows_written")),
                    f"{_fmt(per.get('broker_messages'))} of {_fmt(per.get('outbox_messages'))} outbox rows",
                ]
            )
    for driver, http in (("queue", "no (8 threads, DBOS client)"), ("http", "yes (`POST /orders/`, plain WSGI)")):
        run = dbos.get(f"{driver}_x2") or {}
        per = run.get("per_order") or {}
        rows.append(
            [
                f"DBOS Transact, {driver}-driven",
                _fmt(run.get("orders_per_s")) + _trouble(run),
                _fmt(_ratio(run.get("orders_per_s"), floor), "x"),
                _fmt(run.get("cpu_ms_per_order")) + (" (web included)" if driver == "http" else ""),
                http,
                "n/a",
                _fmt(per.get("commits_net_of_idle_polling")),
                _fmt(per.get("rows_written")),
                "0 (no broker)",
            ]
        )
    floor_cpu = _fmt(_get(tp, "floor_x2", "worker_cpu_ms_per_chain"))
    rows.append(["floor (bare Celery chain, 4 tasks)", _fmt(floor), "1.00x", floor_cpu, "no", "4", "4", "4", "4"])
    out += _table(
        ["side", "orders/s (2 processes)", "vs floor", "CPU ms per order", "HTTP", "statements", "commits",
         "rows written", "messages"],
        rows,
    )  # fmt: skip
    out += [
        "",
        "CPU per order is what the worker processes used over the run (`psutil`, user + system; the shop's",
        "web separately): unlike orders/s, other load on the shared machine changes it little.",
    ]
    tables = []
    for driver in ("queue", "http"):
        by_table = _get(dbos, f"{driver}_x2", "per_order", "rows_written_by_table") or {}
        tables.append(f"{driver}-driven: " + ", ".join(f"{k} {v}" for k, v in by_table.items()))
    out += ["", "DBOS's rows written per order, by table: " + "; ".join(tables) + "."]
    qrows = []
    for mode, q in queries.items():
        if not isinstance(q, dict) or "post" not in q:
            continue
        by_task: dict[str, float] = {}
        for key, n in (q.get("worker_by_task") or {}).items():
            task, _, verb = key.partition(" | ")
            if verb != "COMMIT":
                by_task[task] = round(by_task.get(task, 0) + n, 2)
        qrows.append(
            [mode, _fmt(q["post"]), _fmt(q["worker_net_of_idle_polling"]), _fmt(q["total_net"]),
             ", ".join(f"{k} {v}" for k, v in q.get("worker_by_kind", {}).items()),
             ", ".join(f"`{k}` {v}" for k, v in by_task.items())]
        )  # fmt: skip
    if qrows:
        out += ["", "SQL statements per order (BEGIN and COMMIT not counted):", ""]
        out += _table(["mode", "POST", "worker (net)", "total", "worker by kind", "worker by task"], qrows)
    return out


def side_by_side(results: dict[str, Any]) -> list[str]:
    """The section that compares the two modes: cost per order, recovery, code."""
    out = [
        "",
        "## Orchestration or choreography, measured",
        "",
        "Per order, counted after the 2-process throughput run of each mode, once everything the orders set off",
        "(the customer's two emails included) was done. Outbox messages are the rows of `outbox.models.OutboxMessage`",
        "whose shard is the order; journal lines are its `orders.models.OrderEvent` rows. Rows written and commits",
        "are `pg_stat_database` deltas over the run (`tup_inserted + tup_updated + tup_deleted`, `xact_commit`),",
        "minus the benchmark's own polling, divided by the orders; they include the POSTs. The idle worker commits",
        "on its own too (the outbox relay's polls): *net* subtracts its idle rate over the run. SQLite keeps no",
        "such counters: n/a.",
        "",
    ]
    rows = []
    for name, r in results.items():
        for mode, runs in _modes(r, "throughput", "modes"):
            per = _get(runs, "shop_x2", "per_order") or {}
            db = per.get("database")
            db = db if isinstance(db, dict) else {}
            rows.append(
                [
                    TITLES_SHORT.get(name, name),
                    mode,
                    _fmt(per.get("outbox_messages")),
                    _fmt(per.get("journal_lines")),
                    _fmt(db.get("rows_written")),
                    f"{_fmt(db.get('rows_inserted'))} / {_fmt(db.get('rows_updated'))} / {_fmt(db.get('rows_deleted'))}"
                    if db
                    else "n/a",
                    f"{_fmt(db.get('commits'))} ({_fmt(db.get('commits_net_of_idle_polling'))} net)" if db else "n/a",
                ]
            )
    out += _table(
        ["configuration", "mode", "outbox messages", "journal lines", "rows written", "ins / upd / del", "commits"],
        rows,
    )
    detail_rows = []
    for name, r in results.items():
        for mode, runs in _modes(r, "throughput", "modes"):
            per = _get(runs, "shop_x2", "per_order") or {}
            messages = ", ".join(f"{k} {v}" for k, v in (per.get("outbox_by_task") or {}).items())
            journal = ", ".join(f"{k} {v}" for k, v in (per.get("journal_by_kind") or {}).items())
            tables = _get(per, "database", "rows_written_by_table") or {}
            top = ", ".join(f"{k} {v}" for k, v in list(tables.items())[:8]) if isinstance(tables, dict) else ""
            detail_rows.append([TITLES_SHORT.get(name, name), mode, messages, journal, top or "n/a"])
    if detail_rows:
        out += ["", "What they are, per order:", ""]
        out += _table(
            ["configuration", "mode", "outbox messages by task", "journal lines by kind", "rows written by table"],
            detail_rows,
        )
    rec_rows = []
    for name, r in results.items():
        for mode, rec in _modes(r, "recovery"):
            if "accepted" not in rec:
                continue
            statuses = ", ".join(f"{k} {v}" for k, v in rec["statuses"].items())
            rec_rows.append(
                [
                    TITLES_SHORT.get(name, name),
                    mode,
                    f"{rec['in_flight_at_kill']}/{rec['accepted']}",
                    _fmt(rec["worker_restarted_after_s"]),
                    _fmt(rec["recovered_after_s"]) if rec["recovered_after_s"] is not None else f"> {rec['timeout_s']}",
                    _fmt(rec["emails_after_s"]) if rec["emails_after_s"] is not None else f"> {rec['timeout_s']}",
                    f"{rec['sagas_redriven']} / {rec['events_redelivered']}",
                    statuses,
                ]
            )
    if rec_rows:
        out += [
            "",
            "Time to recover after the worker is killed: orders posted by 8 clients while 2 worker processes run",
            "them; as soon as the last POST is answered the worker is SIGKILLed (main process and pool together)",
            "and a new one started at once, as a process manager would. The clocks run from the kill until every",
            "order is terminal, and until both emails of every order are recorded. What beat runs to recover runs",
            "every 0.5 s (beat: every 15 s and every minute), with short delays as in the saga tests: the sweeper",
            "(`orders.services.saga_recover_stalled()`) with `SAGA_STALL_SECONDS=2`, and the redelivery of events",
            "delivered but never handled (`events.services.events_redeliver_unhandled`) after 5 s instead of",
            "`EVENTS_REDELIVER_AFTER_SECONDS` (300 s); the worker runs with `SAGA_STEP_LEASE_SECONDS=3` and",
            "`CELERY_VISIBILITY_TIMEOUT=5`. Without that redelivery, the emails the dead worker had taken wait for",
            "the broker: kombu's Redis transport hands unacknowledged messages out again only about every 100 s",
            "(`unacked_restore_interval` 10 s x `unacked_restore_throttle` 10: 101 s in a smoke run), and the",
            "filesystem broker not at all (an email still missing after 150 s).",
            "",
        ]
        out += _table(
            ["configuration", "mode", "in flight at the kill", "new worker ready (s)", "all terminal after (s)",
             "every email recorded after (s)", "sagas re-driven / events sent again", "statuses"],
            rec_rows,
        )  # fmt: skip
    from bench.loc import lines_of_code

    loc = lines_of_code()
    out += [
        "",
        "Lines of code (non-blank, not comments or docstrings; `bench/loc.py` counts them when the report is",
        "written). `events/` is counted for choreography, though the orchestrated saga uses it too, for the",
        "customer's emails (the hybrid of contract §7); `notifications/` runs in both modes and is shared.",
        "",
    ]
    out += _table(
        ["code", "lines", "files"],
        [[mode, sum(files.values()), ", ".join(f"`{f}` {n}" for f, n in files.items())] for mode, files in loc.items()],
    )
    return out


def scrapes(results: dict[str, Any]) -> list[str]:
    """What a ``/metrics`` scrape costs at 10,000 and 1,000,000 steps (``bench/metrics_scrape.py``),
    beside the collector that read the history whole (issue 32: under 100 ms at both sizes)."""
    found = _get(results, "postgres", "metrics_scrape", "sizes") or {}
    if not found:
        return []
    rows = [
        [
            f"{int(size):,}",
            f"{row['orders']:,}",
            _fmt(row["first_ms"] / 1000, " s"),
            _fmt(row["steady_ms"], " ms"),
            _fmt(row["idle_ms"], " ms"),
            _fmt(row.get("before_ms"), " ms"),
            _verdict(row["steady_ms"] <= 100 and row["idle_ms"] <= 100),
        ]
        for size, row in sorted(found.items(), key=lambda kv: int(kv[0]))
    ]
    return [
        "",
        "## A `/metrics` scrape against the history's size (PostgreSQL)",
        "",
        "Generated history (`bench/metrics_scrape.py`): orders of five finished steps. The first scrape folds",
        "it all into the running totals (once, as after the upgrade); steady is a scrape after 100 new steps",
        "(median of 11), idle one with nothing new; before is the collector that read the step log whole,",
        "on the same rows. Target: steady and idle under 100 ms at both sizes.",
        "",
        *_table(["steps", "orders", "first scrape", "steady", "idle", "before (whole history)", "verdict"], rows),
    ]


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
        "  workers on all five queues, `RATE_LIMITS=off`, `DEBUG` off; its settings are the base profile",
        "  (`bench/settings.py` only adds the baseline endpoints and a private cache). Loopback only.",
        "- Saga throughput: orders posted through the API by 8 keep-alive clients; the clock runs from the first",
        "  POST until every order is `completed`. Floor: the same number of bare Celery chains of four tasks with",
        "  one insert each (`bench/floor.py`: a plain Celery app, psycopg/sqlite3, no Django) on the same broker",
        "  and database, sent from one process, until every fourth step has run.",
        "- POST latency: a closed-loop asyncio client (`bench/load.py`) at 1..16 concurrent clients; saturation is",
        "  8 clients (the server's 8 threads); the baseline is `POST /bench/bare/write/`: DRF, token",
        "  authentication, the same JSON body, one INSERT, on the same gunicorn. Two rows hold issue 14's",
        "  target (p99 <= 100 ms with the workers running): the POSTs of the throughput run with 2 worker",
        "  processes (8 clients posting as fast as they can while the workers run the sagas on the same 2",
        "  cores: the web overloaded, several times faster than the sagas finish), and an open loop at the",
        "  saga's saturation rate (`bench/load.py` `run_paced`: orders arrive at the throughput just measured,",
        "  for 10 s, behind a backlog that keeps both worker processes busy throughout; each latency counts",
        "  from when its request was due). The sweep runs with no worker, to show the web alone.",
        "- Idle end-to-end: one order at a time, from sending the POST until the server recorded `completed`",
        "  (the journal's first `completed` line; the bench looks every 20 ms whether it is there); the",
        "  baseline is one bare chain at a time, until its fourth insert.",
        "- Catalog: query counts in process with `CaptureQueriesContext`, latency through gunicorn; the baseline",
        "  is `GET /bench/bare/read/` (one SELECT).",
        "- Burst: orders posted as fast as 8 clients can while 2 worker processes run them; worker RSS (main",
        "  process + pool) sampled every second.",
        "- Every latency sweep starts with 2 s of unmeasured load at the highest level, so each gunicorn thread",
        "  has its database and broker connections open: the figures are the steady state.",
        "- Both coordination modes (contract §7) in every saga figure: each order names its mode in the POST body",
        '  (`"coordination"`), so the same gunicorn and the same kind of worker serve both; the modes run one after',
        "  the other, orchestration first, each beside the same floor (measured once per configuration). The POST",
        "  latency sweep and the catalog are not saga figures: they run once, in the web's default mode",
        "  (`ORDER_COORDINATION`, orchestration).",
        "- Every order also sends its customer two emails (placed, completed) through the notifications service:",
        "  rendered and handed to Django's dummy backend (`EMAIL_URL=dummymail://`), no SMTP server. A run's clock",
        "  stops when the last order is `completed`; the worker keeps running until the outbox is drained, every",
        '  email is recorded and the broker\'s queues are empty ("emails done after"), so no run leaves work to the',
        "  next one.",
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
        md += _table(["figure", "mode", "shop", "baseline", "ratio", "target", "verdict"], summary_rows(name, r))
        md += details(name, r)
        note = _get(r, "catalog", "storefront_note")
        if note:
            md += ["", f"Note: {note}."]
    md += peers(results)
    md += side_by_side(results)
    md += scrapes(results)
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
        lines = [
            (f"saga orders/s, {mode} (2 procs)", _get(runs, "shop_x2", "orders_per_s"), MODE_COLORS[mode])
            for mode, runs in _modes(r, "throughput", "modes")
        ]
        lines.append(("floor chains/s", _get(r, "throughput", "floor_x2", "chains_per_s"), "tab:red"))
        for label, value, color in lines:
            if value:
                ax_rate.axhline(value, color=color, linestyle=":", label=label)
        ax_rate.set(title=f"{title}\nthroughput vs load", xlabel="concurrent clients", ylabel="per second")
        ax_lat.set(title="POST latency vs load", xlabel="concurrent clients", ylabel="ms")
        ax_lat.axhline(100, color="black", linewidth=0.6, linestyle=":", label="target p99 100 ms")
        for ax in (ax_rate, ax_lat):
            ax.set_xscale("log", base=2)
            ax.legend(fontsize=7)
            ax.grid(alpha=0.3)
        bursts = _modes(r, "burst")
        for mode, b in bursts:
            samples = b.get("rss_samples") or []
            ax_mem.plot([t for t, _ in samples], [mb for _, mb in samples], color=MODE_COLORS[mode], label=mode)
        if bursts:
            ax_mem.legend(fontsize=7)
        ax_mem.set(
            title=f"worker RSS during a burst of {bursts[0][1].get('orders') if bursts else '?'} orders",
            xlabel="seconds",
            ylabel="MB (main + pool)",
        )
        ax_mem.set_ylim(bottom=0)
        ax_mem.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(DOCS / "benchmarks.png", dpi=110)
    plt.close(fig)
