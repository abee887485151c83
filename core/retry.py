"""Retry timing shared by every saga step."""

import random

from django.conf import settings


def backoff_seconds(retries: int, *, cap: float | None = None) -> float:
    """Exponential backoff with "equal jitter": half fixed, half random, capped.

    The random half spreads retries of many sagas that failed together (a provider outage)
    so that they do not come back in one wave.
    """
    most = settings.SAGA_RETRY_MAX_SECONDS if cap is None else cap
    ceiling: float = min(most, settings.SAGA_RETRY_BASE_SECONDS * 2**retries)
    return ceiling / 2 + random.uniform(0, ceiling / 2)
