from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "events"
    verbose_name = "Domain events"

    def ready(self) -> None:
        # Every app declares what it reacts to in its ``handlers`` module.
        from django.utils.module_loading import autodiscover_modules

        from core.metrics import metrics_register
        from events.metrics import InboxCollector

        autodiscover_modules("handlers")
        metrics_register(InboxCollector())
