"""Settings shared by every profile. Configuration comes only from the environment."""

from datetime import timedelta
from decimal import Decimal, InvalidOperation
from ipaddress import ip_network
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import django_stubs_ext
import environ
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from kombu import Exchange, Queue

from core.broker import broker_transport
from core.files import secure_var_dir
from telemetry.errors import error_reporting_setup
from telemetry.logs import LOG_FORMATS, logging_config

# Lets generic classes be subscripted at run time (ModelAdmin[Product], QuerySet[Order]).
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parents[2]
VAR_DIR = BASE_DIR / "var"
# The embedded database, broker, beat schedule and caches live here: readable by their owner
# only (contract §6). Every process of the shop (web, worker, beat, manage.py) loads these
# settings first, so the files it creates from now on are private too.
secure_var_dir(VAR_DIR)

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env")

SECRET_KEY = env("DJANGO_SECRET_KEY", default="dev-only-insecure-key-set-DJANGO_SECRET_KEY-in-production")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])

INSTALLED_APPS = [
    "core.apps.ShopAdminConfig",  # django.contrib.admin: searches bounded, the shop's models first
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.sites",  # for flatpages
    "django.contrib.flatpages",  # the shop's contact, shipping and returns, privacy and terms pages
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "axes",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_results",
    "django_countries",
    "csp",
    "core",
    "outbox",
    "events",
    "sagas",
    "accounts",
    "shop",
    "orders",
    "risk",
    "payments",
    "shipping",
    "notifications",
]

