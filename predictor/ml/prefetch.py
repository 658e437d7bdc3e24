"""Iterate in a background thread, a few items ahead of the consumer.

For streams whose producing and consuming both spend their time outside the
GIL (gzip inflate and the pandas C parser on one side, a database COPY on the
other): parsing the next chunk of a file overlaps with storing the current one.
The producer's exception reaches the consumer as it was raised (same object,
same attributes), at the point in the stream where it happened; a consumer that
stops early stops the producer, which closes its iterator in its own thread.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
_JOIN_POLL_S = 0.05


@dataclass(frozen=True, slots=True)
class _Failed:
    error: BaseException


_END = object()


@dataclass
class _Producer(Generic[T]):
    """The thread's side: push items until the source ends, fails or is told to stop."""

    items: Iterable[T]
    out: queue.Queue[object]
    stop: threading.Event

    def run(self) -> None:
        iterator = iter(self.items)
        try:
            for item in iterator:
                self.out.put(item)  # blocks while the consumer is ``ahead`` items behind
                if self.stop.is_set():
                    return
            self.out.put(_END)
        except BaseException as exc:  # every failure must reach the consumer
            self.out.put(_Failed(exc))
        finally:
            # A generator is closed by the thread that ran it: never from the consumer's.
            close = getattr(iterator, "close", None)
            if close is not None:
                close()


def _consume(out: queue.Queue[object]) -> Iterator[T]:
    while True:
        item = out.get()
        if item is _END:
            return
        if isinstance(item, _Failed):
            raise item.error
        yield item  # type: ignore[misc]


@contextlib.contextmanager
def prefetched(
    items: Iterable[T], *, ahead: int = 2, name: str = "prefetch"
) -> Iterator[Iterator[T]]:
    """``with prefetched(reader.chunks()) as chunks: for chunk in chunks: …``

    At most ``ahead`` items wait in the queue (plus the one being produced). On
    leaving the block, whether the stream was read to its end or not, the
    producer is stopped and joined: no thread outlives the block.
    """
    if ahead < 1:
        raise ValueError(f"ahead must be at least 1, got {ahead}")
    out: queue.Queue[object] = queue.Queue(maxsize=ahead)
    stop = threading.Event()
    producer = _Producer(items, out, stop)
    thread = threading.Thread(target=producer.run, name=name, daemon=True)
    thread.start()
    try:
        yield _consume(out)
    finally:
        stop.set()
        while thread.is_alive():
            # Make room for a producer blocked on a full queue, so it sees ``stop``.
            with contextlib.suppress(queue.Empty):
                while True:
                    out.get_nowait()
            thread.join(_JOIN_POLL_S)
