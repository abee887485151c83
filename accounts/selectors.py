"""Account reads: what the account page shows."""

from dataclasses import dataclass

from django.contrib.auth.models import AbstractUser

from orders.models import Order
from orders.selectors import order_count_of_customer, order_last_of_customer


@dataclass(frozen=True)
class AccountSummary:
    order_count: int
    last_order: Order | None


def account_summary(*, user: AbstractUser) -> AccountSummary:
    return AccountSummary(order_count=order_count_of_customer(user=user), last_order=order_last_of_customer(user=user))
