"""localstripe (a Stripe-compatible server) as its own process, for the Stripe tests.

Started on a free port, ``--from-scratch``; it keeps its objects in a file of its own (the
package writes ``/tmp/localstripe.pickle``, which two runs on one machine would share, so
``run_localstripe`` points it elsewhere), so that a killed server restarts with what it held.
It can be frozen (SIGSTOP) and resumed, killed and started again.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

import stripe

from orders.models import Order, Status
from tests.worker import _die_with_parent

API_KEY = "sk_test_localstripe"
WEBHOOK_SECRET = "whsec_localstripe_tests"
RUNNER = Path(__file__).with_name("run_localstripe.py")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalStripe:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.store = directory / "localstripe.pickle"
        self.log = directory / "localstripe.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.client = stripe.StripeClient(
            API_KEY,
            base_addresses={"api": self.url},
            max_network_retries=0,
            http_client=stripe.RequestsClient(timeout=5),
        )

    def start(self, *, from_scratch: bool = True) -> None:
        args = [sys.executable, str(RUNNER), "--port", str(self.port)] + (["--from-scratch"] if from_scratch else [])
        env = os.environ | {"LOCALSTRIPE_STORE": str(self.store)}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                args, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_die_with_parent
            )  # a server left behind by a killed test run would hold its port and its store
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"localstripe did not start; see {self.log}") from None
                time.sleep(0.05)

    def freeze(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.thaw()
            self.kill()

    def django_settings(self) -> dict[str, Any]:
        """The settings that charge through this server; its calls time out well within the lease."""
        return {
            "PAYMENT_PROVIDER": "stripe",
            "STRIPE_API_KEY": API_KEY,
            "STRIPE_API_BASE": self.url,
            "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "STRIPE_CONNECT_TIMEOUT_SECONDS": 0.5,
            "STRIPE_TIMEOUT_SECONDS": 1.0,
        }

    def worker_env(self, **extra: str) -> dict[str, str]:
        """A saga worker charging through this server: the same settings, as its environment."""
        return {name: str(value) for name, value in self.django_settings().items()} | extra

    # --- what Stripe holds ------------------------------------------------------------------

    def ledger(self) -> dict[str, tuple[list[Decimal], Decimal]]:
        """Per order (``metadata.order_id``): its succeeded PaymentIntents' amounts, and the sum
        refunded of them, as the server holds them."""
        intents = list(self.client.v1.payment_intents.list({"limit": 100}).auto_paging_iter())
        refunds = list(self.client.v1.refunds.list({"limit": 100}).auto_paging_iter())
        order_of = {i.id: i.metadata["order_id"] for i in intents if "order_id" in i.metadata}
        held: dict[str, tuple[list[Decimal], Decimal]] = defaultdict(lambda: ([], Decimal("0")))
        for intent in intents:
            if intent.status == "succeeded" and intent.id in order_of:
                received = getattr(intent, "amount_received", None) or intent.amount
                held[order_of[intent.id]][0].append(Decimal(received) / 100)
        for refund in refunds:
            order = order_of.get(getattr(refund, "payment_intent", None) or "")
            if order is not None and refund.status == "succeeded":
                charges, refunded = held[order]
                held[order] = (charges, refunded + Decimal(refund.amount) / 100)
        return dict(held)

    def assert_adds_up(self, orders: Iterable[Order]) -> None:
        """Contract §4b: per completed order exactly one succeeded intent for its total and no
        refund; per cancelled order refunds equal to what succeeded; nobody charged twice."""
        held = self.ledger()
        for order in orders:
            charges, refunded = held.get(str(order.pk), ([], Decimal("0")))
            assert len(charges) <= 1, f"{order.pk}: {len(charges)} succeeded PaymentIntents"
            if order.status == Status.COMPLETED:
                assert (charges, refunded) == ([order.total], Decimal("0")), f"{order.pk}: completed, {charges}"
            else:
                assert order.status == Status.CANCELLED, f"{order.pk} is {order.status}"
                net = sum(charges, Decimal("0")) - refunded
                assert net == 0, f"{order.pk}: cancelled, Stripe holds {charges} refunded {refunded}"

    def intents_of(self, order_id: Any) -> list[stripe.PaymentIntent]:
        intents = self.client.v1.payment_intents.list({"limit": 100}).auto_paging_iter()
        return [i for i in intents if i.metadata.to_dict().get("order_id") == str(order_id)]
