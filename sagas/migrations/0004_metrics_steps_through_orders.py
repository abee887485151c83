"""The step log keeps no index of its changed rows: a scrape finds them through their order
(orders 0012), and a step's update writes no index entry (HOT). Dropped without stopping writes
on PostgreSQL."""

from django.db import migrations

from core.migration_operations import RemoveIndexOnline


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("sagas", "0003_metrics_counted"),
        ("orders", "0012_metrics_steps_through_orders"),
    ]

    operations = [
        RemoveIndexOnline(model_name="sagastep", name="saga_step_uncounted"),
    ]
