from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = "Orders"

    def ready(self) -> None:
        from core.metrics import metrics_register
        from orders import checks, plan  # noqa: F401  -- the settings' system checks; the saga's plan
        from orders.metrics import OrderCollector

        metrics_register(OrderCollector())
