"""The orders' metrics index also holds an order whose saga moved (``saga_moved``: a step of it
was written) since it was last counted; the step log loses its own index (sagas 0004), and the
orders lose ``(status, progressed_at)``, so that a step's update and its order's record of
progress are HOT updates (no index entry written). The sweeper finds the sagas in flight by
their status alone.

Orders with a step changed since the last scrape (the old index of the step log, still there
now) are marked moved, so the next scrape counts those steps. The new index is built before the
old one is dropped, all of it without stopping writes on PostgreSQL (``core.migration_operations``).
"""

from django.conf import settings
from django.db import migrations, models

from core.migration_operations import AddIndexOnline, RemoveIndexOnline


def mark_orders_with_uncounted_steps(apps, schema_editor):
    Order = apps.get_model("orders", "Order")
    SagaStep = apps.get_model("sagas", "SagaStep")
    uncounted = ~models.Q(status=models.F("counted_status")) | ~models.Q(attempts=models.F("counted_attempts"))
    Order.objects.filter(pk__in=SagaStep.objects.filter(uncounted).values("saga_id")).update(saga_moved=True)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("orders", "0011_metrics_counted"),
        ("sagas", "0003_metrics_counted"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="order",
            name="saga_moved",
            field=models.BooleanField(db_default=False, editable=False),
        ),
        migrations.RunPython(mark_orders_with_uncounted_steps, migrations.RunPython.noop),
        AddIndexOnline(
            model_name="order",
            index=models.Index(
                condition=models.Q(
                    models.Q(("status", models.F("counted_status")), _negated=True),
                    models.Q(("reconcile_repairs", models.F("counted_repairs")), _negated=True),
                    ("saga_moved", True),
                    _connector="OR",
                ),
                fields=["id"],
                name="order_to_count",
            ),
        ),
        RemoveIndexOnline(model_name="order", name="order_uncounted"),
        RemoveIndexOnline(model_name="order", name="order_status_progress"),
    ]
