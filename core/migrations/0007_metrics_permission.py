"""The permission to read /metrics, ``core.view_metrics``, on a model whose table stays empty."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0006_shop_pages"),
    ]

    operations = [
        migrations.CreateModel(
            name="Metrics",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
            ],
            options={
                "permissions": [("view_metrics", "Can read the shop's figures at /metrics")],
                "default_permissions": (),
            },
        ),
    ]
