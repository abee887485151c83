"""The shop's private files under ``var/``: the embedded database, broker, beat schedule, caches.

Nothing in Django here: the settings call it before anything else is loaded.
"""

import os
from pathlib import Path

# Files a local user must never read: every token hash, session key and address is in the
# database; the broker's messages carry order data.
PRIVATE_FILES = ("db.sqlite3*", "test-db*.sqlite3*", "celerybeat-schedule*", "*.log")


def secure_var_dir(path: Path) -> None:
    """Make ``path`` a folder only its owner can enter, and the files this process creates private.

    Side effects: the process umask becomes 077 (new files 0600, new folders 0700, whoever
    creates them: SQLite, kombu's broker files, celery beat's shelve, logs); ``path`` is created
    0700 or tightened to it; the database and schedule files already there are tightened to
    0600. A folder its owner alone can enter keeps every file below it private, also those an
    older version left readable.
    """
    os.umask(0o077)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o777 != 0o700:
        path.chmod(0o700)
    for pattern in PRIVATE_FILES:
        for file in path.glob(pattern):
            if file.is_file() and file.stat().st_mode & 0o077:
                file.chmod(0o600)
