"""Delete the chord counters that django-celery-results kept for the saga's chords: nothing
read them, and from now on none is written (``core/results.py``)."""

from typing import Any

from django.db import migrations


def forget_chord_counters(apps: Any, schema_editor: Any) -> None:
    apps.get_model("django_celery_results", "ChordCounter").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0002_simulator_in_flight"),
        ("django_celery_results", "0014_alter_taskresult_status"),
    ]

    operations = [migrations.RunPython(forget_chord_counters, migrations.RunPython.noop)]
