"""Processes the benchmark starts (gunicorn, Celery workers) and stops again, by their own id."""

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped,import-not-found,unused-ignore]

from bench.load import HOST, build_request, request_once

ROOT = Path(__file__).resolve().parents[1]


class Service:
    """A child process in a session of its own, so that it and its children stop together."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self._offset = 0

    def start(self) -> "Service":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self._offset = self.log_path.stat().st_size
        self.process = subprocess.Popen(
            self.argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        return self

    def log_text(self) -> str:
        return self.log_path.read_bytes()[self._offset :].decode(errors="replace")

    def wait_for_log(self, marker: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while marker not in self.log_text():
            if self.process is None or self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not start; see {self.log_path}")
            time.sleep(0.1)

    def _tree(self) -> list[Any]:
        """The process and all its children (the pool), as ``psutil`` processes."""
        if self.process is None:
            return []
        try:
            root = psutil.Process(self.process.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def rss_bytes(self) -> int:
        """Resident memory of the process and all its children (the pool), in bytes."""
        total = 0
        for proc in self._tree():
            with contextlib.suppress(psutil.NoSuchProcess):
                total += proc.memory_info().rss
        return total

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the process and its children have used so far: what a
        figure costs, which other load on a shared machine changes far less than wall time."""
        total = 0.0
        for proc in self._tree():
            with contextlib.suppress(psutil.NoSuchProcess):
                times = proc.cpu_times()
                total += times.user + times.system
        return total

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the process and its children at once."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.process = None

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM (warm shutdown), SIGKILL after ``grace`` seconds: by then the work is done."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=grace)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None


class SupervisedWorker:
    """A Celery worker that is started again when it dies, as a process manager would; counts crashes."""

    def __init__(self, app: str, queues: str, concurrency: int, env: dict[str, str], log_path: Path) -> None:
        self.args = (app, queues, concurrency, env, log_path)
        self.crashes = 0
        self.service = celery_worker(*self.args)

    def check(self) -> None:
        if not self.service.alive():
            self.crashes += 1
            self.service = celery_worker(*self.args)

    def rss_bytes(self) -> int:
        return self.service.rss_bytes()

    def cpu_seconds(self) -> float:
        return self.service.cpu_seconds()

    def kill_and_restart(self) -> float:
        """SIGKILL the worker and its pool at once (a crash), then start a new one, as a
        process manager would (not counted as a crash). Returns when the kill happened."""
        self.service.kill()
        killed = time.monotonic()
        self.service = celery_worker(*self.args)
        return killed

    def stop(self) -> None:
        self.service.stop()


def celery_worker(app: str, queues: str, concurrency: int, env: dict[str, str], log_path: Path) -> Service:
    argv = [
        sys.executable, "-m", "celery", "-A", app, "worker", "-Q", queues, "--concurrency", str(concurrency),
        "--loglevel", "INFO", "--without-mingle", "--without-gossip", "--without-heartbeat",
        "--hostname", f"bench-{app}-{concurrency}-{time.monotonic_ns()}@%h",
    ]  # fmt: skip
    service = Service(f"worker {app} x{concurrency}", argv, env, log_path).start()
    service.wait_for_log(" ready.")
    return service


def gunicorn(port: int, env: dict[str, str], log_path: Path, app: str = "config.wsgi") -> Service:
    """The production server as the Procfile runs it (``config/gunicorn.py``: 4 workers x 2 threads),
    serving the shop, or another WSGI ``app`` (the DBOS peer's) the same way."""
    argv = [
        sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.py", app, "--bind", f"{HOST}:{port}",
        "--graceful-timeout", "5",
    ]  # fmt: skip
    service = Service(f"gunicorn :{port}", argv, env, log_path).start()
    deadline = time.monotonic() + 60
    while True:
        try:
            code, _ = request_once(port, build_request("GET", "/healthz", port), timeout=5)
            if code == 200:
                return service
        except OSError:
            pass
        if service.process is None or service.process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"gunicorn did not start; see {log_path}")
        time.sleep(0.2)


class RssSampler:
    """Samples a service's memory every ``interval`` seconds in a background thread."""

    def __init__(self, service: "Service | SupervisedWorker", interval: float = 1.0) -> None:
        self.service = service
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._started = 0.0

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic() - self._started, self.service.rss_bytes()))
            self._stop.wait(self.interval)

    def __enter__(self) -> "RssSampler":
        self._started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
