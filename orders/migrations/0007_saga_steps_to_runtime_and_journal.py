import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    """The saga steps become the step runtime's rows (app ``sagas``), keyed by the order's id;
    the timeline becomes the journal (service, kind, name); orders record their coordination."""

    dependencies = [
        ("orders", "0006_timeline_actor_kind"),
    ]

    operations = [
        # Drop the foreign key's constraint in the database; the column stays as it is.
        migrations.AlterField(
            model_name="sagastep",
            name="order",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="steps",
                to="orders.order",
            ),
        ),
        migrations.SeparateDatabaseAndState(state_operations=[migrations.DeleteModel(name="SagaStep")]),
        migrations.AddField(
            model_name="order",
            name="coordination",
            field=models.CharField(
                choices=[("orchestration", "Orchestration"), ("choreography", "Choreography")],
                default="orchestration",
                max_length=13,
            ),
        ),
        migrations.AddField(
            model_name="orderevent",
            name="service",
            field=models.CharField(default="orders", max_length=20),
        ),
        migrations.AddField(
            model_name="orderevent",
            name="kind",
            field=models.CharField(
                choices=[
                    ("status", "Status"),
                    ("command", "Command"),
                    ("event", "Event"),
                    ("step", "Step"),
                    ("retry", "Retry"),
                    ("compensation", "Compensation"),
                    ("action", "Action"),
                ],
                default="status",
                max_length=12,
            ),
        ),
        migrations.AddField(
            model_name="orderevent",
            name="name",
            field=models.CharField(blank=True, max_length=200),
        ),
    ]
