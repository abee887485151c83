"""The API's tokens moved to django-rest-knox (hashed, expiring). The old table of DRF's
``rest_framework.authtoken`` held every token in clear: a database that still has it loses it."""

from django.db import migrations
from django.db.migrations.recorder import MigrationRecorder


def drop_plaintext_tokens(apps, schema_editor):
    connection = schema_editor.connection
    if "authtoken_token" in connection.introspection.table_names():
        schema_editor.execute(f"DROP TABLE {schema_editor.quote_name('authtoken_token')}")
    MigrationRecorder(connection).migration_qs.filter(app="authtoken").delete()


class Migration(migrations.Migration):
    dependencies = [("knox", "0009_extend_authtoken_field")]

    operations = [migrations.RunPython(drop_plaintext_tokens, migrations.RunPython.noop)]
