"""The hand-off between a worker thread and its consumer: a bounded queue, an end-of-stream
sentinel, and a put that gives up when the other side has stopped.

A plain ``queue.put`` on a full queue blocks forever once the consumer is gone (it broke out
of its loop, or failed); polling with a timeout and re-checking a stop flag lets the worker
finish instead of hanging the process at exit.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

END = object()  # put after the last item: "no more items"


def put_until_stopped(q: queue.Queue, item: object, stop: threading.Event | None = None, *,
                      poll: float = 0.1, on_full: Callable[[], None] | None = None) -> bool:
    """Put ``item`` on the bounded queue ``q``, waiting while it is full.

    Returns False without putting once ``stop`` is set (nobody will read it); with no ``stop``
    it waits as long as it takes. ``on_full`` runs after each ``poll`` seconds the queue stayed
    full, e.g. to re-raise an error of the thread that should be draining it.
    """
    while stop is None or not stop.is_set():
        try:
            q.put(item, timeout=poll)
            return True
        except queue.Full:
            if on_full is not None:
                on_full()
    return False
