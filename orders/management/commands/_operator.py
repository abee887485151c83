"""What the operators' commands share: who acts, and exit statuses a script can test.

0: nothing wrong (nothing found, or everything asked for was done); 1: something was found
or is left (a dry run that would act, a row that stays parked, an order that needs staff);
2: bad input (``CommandError``, as Django reports it).
"""

import getpass
from argparse import ArgumentParser

from django.core.management.base import CommandError

OK, FOUND = 0, 1
BAD_INPUT = 2


def add_actor_argument(parser: ArgumentParser) -> None:
    parser.add_argument(
        "--actor",
        default=getpass.getuser(),
        help="the name the order's journal records for this action (default: the OS user)",
    )


def bad_input(message: str) -> CommandError:
    return CommandError(message, returncode=BAD_INPUT)


def error_line(error: str) -> str:
    """The last line of a traceback or message: what the admin lists as the error."""
    return (error.strip().splitlines() or ["no error recorded"])[-1]
