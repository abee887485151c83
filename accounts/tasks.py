"""Housekeeping of API tokens (beat, every hour)."""

from celery import shared_task

from accounts import services


@shared_task(name="accounts.purge_expired_tokens")
def purge_expired_tokens() -> int:
    return services.tokens_purge_expired()
