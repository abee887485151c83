"""A small HTTP/1.1 load generator (asyncio, keep-alive, loopback only).

Closed loop (``run_load``): each of ``concurrency`` clients sends its next request as soon as
the previous answer is in. A run is bounded both by a request count and by a duration, and
stops by itself. Open loop (``run_paced``): requests go out at a fixed rate, answered or not.
"""

import asyncio
import json
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

HOST = "127.0.0.1"


@dataclass
class LoadResult:
    latencies: list[float] = field(default_factory=list)  # seconds, successful requests only
    statuses: Counter[int] = field(default_factory=Counter)
    errors: int = 0
    elapsed: float = 0.0

    @property
    def ok(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        return self.ok / self.elapsed if self.elapsed else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "requests": self.ok,
            "errors": self.errors + sum(n for code, n in self.statuses.items() if code >= 400),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "elapsed_s": round(self.elapsed, 3),
            "rate_per_s": round(self.rate, 1),
            "p50_ms": percentile_ms(self.latencies, 50),
            "p99_ms": percentile_ms(self.latencies, 99),
            "mean_ms": round(statistics.fmean(self.latencies) * 1000, 2) if self.latencies else None,
        }


def percentile_ms(values: Sequence[float], pct: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    # nearest-rank: the smallest value with at least pct% of the samples at or below it
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.4999)))
    return round(ordered[rank - 1] * 1000, 2)


def build_request(method: str, path: str, port: int, body: Any = None, headers: dict[str, str] | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{port}", "Connection: keep-alive"]
    payload = b""
    if body is not None:
        payload = json.dumps(body).encode()
        lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    header_lines = head.decode("latin-1").split("\r\n")
    code = int(header_lines[0].split(" ", 2)[1])
    length = 0
    close = False
    for line in header_lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value.strip())
        elif name == "connection" and value.strip().lower() == "close":
            close = True
    body = await reader.readexactly(length) if length else b""
    return code, close, body


async def _client(
    port: int,
    requests: Sequence[bytes],
    offset: int,
    budget: list[int],
    deadline: float,
    result: LoadResult,
    bodies: list[bytes] | None,
) -> None:
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    i = offset
    while budget[0] > 0 and time.monotonic() < deadline:
        budget[0] -= 1
        if writer is None:
            try:
                reader, writer = await asyncio.open_connection(HOST, port)
            except OSError:
                result.errors += 1
                await asyncio.sleep(0.05)
                continue
        assert reader is not None
        request = requests[i % len(requests)]
        i += 1
        started = time.perf_counter()
        try:
            writer.write(request)
            code, close, body = await asyncio.wait_for(_read_response(reader), timeout=30)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            result.errors += 1
            writer.close()
            writer = None
            continue
        took = time.perf_counter() - started
        result.statuses[code] += 1
        if code < 400:
            result.latencies.append(took)
            if bodies is not None:
                bodies.append(body)
        if close:
            writer.close()
            writer = None
    if writer is not None:
        writer.close()


async def _run(
    port: int, requests: Sequence[bytes], concurrency: int, count: int, duration: float, keep_bodies: bool
) -> tuple[LoadResult, list[bytes]]:
    result = LoadResult()
    bodies: list[bytes] | None = [] if keep_bodies else None
    budget = [count]
    started = time.monotonic()
    deadline = started + duration
    await asyncio.gather(*(_client(port, requests, n, budget, deadline, result, bodies) for n in range(concurrency)))
    result.elapsed = time.monotonic() - started
    return result, bodies or []


def run_load(
    port: int,
    requests: Sequence[bytes],
    *,
    concurrency: int,
    count: int = 10**9,
    duration: float = 10.0,
    keep_bodies: bool = False,
) -> tuple[LoadResult, list[bytes]]:
    """Send up to ``count`` requests (cycling through ``requests``) for at most ``duration`` seconds."""
    return asyncio.run(_run(port, requests, concurrency, count, duration, keep_bodies))


async def _paced(port: int, requests: Sequence[bytes], rate: float, duration: float) -> LoadResult:
    result = LoadResult()
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def send(request: bytes, due: float) -> None:
        for fresh in (False, True):  # a kept connection the server closed meanwhile: once more, on a new one
            if idle and not fresh:
                reader, writer = idle.pop()
            else:
                try:
                    reader, writer = await asyncio.open_connection(HOST, port)
                except OSError:
                    break
            try:
                writer.write(request)
                code, close, _ = await asyncio.wait_for(_read_response(reader), timeout=30)
            except asyncio.IncompleteReadError as exc:
                writer.close()
                if exc.partial or fresh:  # the server answered in part: not a stale connection
                    break
                continue
            except (OSError, asyncio.LimitOverrunError, TimeoutError):
                writer.close()
                break
            result.statuses[code] += 1
            if code < 400:
                result.latencies.append(time.monotonic() - due)
            if close:
                writer.close()
            else:
                idle.append((reader, writer))
            return
        result.errors += 1

    started = time.monotonic()
    sending: list[asyncio.Task[None]] = []
    for n in range(int(rate * duration)):
        due = started + n / rate
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        sending.append(asyncio.create_task(send(requests[n % len(requests)], due)))
    await asyncio.gather(*sending)
    result.elapsed = time.monotonic() - started
    for _, writer in idle:
        writer.close()
    return result


def run_paced(port: int, requests: Sequence[bytes], *, rate: float, duration: float) -> LoadResult:
    """Open loop: send a request every ``1 / rate`` seconds for ``duration`` seconds, whether
    the earlier ones were answered or not, as customers arrive. Each latency counts from when
    its request was due, so a server that falls behind shows it (no coordinated omission)."""
    return asyncio.run(_paced(port, requests, rate, duration))


def request_once(port: int, request: bytes, timeout: float = 30) -> tuple[int, bytes]:
    """One request on a fresh connection; returns (status, body)."""

    async def once() -> tuple[int, bytes]:
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            writer.write(request)
            code, _, body = await asyncio.wait_for(_read_response(reader), timeout=timeout)
            return code, body
        finally:
            writer.close()

    return asyncio.run(once())
