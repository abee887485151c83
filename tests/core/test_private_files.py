"""The embedded default's files are readable by their owner only; production refuses SQLite."""

import os
import stat
import subprocess
import sys
from pathlib import Path

from django.conf import settings

from core.files import secure_var_dir

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = {
    "PATH": "/usr/bin:/bin",
    "DJANGO_SETTINGS_MODULE": "config.settings.production",
    "DJANGO_SECRET_KEY": "x7#kQ!2vLr9@pZ4mW8^sT1&nB6*eY3%hU5(jD0)fG-cV+aR=oI~lK" * 2,
    "DJANGO_ALLOWED_HOSTS": "shop.example.com",
    "SITE_URL": "https://shop.example.com",
}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_var_is_its_owners_only(db):
    assert mode(settings.VAR_DIR) == 0o700
    database = Path(settings.DATABASES["default"]["NAME"])
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        assert mode(database) == 0o600


def test_a_fresh_var_is_created_private_and_so_is_every_file_written_in_it(tmp_path):
    var = tmp_path / "var"
    old_umask = os.umask(0o022)
    try:
        secure_var_dir(var)
        (var / "db.sqlite3").write_text("")
        (var / "broker").mkdir()
        (var / "broker" / "message.msg").write_text("")
    finally:
        os.umask(old_umask)
    assert mode(var) == 0o700
    assert mode(var / "db.sqlite3") == 0o600
    assert mode(var / "broker") == 0o700
    assert mode(var / "broker" / "message.msg") == 0o600


def test_files_an_older_version_left_readable_are_tightened(tmp_path):
    var = tmp_path / "var"
    var.mkdir(mode=0o755)
    for name in ("db.sqlite3", "db.sqlite3-wal", "celerybeat-schedule"):
        (var / name).write_text("")
        (var / name).chmod(0o644)
    var.chmod(0o755)
    old_umask = os.umask(0o022)
    try:
        secure_var_dir(var)
    finally:
        os.umask(old_umask)
    assert mode(var) == 0o700
    assert {mode(var / name) for name in ("db.sqlite3", "db.sqlite3-wal", "celerybeat-schedule")} == {0o600}


def test_a_managepy_command_leaves_a_private_database(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    subprocess.run(
        ["/bin/sh", "-c", f"umask 022 && {sys.executable} manage.py migrate --noinput -v0"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    assert mode(tmp_path / "db.sqlite3") == 0o600


def test_production_refuses_the_embedded_sqlite_unless_allowed():
    refused = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=PRODUCTION, capture_output=True, text=True, check=False
    )
    assert refused.returncode != 0
    assert "ALLOW_SQLITE_IN_PRODUCTION" in refused.stderr

    allowed = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=PRODUCTION | {"ALLOW_SQLITE_IN_PRODUCTION": "1"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert allowed.returncode == 0, allowed.stderr
