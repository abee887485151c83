"""The shop's kombu transports (core/broker.py), on the broker the suite runs with."""

import uuid

import pytest
import redis
from django.conf import settings
from kombu import Connection

from core.broker import RedisTransport, broker_transport

on_redis = pytest.mark.skipif(
    not settings.CELERY_BROKER_URL.startswith("redis://"), reason="the Redis transport runs against Redis"
)


def test_each_broker_url_gets_the_transport_with_its_fix():
    assert broker_transport("filesystem:///var/broker") == "core.broker:Transport"
    assert broker_transport("redis://127.0.0.1:6379/0") == "core.broker:RedisTransport"
    assert broker_transport("amqp://guest:guest@127.0.0.1//") is None  # kombu's own
    assert broker_transport(settings.CELERY_BROKER_URL) == settings.CELERY_BROKER_TRANSPORT


@pytest.fixture
def built_clients(monkeypatch):
    """Every ``redis.Redis`` built from now on."""
    built: list[redis.Redis] = []
    construct = redis.Redis.__init__

    def counting(self, *args, **kwargs):
        built.append(self)
        construct(self, *args, **kwargs)

    monkeypatch.setattr(redis.Redis, "__init__", counting)
    return built


@on_redis
def test_messages_go_out_through_one_client_and_all_arrive(built_clients):
    with Connection(settings.CELERY_BROKER_URL, transport=RedisTransport) as connection:
        queue = connection.SimpleQueue(f"test-broker-{uuid.uuid4().hex}")
        try:
            queue.put({"n": 0})
            before = len(built_clients)
            for n in range(1, 5):
                queue.put({"n": n})
            built = len(built_clients) - before
            received = [_take(queue) for _ in range(5)]
        finally:
            queue.queue.delete()
            queue.close()
    assert received == [0, 1, 2, 3, 4]
    assert built == 0  # kombu's own transport builds one per message: 4


def _take(queue) -> int:
    message = queue.get(timeout=2)
    message.ack()
    return int(message.payload["n"])


@on_redis
def test_the_client_follows_the_channel_to_its_new_pool(built_clients):
    """After a fork (or a lost connection) kombu gives the channel a new pool: the client that
    sends must be on it, not on the old one it disconnected."""
    with Connection(settings.CELERY_BROKER_URL, transport=RedisTransport) as connection:
        queue = connection.SimpleQueue(f"test-broker-{uuid.uuid4().hex}")
        try:
            queue.put({"n": 1})
            channel = queue.channel
            old_pool = channel.pool
            channel._after_fork()
            queue.put({"n": 2})
            assert channel._sender.connection_pool is channel.pool is not old_pool
            assert [_take(queue) for _ in range(2)] == [1, 2]
        finally:
            queue.queue.delete()
            queue.close()
    assert len(built_clients) >= 2
