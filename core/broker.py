"""kombu's transports as the shop runs them: two fixes, each to one method.

Plain kombu, no Django: the benchmark's bare-Celery floor uses the embedded one too.

**The embedded broker** (``Transport``): kombu's filesystem transport, with each message written
atomically. kombu's own ``_put`` creates the message file and then writes into it, so a consumer
polling the folder can move and read the file while it is still empty; the JSON error that
follows stops the worker's consumer and the message is lost. Writing to a temporary name and
renaming makes a message appear whole or not at all.

**Redis** (``RedisTransport``): kombu's Redis transport, sending through one client per channel.
kombu builds a new ``redis.Redis`` for every message it sends, and redis-py's constructor
rebuilds its table of some 165 reply callbacks each time (redis-py issue 3624; the fix, pull
request 4124, is not released): 5.7 % of a worker's CPU under load went to that alone
(``bench/improvements.md``). A redis-py client is a thread-safe handle on the channel's
connection pool, which is what kombu's consumer already keeps one of.
"""

import os
import uuid
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem, redis
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue: str, payload: dict[str, Any], **kwargs: Any) -> None:  # type: ignore[override]
        filename = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, filename)
        partial = f"{final}.partial"  # readers match names ending in ".<queue>.msg" only
        try:
            with open(partial, "wb") as f:
                f.write(dumps(payload).encode())
            os.replace(partial, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel


class RedisChannel(redis.Channel):
    _sender: Any = None

    def _create_client(self, asynchronous: bool = False) -> Any:
        if asynchronous:
            return super()._create_client(asynchronous=True)  # type: ignore[misc]
        # ``pool`` is made anew after a fork or a lost connection: the client follows it
        if self._sender is None or self._sender.connection_pool is not self.pool:
            self._sender = super()._create_client()  # type: ignore[misc]
        return self._sender


class RedisTransport(redis.Transport):
    Channel = RedisChannel


def broker_transport(broker_url: str) -> str | None:
    """The transport for a broker URL: one of these where it has a fix, else kombu's own."""
    if broker_url.startswith("filesystem://"):
        return "core.broker:Transport"
    if broker_url.startswith("redis://"):
        return "core.broker:RedisTransport"
    return None
