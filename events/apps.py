from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "events"
    verbose_name = "Domain events"

    def ready(self) -> None:
        # Every app declares what it reacts to in its ``handlers`` module.
        from django.utils.module_loading import autodiscover_modules

        autodiscover_modules("handlers")
