"""The parked messages have an index of their own: ``/metrics`` counts them at every scrape
(``outbox/metrics.py``), which read the whole table, a day of sent messages, until now. Built
without stopping the shop's writes on PostgreSQL (``core.migration_operations``)."""

from django.db import migrations, models

from core.migration_operations import AddIndexOnline


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("outbox", "0003_in_process"),
    ]

    operations = [
        AddIndexOnline(
            model_name="outboxmessage",
            index=models.Index(
                condition=models.Q(("parked_at__isnull", False)),
                fields=["parked_at"],
                name="outbox_parked",
            ),
        ),
    ]
