from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django.conf import settings
from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.renderers import (
    OpenApiJsonRenderer,
    OpenApiJsonRenderer2,
    OpenApiYamlRenderer,
    OpenApiYamlRenderer2,
)
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from accounts.api import LogoutView, RegisterView, TokenView
from accounts.views import account_page
from core.ratelimits import rate_limited
from core.views import healthz, media, metrics, readyz
from orders.api import OrderViewSet
from payments.api import TransactionListView
from payments.webhooks import stripe_webhook
from shop.api import ProductViewSet

router = DefaultRouter()
router.register("products", ProductViewSet, basename="product")
router.register("orders", OrderViewSet, basename="order")

api: list[URLPattern | URLResolver] = [
    path("auth/register/", RegisterView.as_view(), name="register"),
    path("auth/token/", TokenView.as_view(), name="token"),
    path("auth/logout/", LogoutView.as_view(), name="logout"),
    path("payments/transactions/", TransactionListView.as_view(), name="payment-transactions"),
    path("", include("risk.urls")),  # /api/orders/<id>/review/
    # JSON unless YAML is asked for (?format=yaml): every answer under /api/ is JSON.
    path(
        "schema/",
        SpectacularAPIView.as_view(
            renderer_classes=[OpenApiJsonRenderer, OpenApiJsonRenderer2, OpenApiYamlRenderer, OpenApiYamlRenderer2]
        ),
        name="schema",
    ),
    # The split view serves its start-up script as a file, so no inline script is needed;
    # Swagger UI still sets inline styles, which this page alone allows.
    path(
        "docs/",
        csp_update({"style-src": [UNSAFE_INLINE]})(SpectacularSwaggerSplitView.as_view(url_name="schema")),
        name="docs",
    ),
    path("", include(router.urls)),
]

urlpatterns = [
    # The admin's login counts against the same login limit as the storefront's and the API's.
    path("admin/login/", rate_limited("login")(admin.site.login)),
    path("admin/", admin.site.urls),
    path("api/", include(api)),
    path("webhooks/stripe/", stripe_webhook, name="stripe-webhook"),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics, name="metrics"),
    # Browsers ask for /favicon.ico on pages that name none (the admin, the API docs).
    path("favicon.ico", RedirectView.as_view(url="/static/img/favicon.svg")),
    path("accounts/", include("accounts.urls")),
    path("account/", account_page, name="account"),
    path("pages/", include("django.contrib.flatpages.urls")),  # contact, returns, privacy, terms
    path("", include("orders.urls")),
    path("", include("shop.urls")),
]

if settings.SERVE_MEDIA:
    # Product images in development (make run, tests); production serves them elsewhere.
    urlpatterns.insert(0, re_path(r"^media/(?P<path>.*)$", media, name="media"))

handler404 = "core.views.not_found"
