"""A worker reads Celery's settings from Django's once, at start (``config/celery.py``)."""

from celery import Celery
from celery.app.defaults import DEFAULTS
from django.test import override_settings

from config.celery import keep_settings


def test_once_kept_every_celery_setting_is_answered_from_celerys_own_map():
    app = Celery("check")
    app.config_from_object("django.conf:settings", namespace="CELERY")
    before = {key: app.conf[key] for key in DEFAULTS}
    assert before["task_acks_late"] is True  # from Django's settings (CELERY_TASK_ACKS_LATE)

    keep_settings(app)

    assert {key: app.conf.changes[key] for key in before} == before
    with override_settings(CELERY_TASK_ACKS_LATE=False):
        assert app.conf.task_acks_late is True  # Django's settings are no longer asked
