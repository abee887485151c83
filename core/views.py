from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.views.decorators.cache import never_cache
from django.views.defaults import page_not_found
from django.views.static import serve
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from config.celery import app as celery_app
from core.metrics import REGISTRY, metrics_allowed
from core.middleware import API_PREFIX, json_error
from core.selectors import readiness


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception:
        return False


def _broker_ok() -> bool:
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return True
    except Exception:
        return False


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    parts = {"database": _database_ok(), "broker": _broker_ok()}
    body = {name: "ok" if ok else "unavailable" for name, ok in parts.items()}
    return JsonResponse(body, status=200 if all(parts.values()) else 503)


# django-health-check (not installed) checks what one process can reach: its database, cache
# and broker, and a Celery ping (a broadcast that waits for replies, slow and unreliable on the
# filesystem broker). What readiness needs here is whether every queue is served and beat
# ticks, on whatever machines they run: heartbeats kept in the database (core.selectors) answer
# that with one read, so a small view of our own does it.
@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    """Ready for orders: ``200`` when every queue was served, beat ticked and the outbox drained
    within their thresholds (``HEALTH_*_SECONDS``); ``503`` naming what is not."""
    try:
        state = readiness()
    except Exception:
        return JsonResponse({"database": "unavailable"}, status=503)
    body = {
        "queues": {queue: "ok" if ok else "stale" for queue, ok in state.queues.items()},
        "beat": "ok" if state.beat else "stale",
        "outbox": "ok" if state.outbox else "stale",
    }
    return JsonResponse(body, status=200 if state.ready else 503)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """404 for a URL no route matches. Under /api/ the JSON answer of ``core.middleware``, at
    once: the shop's HTML page would be rendered only to be replaced (and needs static files)."""
    if request.path_info.startswith(API_PREFIX):
        return json_error(404)
    return page_not_found(request, exception)


def media(request: HttpRequest, path: str) -> HttpResponseBase:
    """An uploaded file (a product image), in development: see SERVE_MEDIA in the settings.

    Django's own ``serve`` refuses any path outside MEDIA_ROOT; production serves these files
    from a web server or object storage instead (README).
    """
    return serve(request, path, document_root=settings.MEDIA_ROOT)


FORBIDDEN = "/metrics needs the permission core.view_metrics, or an address in METRICS_ALLOWED_IPS.\n"


@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus' text format, for ``core.view_metrics`` or an allowed scraper (``core.metrics``); 403 otherwise."""
    if not metrics_allowed(request):
        return HttpResponse(FORBIDDEN, status=403, content_type="text/plain")
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
