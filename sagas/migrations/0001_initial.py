from django.db import migrations, models


class Migration(migrations.Migration):
    """Takes over the table ``orders_sagastep`` as it is (orders 0007 let go of it)."""

    initial = True

    dependencies = [
        ("orders", "0007_saga_steps_to_runtime_and_journal"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="SagaStep",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("saga_id", models.UUIDField(db_column="order_id")),
                        ("name", models.CharField(max_length=80)),
                        (
                            "kind",
                            models.CharField(
                                choices=[("forward", "Forward"), ("compensation", "Compensation")],
                                default="forward",
                                max_length=12,
                            ),
                        ),
                        ("position", models.PositiveSmallIntegerField()),
                        (
                            "status",
                            models.CharField(
                                choices=[
                                    ("pending", "Pending"),
                                    ("running", "Running"),
                                    ("waiting", "Waiting"),
                                    ("succeeded", "Succeeded"),
                                    ("failed", "Failed"),
                                    ("skipped", "Skipped"),
                                ],
                                default="pending",
                                max_length=10,
                            ),
                        ),
                        ("attempts", models.PositiveIntegerField(default=0)),
                        ("started_at", models.DateTimeField(blank=True, null=True)),
                        ("finished_at", models.DateTimeField(blank=True, null=True)),
                        ("error", models.TextField(blank=True)),
                    ],
                    options={
                        "db_table": "orders_sagastep",
                        "ordering": ["position", "id"],
                        "constraints": [
                            models.UniqueConstraint(fields=("saga_id", "name"), name="saga_step_unique_per_order")
                        ],
                    },
                ),
            ]
        ),
    ]
