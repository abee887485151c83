from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = "Orders"

    def ready(self) -> None:
        from core.metrics import metrics_register
        from orders.metrics import OrderCollector

        metrics_register(OrderCollector())
