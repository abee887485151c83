"""Django's admin site with the shop's own models listed first on its index."""

from typing import Any

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.http import HttpRequest

# The shop's own apps, in the order staff reach for them; the libraries' (Axes, Celery results,
# Knox, users and groups...) follow in Django's alphabetical order.
SHOP_APPS = ["orders", "shop", "payments", "shipping", "notifications", "outbox", "events", "sagas", "core"]


class ShopAdminSite(admin.AdminSite):
    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[Any]:
        apps = super().get_app_list(request, app_label)
        rank = {label: i for i, label in enumerate(SHOP_APPS)}
        return sorted(apps, key=lambda app: rank.get(app["app_label"], len(rank)))


class ShopAdminConfig(AdminConfig):
    default_site = "core.adminsite.ShopAdminSite"