MIDDLEWARE = [
    # Outermost: refuses malformed API requests first and makes every /api/ answer JSON.
    "core.middleware.ApiJsonMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: turns a locked-out login into our 429 (core.ratelimits).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "shop.cart.cart_summary",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server, the worker and beat share one file. WAL lets readers run beside the one
    # writer, and IMMEDIATE makes every atomic block take the write lock when it begins, so the
    # read-then-write blocks that rely on select_for_update elsewhere (our stock and saga rows,
    # django-celery-results' chord counter) are serialized instead of failing half way.
    DATABASES["default"]["ENGINE"] = "core.backends.sqlite3"  # waits for the write lock in short steps
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
# Web requests and Celery tasks keep their connection (see config/celery.py), health-checked.
DATABASES["default"].setdefault("CONN_MAX_AGE", 60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {"default": env.cache("CACHE_URL", default=f"filecache://{VAR_DIR / 'cache'}")}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# django-axes first: it refuses a locked-out login before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

LANGUAGE_CODE = "en-us"
# The shop's own time zone: pages show times in it, with the zone named.
TIME_ZONE = env("SHOP_TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Uploaded files (product images). In development Django serves them itself (SERVE_MEDIA);
# in production a web server or object storage does (docs/operations.md: "Product images").
MEDIA_URL = "/media/"
MEDIA_ROOT = env.path("MEDIA_ROOT", default=str(VAR_DIR / "media"))
SERVE_MEDIA = env.bool("SERVE_MEDIA", default=True)
# The most pixels a product image may have (shop/validators.py). A PNG of a few kilobytes can
# declare 100 Mpx and take hundreds of megabytes to decode; 25 Mpx decodes to at most about
# 100 MB (four bytes a pixel), and is more than any product photo needs.
PRODUCT_IMAGE_MAX_PIXELS = env.int("PRODUCT_IMAGE_MAX_PIXELS", default=25_000_000)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- Content-Security-Policy (django-csp) ---------------------------------------------------
# Everything comes from our own origin and nothing runs inline: no inline script, style or
# event handler is allowed, so injected markup cannot execute. The few pages that need more
# (Swagger UI) widen it for themselves with django-csp's per-view decorators.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# --- Email (password reset, the customers' order emails from notifications/) ------------------
# EMAIL_URL in django-environ's form: consolemail:// (the default: printed by the process that
# sends: the web for a password reset, the worker for order emails), filemail:///path,
# smtp://user:pass@host:587, smtp+tls://...
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
# Order emails are sent inside the transaction that records their event (notifications/services.py):
# a mail server that hangs must not hold it open for long.
EMAIL_TIMEOUT = env.float("EMAIL_TIMEOUT", default=10.0)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Northwind Supply <shop@localhost>")
# The shop's public address, for the links in emails (the password reset, the address
# verification): from configuration, never from the Host header a request came with, which the
# client writes. `make run` sets it to its own port; the production profile requires it.
SITE_URL = env("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
_site = urlsplit(SITE_URL)
if _site.scheme not in ("http", "https") or not _site.hostname or _site.path or _site.query or _site.fragment:
    raise ImproperlyConfigured(
        f"SITE_URL must be http(s)://host[:port], e.g. https://shop.example.com, not {SITE_URL!r}"
    )

# --- Logs and traces (telemetry/) -------------------------------------------------------------
# Every log line carries the saga (order), step, attempt and service it is about; ``text`` for
# people, ``json`` (one object per line) for a log pipeline. Web, worker and beat alike.
LOG_FORMAT = env("LOG_FORMAT", default="text").lower()
if LOG_FORMAT not in LOG_FORMATS:
    raise ImproperlyConfigured(f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not {LOG_FORMAT!r}")
LOGGING: dict[str, Any] = logging_config(log_format=LOG_FORMAT, level=env("LOG_LEVEL", default="INFO"))
# What logs and spans call a saga's id: this shop's sagas are its orders.
TELEMETRY_SAGA_ID = "order_id"
# Traces are exported when the standard OTEL_* variables say where (telemetry/tracing.py). This
# template (e.g. http://jaeger:16686/trace/{trace_id}) turns the admin's trace ids into links.
OTEL_TRACES_URL = env("OTEL_TRACES_URL", default="")
if OTEL_TRACES_URL and "{trace_id}" not in OTEL_TRACES_URL:
    raise ImproperlyConfigured("OTEL_TRACES_URL must contain {trace_id}, e.g. http://jaeger:16686/trace/{trace_id}")

# --- Error reporting (telemetry/errors.py) ---------------------------------------------------------
# Off without SENTRY_DSN. On, every process reports its unhandled errors (web requests, tasks),
# with secrets and personal data scrubbed before they leave it.
SENTRY_DSN = env("SENTRY_DSN", default="")
SENTRY_ENVIRONMENT = env("SENTRY_ENVIRONMENT", default="production")
SENTRY_TRACES_SAMPLE_RATE = env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0)
error_reporting_setup(dsn=SENTRY_DSN, environment=SENTRY_ENVIRONMENT, traces_sample_rate=SENTRY_TRACES_SAMPLE_RATE)

# --- Who a client is, and its limits ----------------------------------------------------------
RATE_LIMITS = env("RATE_LIMITS", default="on").lower() not in {"off", "false", "0", "no"}
# Addresses or networks of the reverse proxies in front of the shop (e.g. "10.0.0.5,10.1.0.0/16").
# Only these may say, in X-Forwarded-For, which address a client has (core/clients.py).
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])
# Who may read /metrics without a session holding core.view_metrics (core/metrics.py): addresses
# or networks of the Prometheus servers that scrape it, as core.clients.client_ip sees them.
# Loopback by default.
METRICS_ALLOWED_IPS = env.list("METRICS_ALLOWED_IPS", default=["127.0.0.1", "::1"])
for _network in METRICS_ALLOWED_IPS:
    try:
        ip_network(_network.strip(), strict=False)
    except ValueError as _error:
        raise ImproperlyConfigured(f"METRICS_ALLOWED_IPS: {_error}") from None

# django-axes: failed logins, on every path that calls authenticate() (API token, storefront,
# admin). A client (its address as core.clients.client_ip says, like every limit) that fails ten
# times within 15 minutes is locked out for 15 minutes, whichever usernames it tried; the
# accounts stay open to every other client. Never per username alone: then anyone could lock
# anyone out, the superuser included, from anywhere and for ever (docs/security.md).
# Failures are recorded per (username, client), visible in the admin's access attempts; axes
# locks when the largest of its counts reaches AXES_FAILURE_LIMIT, and a client's count holds
# every (username, client) count of it, so a second entry for the pair would never decide.
AXES_ENABLED = RATE_LIMITS
AXES_FAILURE_LIMIT = 10
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = ["ip_address"]
AXES_CLIENT_IP_CALLABLE = "core.clients.client_ip"
AXES_LOCKOUT_CALLABLE = "core.ratelimits.lockout_response"
# A failure while locked out does not extend the lockout: it ends 15 minutes after it began.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# Nor does a success wipe a client's failures: one account of its own would let it guess at others.
AXES_RESET_ON_SUCCESS = False
AXES_DISABLE_ACCESS_LOG = True  # successful logins are not recorded (nothing would purge them)
AXES_VERBOSE = False

# --- REST API -------------------------------------------------------------------------------
API_TOKEN_TTL_HOURS = env.float("API_TOKEN_TTL_HOURS", default=168.0)
# django-rest-knox: tokens stored as SHA-512 hashes, each with its expiry, one per client.
REST_KNOX = {
    "TOKEN_TTL": timedelta(hours=API_TOKEN_TTL_HOURS),
    "AUTH_HEADER_PREFIX": "Token",
    "AUTO_REFRESH": False,
}
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ExpiringTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON in, JSON out (contract §3). Browser clients on the session send JSON with the CSRF
    # header, as the Swagger UI at /api/docs/ does.
    "DEFAULT_PARSER_CLASSES": ["core.parsers.JSONBodyParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PAGINATION_CLASS": "core.pagination.Pagination",
    "PAGE_SIZE": 20,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "core.schema.ShopAutoSchema",
    "EXCEPTION_HANDLER": "core.api.exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        # Per client: a person mistyping a password a few times never notices; a script does.
        "login": "10/min",
        "register": "20/hour",
        "order_create": "30/min",
        # Password reset emails: per client, and per address whoever asks (the links already sent
        # keep working, so someone spending an address's budget keeps no one out of their account).
        "password_reset": "10/hour",
        "password_reset_address": "3/hour",
        # Stripe's webhook deliveries, per sending address: Stripe's bursts fit, a flood does not.
        "stripe_webhook": "600/min",
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Shop API",
    # The docs page's introduction: statuses, test values, idempotency, following an order.
    "DESCRIPTION": (BASE_DIR / "docs" / "api.md").read_text(encoding="utf-8"),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums"],
    # A nullable enum is `nullable: true`, not a `oneOf` with a NullEnum that clients handle badly.
    "ENUM_ADD_EXPLICIT_BLANK_NULL_CHOICE": False,
    # Enumerations named after what they are (several share values such as "pending").
    "ENUM_NAME_OVERRIDES": {
        "OrderStatusEnum": "orders.models.Status",
        "CancellationReasonEnum": "orders.models.Reason",
        "StepStatusEnum": "orders.models.SagaStep.Status",
        "PaymentStatusEnum": "payments.models.Payment.Status",
        "ShipmentStatusEnum": "shipping.models.Shipment.Status",
        "TransactionKindEnum": "payments.models.ProviderTransaction.Kind",
        "TransactionStatusEnum": "payments.models.ProviderTransaction.Status",
        "JournalServiceEnum": "orders.journal.JournalService",
        "JournalKindEnum": "orders.models.OrderEvent.Kind",
        # Every error's `code` (core.errors): a 400's, and every other status's.
        "ValidationErrorCodeEnum": "core.errors.BAD_REQUEST_CODES",
        "ErrorCodeEnum": "core.errors.ERROR_CODES",
    },
    # Swagger UI served from our own static files: the docs work offline, with no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
}

# --- Celery ---------------------------------------------------------------------------------
SHOP_QUEUES = ("orders", "inventory", "risk", "payments", "shipping", "notifications")

CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="filesystem://")
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", default="django-db")
if CELERY_RESULT_BACKEND == "django-db":  # the same, without a chord counter nothing reads
    CELERY_RESULT_BACKEND = "core.results:DatabaseBackend"


def broker_transport_options(broker_url: str) -> dict[str, Any]:
    """Options for the broker. ``filesystem:///some/dir`` keeps the embedded queue in that dir."""
    if broker_url.startswith("filesystem://"):
        folder = Path(broker_url.removeprefix("filesystem://") or VAR_DIR / "broker")
        for sub in ("queue", "control"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        return {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "control_folder": str(folder / "control"),
            # kombu's virtual transports sleep a full second between empty polls by default.
            "polling_interval": env.float("CELERY_POLLING_INTERVAL", default=0.02),
        }
    if broker_url.startswith(("redis://", "rediss://")):
        # A message taken by a worker that dies is handed out again after this long. It must
        # outlast the longest retry countdown; the saga sweeper covers anything shorter-lived.
        return {"visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=300)}
    return {}


CELERY_BROKER_TRANSPORT_OPTIONS = broker_transport_options(CELERY_BROKER_URL)

# kombu's transport for the URL, with the fixes of core/broker.py where it has any.
CELERY_BROKER_TRANSPORT = broker_transport(CELERY_BROKER_URL)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_DEFAULT_QUEUE = "orders"
# Declared, so that a worker started without ``-Q`` (the Procfile's, ``make run``'s) consumes every
# queue of the shop; the scale-out layout names one queue per worker with ``-Q``.
CELERY_TASK_QUEUES = tuple(Queue(queue, Exchange(queue), routing_key=queue) for queue in SHOP_QUEUES)
CELERY_TASK_ROUTES: dict[str, dict[str, str]] = {f"{queue}.*": {"queue": queue} for queue in SHOP_QUEUES}
# Like the order emails, it waits on the mail server: on the workers that do, never an order's.
CELERY_TASK_ROUTES["accounts.password_reset_email"] = {"queue": "notifications"}
# Every step is idempotent, so a message is acknowledged only once its task has finished and
# is handed out again when the worker running it dies.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = env.int("CELERY_PREFETCH_MULTIPLIER", default=4)
CELERY_TASK_IGNORE_RESULT = True
# A line that cannot be reserved starts compensation at once instead of after its siblings;
# compensation waits for any sibling still running, so nothing is released too early.
CELERY_TASK_ALLOW_ERROR_CB_ON_CHORD_HEADER = True
CELERY_RESULT_EXPIRES = 24 * 3600
CELERY_RESULT_EXTENDED = False
CELERY_WORKER_SEND_TASK_EVENTS = False
CELERY_DB_REUSE_MAX = 10**9  # config/celery.py closes connections the way Django does
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- The order saga -------------------------------------------------------------------------
SAGA_RETRY_BASE_SECONDS = env.float("SAGA_RETRY_BASE_SECONDS", default=0.5)
SAGA_RETRY_MAX_SECONDS = env.float("SAGA_RETRY_MAX_SECONDS", default=8.0)
SAGA_MAX_RETRIES = env.int("SAGA_MAX_RETRIES", default=4)
# A step that started longer ago than this and never finished is presumed dead.
SAGA_STEP_LEASE_SECONDS = env.float("SAGA_STEP_LEASE_SECONDS", default=60.0)
# A saga with no progress for this long is driven on again from its recorded state.
SAGA_STALL_SECONDS = env.float("SAGA_STALL_SECONDS", default=60.0)
SAGA_SWEEP_INTERVAL_SECONDS = env.float("SAGA_SWEEP_INTERVAL_SECONDS", default=15.0)
ORDER_PENDING_EXPIRY_SECONDS = env.float("ORDER_PENDING_EXPIRY_SECONDS", default=15 * 60)
IDEMPOTENCY_KEY_TTL_SECONDS = 24 * 3600
# An Idempotency-Key whose first request crashed before answering can be used again after this.
IDEMPOTENCY_IN_FLIGHT_SECONDS = 60

# --- The outbox (outbox/) -----------------------------------------------------------------------
# How often each worker's relay thread looks for messages nobody published yet (written by the
# web, or while the broker was down, or retries that became due).
OUTBOX_POLL_SECONDS = env.float("OUTBOX_POLL_SECONDS", default=0.05)
# A message that cannot be published for a reason other than the broker being down is parked.
OUTBOX_MAX_ATTEMPTS = 5
# On: a message for a queue that the worker writing it consumes is run by that worker, right
# after the task that wrote it, instead of a round trip through the broker (outbox/nearby.py).
# Off: every hop goes through the broker (a layout where no worker serves two queues gains
# nothing from it).
OUTBOX_LOCAL_HOPS = env.bool("OUTBOX_LOCAL_HOPS", default=True)
# How long such a message is held back from the relay: if the worker has not run it by then (it
# died), the relay sends it through the broker. Longer than a step takes, or a slow step's hop
# is sent a second time while it runs (harmless, every step is idempotent, but wasted).
OUTBOX_LOCAL_LEASE_SECONDS = env.float("OUTBOX_LOCAL_LEASE_SECONDS", default=60.0)

# How an order's saga is coordinated unless the order says (contract §7): ``orchestration``
# (the canvas of orders/saga.py) or ``choreography`` (the subscriptions of */handlers.py).
ORDER_COORDINATION = env.str("ORDER_COORDINATION", default="orchestration")
if ORDER_COORDINATION not in ("orchestration", "choreography"):
    raise ImproperlyConfigured("ORDER_COORDINATION must be orchestration or choreography")
# The most one order may cost (contract §3): a dearer one is refused with a 400 (a form error on
# the checkout) before anything is written. At most what Order.total holds; the orders app's
# system check refuses more (orders/checks.py).
try:
    ORDER_MAX_TOTAL = Decimal(env.str("ORDER_MAX_TOTAL", default="1000000.00"))
except InvalidOperation:
    raise ImproperlyConfigured("ORDER_MAX_TOTAL must be an amount such as 1000000.00") from None
# The aggregate behind a saga, for the step runtime (sagas/ledger.py).
SAGA_LEDGER = "orders.ledger.OrderLedger"
# A handler that keeps failing for reasons that are not business decisions (a mail server that
# is down) is delivered again with backoff up to EVENTS_RETRY_MAX_SECONDS apart, then parked
# with its error after EVENTS_MAX_ATTEMPTS deliveries (events/services.py): about a quarter of an hour.
EVENTS_MAX_ATTEMPTS = env.int("EVENTS_MAX_ATTEMPTS", default=12)
EVENTS_RETRY_MAX_SECONDS = env.float("EVENTS_RETRY_MAX_SECONDS", default=300.0)
# An event handed to the broker this long ago whose handler has no inbox entry was lost by the
# broker (a restart without persistence): it is published again (events/services.py).
EVENTS_REDELIVER_AFTER_SECONDS = env.float("EVENTS_REDELIVER_AFTER_SECONDS", default=300.0)
# The relay gives up on a broker that is down quickly and tries again on its next round.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}

# The reconciler (orders/reconciliation.py): every RECONCILE_INTERVAL_SECONDS it compares up to
# RECONCILE_BATCH ended orders with the payment provider's and the carrier's ledgers, those never
# compared first, then those compared longest ago.
RECONCILE_INTERVAL_SECONDS = env.float("RECONCILE_INTERVAL_SECONDS", default=60.0)
RECONCILE_BATCH = env.int("RECONCILE_BATCH", default=200)

# --- Risk screening (risk/, contract §4c) -----------------------------------------------------
# The screening provider (the simulated one's test values: risk/providers.py), and how long an
# order held for review waits for a person before it is cancelled as ``expired``.
RISK_PROVIDER = env.str("RISK_PROVIDER", default="risk.providers.SimulatedScreener")
RISK_REVIEW_HOURS = env.float("RISK_REVIEW_HOURS", default=24.0)

CELERY_BEAT_SCHEDULE = {
    "recover-stalled-sagas": {
        "task": "orders.recover_stalled_sagas",
        "schedule": SAGA_SWEEP_INTERVAL_SECONDS,
    },
    "purge-sent-outbox-messages": {"task": "orders.outbox_purge", "schedule": 3600.0},
    "redeliver-unhandled-events": {"task": "orders.events_redeliver_unhandled", "schedule": 60.0},
    "reconcile-with-providers": {"task": "orders.reconcile", "schedule": RECONCILE_INTERVAL_SECONDS},
    "expire-reviews": {"task": "risk.expire_reviews", "schedule": 300.0},
    # What is kept about users only as long as it serves them (core/tasks.py).
    "purge-idempotency-records": {"task": "core.purge_idempotency_records", "schedule": 3600.0},
    "clear-expired-sessions": {"task": "core.clear_expired_sessions", "schedule": 3600.0},
    "purge-expired-tokens": {"task": "accounts.purge_expired_tokens", "schedule": 3600.0},
}

# --- Readiness (/readyz, core/selectors.py) ------------------------------------------------------
# Beat sends a ``core.heartbeat`` to every queue this often; the worker that takes it stamps
# the queue as served. ``/readyz`` answers 503 naming a queue not served for
# HEALTH_WORKER_STALE_SECONDS, beat when it has not ticked for HEALTH_BEAT_STALE_SECONDS, the
# outbox when its oldest due, unpublished message has waited HEALTH_OUTBOX_STALE_SECONDS.
HEALTH_HEARTBEAT_SECONDS = env.float("HEALTH_HEARTBEAT_SECONDS", default=15.0)
HEALTH_WORKER_STALE_SECONDS = env.float("HEALTH_WORKER_STALE_SECONDS", default=60.0)
HEALTH_BEAT_STALE_SECONDS = env.float("HEALTH_BEAT_STALE_SECONDS", default=60.0)
HEALTH_OUTBOX_STALE_SECONDS = env.float("HEALTH_OUTBOX_STALE_SECONDS", default=60.0)
CELERY_BEAT_SCHEDULE |= {
    f"heartbeat-{queue}": {
        "task": "core.heartbeat",
        "schedule": HEALTH_HEARTBEAT_SECONDS,
        "args": (queue,),
        # A heartbeat older than the threshold proves nothing more than the next one will.
        "options": {"queue": queue, "expires": HEALTH_WORKER_STALE_SECONDS},
    }
    for queue in SHOP_QUEUES
}

# ``simulated`` (the default), ``stripe`` (docs/stripe.md), or a provider's dotted path.
PAYMENT_PROVIDER = env.str("PAYMENT_PROVIDER", default="simulated")
# Stripe (PAYMENT_PROVIDER=stripe): the secret key is required then (a system check says so at
# start-up); STRIPE_API_BASE points the SDK at a Stripe-compatible server (localstripe, tests).
STRIPE_API_KEY = env.str("STRIPE_API_KEY", default="")
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="https://api.stripe.com")
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")
# Short, so that a call never outlives the saga's lease; the SDK never retries, the saga does.
STRIPE_CONNECT_TIMEOUT_SECONDS = env.float("STRIPE_CONNECT_TIMEOUT_SECONDS", default=3.0)
STRIPE_TIMEOUT_SECONDS = env.float("STRIPE_TIMEOUT_SECONDS", default=10.0)
# Stripe's own tolerance for a webhook's signed timestamp, and the largest body it sends.
STRIPE_WEBHOOK_TOLERANCE_SECONDS = 300
STRIPE_WEBHOOK_MAX_BYTES = 256 * 1024
SHIPPING_CARRIER = env("SHIPPING_CARRIER", default="shipping.carriers.SimulatedCarrier")
# How long each call to the simulated provider and carrier takes (a real one takes 100+ ms).
SIMULATED_LATENCY_SECONDS = env.float("SIMULATED_LATENCY_SECONDS", default=0.0)
# How long a slow call takes (``tok_slow``, postal code ``88888``): longer than any lease.
SIMULATED_SLOW_SECONDS = env.float("SIMULATED_SLOW_SECONDS", default=10.0)
# A fault for tests and `make chaos`: the first request for each idempotency key to these simulated
# services (``payments.charge``, ``payments.refund``, ``shipping.create``) is held up this long on
# its way, before the provider sees it, as a network stall would (off by default).
SIMULATED_NETWORK_DELAY_SECONDS = env.float("SIMULATED_NETWORK_DELAY_SECONDS", default=0.0)
SIMULATED_NETWORK_DELAY_SERVICES = env.list("SIMULATED_NETWORK_DELAY_SERVICES", default=[])
# The one currency of the shop: every product's price and every order's total are in it.
SHOP_CURRENCY = "USD"
SITE_ID = 1  # flatpages belong to a site; the shop is one
