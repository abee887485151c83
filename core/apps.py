from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from core.metrics import HeartbeatCollector, metrics_register

        metrics_register(HeartbeatCollector())
