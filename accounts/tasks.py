"""Password reset emails, and housekeeping of API tokens (beat, every hour)."""

from celery import shared_task

from accounts import services


@shared_task(name="accounts.purge_expired_tokens")
def purge_expired_tokens() -> int:
    return services.tokens_purge_expired()


@shared_task(name="accounts.password_reset_email")
def password_reset_email(email: str) -> None:
    services.password_reset_email_send(email=email)
