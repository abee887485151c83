import django.db.models.deletion
from django.db import migrations, models


def fill_order_ids(apps, schema_editor):  # type: ignore[no-untyped-def]
    reservation_model = apps.get_model("shop", "StockReservation")
    line_model = apps.get_model("orders", "OrderLine")
    for reservation in reservation_model.objects.filter(order_id__isnull=True).iterator():
        reservation.order_id = line_model.objects.values_list("order_id", flat=True).get(pk=reservation.line_id)
        reservation.save(update_fields=["order_id"])


class Migration(migrations.Migration):
    """A reservation names its order and line by id only: the foreign key's constraint goes,
    the column stays, and the order's id is kept beside it (releasing is by order)."""

    dependencies = [
        ("orders", "0002_initial"),
        ("shop", "0003_product_images_and_categories"),
    ]

    operations = [
        migrations.AlterField(
            model_name="stockreservation",
            name="line",
            field=models.OneToOneField(
                db_constraint=False,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="reservation",
                to="orders.orderline",
            ),
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(model_name="stockreservation", name="line"),
                migrations.AddField(
                    model_name="stockreservation", name="line_id", field=models.BigIntegerField(unique=True)
                ),
            ]
        ),
        migrations.AddField(model_name="stockreservation", name="order_id", field=models.UUIDField(null=True)),
        migrations.RunPython(fill_order_ids, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="stockreservation", name="order_id", field=models.UUIDField(db_index=True)
        ),
    ]
