"""The embedded broker: kombu's filesystem transport, with each message written atomically.

Plain kombu, no Django: the benchmark's bare-Celery floor uses it too.

kombu's own ``_put`` creates the message file and then writes into it, so a consumer polling
the folder can move and read the file while it is still empty; the JSON error that follows
stops the worker's consumer and the message is lost. Writing to a temporary name and renaming
makes a message appear whole or not at all.
"""

import os
import uuid
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
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
