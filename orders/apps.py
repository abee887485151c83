from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = "Orders"

    def ready(self) -> None:
        from core.metrics import metrics_register
        from orders import checks  # noqa: F401  -- registers the settings' system checks
        from orders.metrics import OrderCollector

        metrics_register(OrderCollector())
