"""The result backend keeps nothing for good: the saga's tasks ignore their results, and its
chord (every line reserved, then the charge) joins in the saga's step log."""

import pytest
import redis
from django.apps import apps
from django.conf import settings

from orders.models import Status
from tests.factories import ProductFactory, order_body, post_order
from tests.worker import wait_for_terminal

pytestmark = pytest.mark.saga


def kept_for_good_in_the_result_backend() -> int:
    if settings.CELERY_RESULT_BACKEND.startswith("redis"):  # a chord's size, kept as long as results
        client = redis.Redis.from_url(settings.CELERY_RESULT_BACKEND)
        return sum(1 for key in client.scan_iter() if client.ttl(key) < 0)
    tables = [apps.get_model("django_celery_results", name) for name in ("ChordCounter", "GroupResult", "TaskResult")]
    return sum(table.objects.count() for table in tables)


def test_orders_of_several_lines_leave_nothing_for_good_in_the_result_backend(saga, api):
    # given orders of three lines each, whose orchestrated saga reserves them in a chord
    products = [ProductFactory(stock=10) for _ in range(3)]

    # when they are placed and their sagas end
    ids = [post_order(api, order_body(*products)) for _ in range(3)]
    ended = wait_for_terminal(ids)

    # then they completed, and the result backend keeps nothing of them for good
    assert {order.status for order in ended.values()} == {Status.COMPLETED}
    assert kept_for_good_in_the_result_backend() == 0
