"""The orders' metrics index also holds an order whose saga moved (its steps changed) since it
was last counted; the step log loses its own (sagas 0004). Built before the old one is dropped,
both without stopping writes on PostgreSQL (``core.migration_operations``). Every order is in
the new index until a scrape has counted it once (``counted_progressed_at`` is empty): the first
scrape after this migration reads each order's steps once, in batches."""

from django.conf import settings
from django.db import migrations, models

from core.migration_operations import AddIndexOnline, RemoveIndexOnline


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("orders", "0011_metrics_counted"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="order",
            name="counted_progressed_at",
            field=models.DateTimeField(editable=False, null=True),
        ),
        AddIndexOnline(
            model_name="order",
            index=models.Index(
                condition=models.Q(
                    models.Q(("status", models.F("counted_status")), _negated=True),
                    models.Q(("reconcile_repairs", models.F("counted_repairs")), _negated=True),
                    models.Q(("progressed_at", models.F("counted_progressed_at")), _negated=True),
                    _connector="OR",
                ),
                fields=["id"],
                name="order_to_count",
            ),
        ),
        RemoveIndexOnline(model_name="order", name="order_uncounted"),
    ]
