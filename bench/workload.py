"""What the benchmark sends the shop: the orders' bodies and their ``POST /api/orders/`` requests."""

import random
from typing import Any

from bench.configuration import POOL, PORT
from bench.load import build_request

ADDRESS = {"name": "Bench Buyer", "line1": "1 Loop Road", "city": "Localhost", "postal_code": "12345", "country": "DE"}


def order_body(rng: random.Random, lines: int, mode: str | None = None) -> dict[str, Any]:
    skus = rng.sample([f"BENCH-P{i:04d}" for i in range(POOL)], lines)
    body: dict[str, Any] = {
        "items": [{"sku": s, "quantity": 1} for s in skus],
        "shipping_address": ADDRESS,
        "payment_token": "tok_visa",
    }
    if mode is not None:
        body["coordination"] = mode
    return body


def order_requests(token: str, lines: int = 1, variants: int = 200, mode: str | None = None) -> list[bytes]:
    """POST /api/orders/ requests; without ``mode`` the web's ORDER_COORDINATION decides."""
    rng = random.Random(lines)
    auth = {"Authorization": f"Token {token}"}
    return [build_request("POST", "/api/orders/", PORT, order_body(rng, lines, mode), auth) for _ in range(variants)]


def bare_write_requests(token: str) -> list[bytes]:
    rng = random.Random(1)
    auth = {"Authorization": f"Token {token}"}
    return [build_request("POST", "/bench/bare/write/", PORT, order_body(rng, 1), auth) for _ in range(200)]
