import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    """The payment names its order by id only: the foreign key's constraint goes, the column stays."""

    dependencies = [
        ("orders", "0001_initial"),
        ("payments", "0001_initial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="payment",
            name="order",
            field=models.OneToOneField(
                db_constraint=False,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="payment",
                to="orders.order",
            ),
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(model_name="payment", name="order"),
                migrations.AddField(model_name="payment", name="order_id", field=models.UUIDField(unique=True)),
            ]
        ),
    ]
