"""The follower: a thread that takes other processes' commits in, so reads are fresh.

Every :data:`INTERVAL` it asks the persister whether it is ``behind`` (about one
``stat``) and, if so, refreshes the store: the persister's ``catch_up`` reads
what is new (under the backend's lock), then ``poll`` reports it under the
store's lock; neither lock is held while the other is waited for. Listeners
hear other processes' commits on this thread, named ``hutch-follower``. A
failure is logged (with its traceback, once) and tried again, less and less
often while it lasts; the application's own next transaction or
``refresh()`` meets the same error and raises it.
"""

from __future__ import annotations

import contextlib
import logging
import threading

from hutch.errors import ClosedError
from hutch.persister import Background, Persister, become_follower
from hutch.store import Store

log = logging.getLogger("hutch.follower")

#: How often the follower looks: others' commits reach this process within about this
#: long (plus the time to apply them); the documented bound is 50 ms.
INTERVAL = 0.01
#: The longest pause between rounds while they keep failing (a folder gone, a disk away).
LONGEST_PAUSE = 1.0


class Follower:
    """Keeps a store current with what other processes commit, until :meth:`stop`."""

    def __init__(self, store: Store, persister: Persister, where: str) -> None:
        self._store = store
        self._persister = persister
        self._stopping = threading.Event()
        self._rounds = Background("following", where, log)
        self._thread = threading.Thread(target=self._run, name="hutch-follower", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        become_follower()
        pause = INTERVAL
        while not self._stopping.wait(pause) and not self._store.closed:
            # After a failure, look less often (up to once a second) until a round goes well.
            pause = INTERVAL if self._rounds.run(self._once) else min(pause * 2, LONGEST_PAUSE)

    def _once(self) -> None:
        if self._persister.behind():
            with contextlib.suppress(ClosedError):  # closed meanwhile: the loop ends
                self._store.refresh()

    def stop(self) -> None:
        """Stop following; returns once the thread ended, or at once when called from it or
        from a thread holding the store's lock, which it may be waiting for (it ends by
        itself then, at its next look, the store being closed)."""
        self._stopping.set()
        here = threading.current_thread() is self._thread
        if not here and not self._store.lock._is_owned():  # type: ignore[attr-defined]
            self._thread.join()
