"""Developer profile: the defaults of base, nothing more."""

from config.settings.base import *  # noqa: F403
