"""Trained models kept loaded, per session, in this process: an LRU cache of Forecasters.

Loading a bundle reads three files, checks their hashes and builds the Keras
model (tens to hundreds of milliseconds); a forecast with a loaded one takes a
few. The key includes the artifact's hash, so a session retried and trained
again is loaded afresh; its old entry is dropped.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from predictor.models import TrainingSession
from predictor.services.training import session_bundle

CACHE_SIZE = 8  # a small LSTM is ~1 MB; a process serves a handful of live models


class ForecasterCache:
    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self._items: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(session: TrainingSession) -> tuple[str, str]:
        return str(session.pk), str(session.manifest.get("model_sha256", ""))

    def get(self, session: TrainingSession) -> Any:
        """The session's warmed-up ``Forecaster``; raises ``TrainingError``/``ArtifactError``."""
        key = self.key(session)
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
                return found
        from predictor.ml.artifacts import Forecaster  # Keras loads with the first forecast

        # Loaded outside the lock: one slow load must not stall forecasts of other sessions.
        forecaster = Forecaster(session_bundle(session))
        forecaster.warm_up()
        with self._lock:
            for stale in [k for k in self._items if k[0] == key[0]]:
                del self._items[stale]
            self._items[key] = forecaster
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return forecaster

    def __contains__(self, session: TrainingSession) -> bool:
        return self.key(session) in self._items

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


forecasters = ForecasterCache()
