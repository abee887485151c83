from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core"
    default = True  # "core" in INSTALLED_APPS means this one, not ShopAdminConfig

    def ready(self) -> None:
        from django.core.signals import request_started

        from core import checks  # noqa: F401 (registers the deploy checks)
        from core.connections import quiet_connections_trusted
        from core.metrics import HeartbeatCollector, metrics_register

        # After Django's own receiver (connected when django.db is imported), which asks for the check.
        request_started.connect(quiet_connections_trusted, dispatch_uid="core.quiet_connections_trusted")

        metrics_register(HeartbeatCollector())


class ShopAdminConfig(admin_apps.AdminConfig):
    """Django's admin, with the shop's site as ``admin.site`` (``core.admin.ShopAdminSite``)."""

    default = False
    default_site = "core.admin.ShopAdminSite"
