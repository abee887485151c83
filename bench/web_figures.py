"""The web's figures: ``POST /api/orders/`` and a bare insert under rising load, the catalog's
queries and latency (small and full), and the in-process profiles of the hot path.
"""

from typing import Any

from bench.configuration import CONFIG, PORT, PROFILE_DIR, SIZES, progress
from bench.counts import count_queries
from bench.load import build_request, run_load
from bench.systems import seed_catalog, set_aside_unstarted_orders
from bench.workload import bare_write_requests, order_requests
from shop.models import Product

WARM_UP_SECONDS = 2.0


def warm_up(requests: list[bytes]) -> None:
    """Unmeasured load first, so that every gunicorn thread has opened its database and broker
    connections: the figures are the steady state, not the first request of each thread."""
    run_load(PORT, requests, concurrency=max(SIZES["load_levels"]), duration=WARM_UP_SECONDS)


def load_sweep(requests: list[bytes], label: str) -> list[dict[str, Any]]:
    results = []
    warm_up(requests)
    for clients in SIZES["load_levels"]:
        result, _ = run_load(PORT, requests, concurrency=clients, duration=SIZES["load_seconds"])
        summary = {"clients": clients, **result.summary()}
        results.append(summary)
        progress(
            f"{label} x{clients} clients: {summary['rate_per_s']} req/s, "
            f"p50 {summary['p50_ms']} ms, p99 {summary['p99_ms']} ms, errors {summary['errors']}"
        )
    return results


def web_latency(token: str) -> dict[str, Any]:
    return {
        "orders": load_sweep(order_requests(token), "POST /api/orders/"),
        "bare": load_sweep(bare_write_requests(token), "POST bare insert"),
    }


def catalog(token: str) -> dict[str, Any]:
    """Query counts in process (small and full catalog) and HTTP latency through gunicorn."""
    result: dict[str, Any] = {"queries": {}}
    paths = {
        "/api/products/": "/api/products/",
        "/api/products/ (page 50)": "/api/products/?page=50",
        "/api/products/ (search)": "/api/products/?search=lamp",
        "/api/products/ (in stock, by price)": "/api/products/?in_stock=true&ordering=-price",
        "/ (storefront)": "/",
        "/ (storefront, page 2)": "/?page=2",
    }
    result["queries"]["small"] = {"products": Product.objects.count(), **count_queries(paths)}
    progress(f"seeding {SIZES['products']} products")
    seed_catalog()
    result["queries"]["full"] = {"products": Product.objects.count(), **count_queries(paths)}
    progress(f"queries per request: {result['queries']}")
    storefront = result["queries"]["full"].get("/ (storefront)")
    http: dict[str, Any] = {}
    targets = {"/api/products/": "/api/products/", "bare read": "/bench/bare/read/"}
    if isinstance(storefront, int):
        targets["/ (storefront)"] = "/"
    else:
        result["storefront_note"] = f"/ answered {storefront}: the storefront page is not there yet; skipped"
        progress(result["storefront_note"])
    for label, path in targets.items():
        request = [build_request("GET", path, PORT)]
        warm_up(request)
        for clients in (1, SIZES["saturation_clients"]):
            res, _ = run_load(PORT, request, concurrency=clients, duration=min(SIZES["load_seconds"], 4.0))
            http[f"{label} x{clients}"] = {"path": path, "clients": clients, **res.summary()}
            s = http[f"{label} x{clients}"]
            progress(f"GET {label} x{clients}: {s['rate_per_s']} req/s, p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms")
    result["http"] = http
    return result


def profiles(token: str) -> dict[str, Any]:
    from bench import profile

    PROFILE_DIR.mkdir(parents=True, exist_ok=True)
    result = profile.run(token=token, config=CONFIG, out_dir=PROFILE_DIR)
    set_aside_unstarted_orders()  # the profiled POSTs sent sagas that no worker runs
    progress(f"profiles written to {PROFILE_DIR}")
    return result
