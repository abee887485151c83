"""A new password revokes every API token of its user, whichever way it was changed.

A signal rather than a call in each view: the password changes in the account page, the
password reset, the admin, ``manage.py changepassword`` and any code that calls
``set_password`` and saves. The old hash is read before the save; a new hash of the same
password (Django re-hashing on login after a hasher upgrade, or the same password set again)
revokes nothing.
"""

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import check_password
from django.db.models.signals import post_save, pre_save

from accounts import services

_REVOKE_FLAG = "_revoke_api_tokens"


def remember_password_change(sender: Any, instance: Any, update_fields: Any = None, **kwargs: Any) -> None:
    if instance.pk is None or (update_fields is not None and "password" not in update_fields):
        return
    old = sender._default_manager.filter(pk=instance.pk).values_list("password", flat=True).first()
    if old is None or old == instance.password:
        return
    raw = getattr(instance, "_password", None)  # set by set_password() until the save completes
    if raw is None and update_fields is not None and set(update_fields) == {"password"}:
        # check_password() re-hashing after a hasher upgrade: it clears _password and saves
        # the password alone. Every path that sets a new password keeps _password set.
        return
    if raw is not None and check_password(raw, old):
        return  # the same password again
    setattr(instance, _REVOKE_FLAG, True)


def revoke_tokens_after_password_change(sender: Any, instance: Any, **kwargs: Any) -> None:
    if getattr(instance, _REVOKE_FLAG, False):
        setattr(instance, _REVOKE_FLAG, False)
        services.user_tokens_revoke(user_id=instance.pk)


def connect() -> None:
    user_model = get_user_model()
    pre_save.connect(remember_password_change, sender=user_model, dispatch_uid="accounts.password_change")
    post_save.connect(revoke_tokens_after_password_change, sender=user_model, dispatch_uid="accounts.revoke_tokens")
