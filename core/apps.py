from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from core import checks  # noqa: F401 (registers the deploy checks)
        from core.metrics import HeartbeatCollector, metrics_register

        metrics_register(HeartbeatCollector())
