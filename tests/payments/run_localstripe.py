"""``localstripe`` with its store in ``$LOCALSTRIPE_STORE`` rather than the package's fixed
``/tmp/localstripe.pickle`` (two test runs on one machine would share that one)."""

import os
import pickle
from typing import Any

from localstripe import resources, server  # type: ignore[import-untyped]

PATH = os.environ["LOCALSTRIPE_STORE"]


def load(self: Any) -> None:
    try:
        with open(PATH, "rb") as f:
            old = pickle.load(f)
    except (FileNotFoundError, EOFError):
        return
    self.clear()
    self.update(old)


def dump(self: Any) -> None:
    with open(PATH + ".tmp", "wb") as f:
        pickle.dump(self, f, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(PATH + ".tmp", PATH)


resources.Store.try_load_from_disk = load
resources.Store.dump_to_disk = dump

if __name__ == "__main__":
    server.start()
