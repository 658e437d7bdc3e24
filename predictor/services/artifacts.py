"""A session's trained model on the storage API: save, delete, load, and keep loaded.

Artifacts go through Django's storage API (``STORAGES["model_weights"]`` and
``["scalers"]``): ``<id>.keras`` (``<id>.baseline.json`` for a fitted baseline),
``<id>.manifest.json`` and the scaler ``<id>.json``, in local folders or on S3
(``predictor.storage``). The manifest is written last and deleted first, and it
carries the sha256 of the other two: a reader that meets a manifest with a
missing, older or newer model refuses it instead of loading a mismatched pair.

:data:`forecasters` keeps loaded models per process (an LRU cache): loading a
bundle reads three files, checks their hashes and builds the Keras model (tens
to hundreds of milliseconds); a forecast with a loaded one takes a few. Its key
includes the artifact's hash, so a session retried and trained again is loaded
afresh.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import Storage, storages

from predictor.ml.config import TrainConfig
from predictor.models import TrainingSession
from predictor.services.sessions import TrainingError

CACHE_SIZE = 8  # a small LSTM is ~1 MB; a process serves a handful of live models


def artifact_names(session: TrainingSession | Any) -> tuple[str, str, str]:
    """Storage names of (model, scaler, manifest) for a session or its id."""
    sid = str(getattr(session, "pk", session))
    baseline = False
    if isinstance(session, TrainingSession):
        baseline = not TrainConfig.from_dict(session.config).is_network
    model = f"{sid}.baseline.json" if baseline else f"{sid}.keras"
    return model, f"{sid}.json", f"{sid}.manifest.json"


def artifacts_save(session: TrainingSession, bundle: Any) -> dict[str, Any]:
    """Write the bundle's three files, the manifest last; returns the manifest."""
    from predictor.ml.artifacts import bundle_to_bytes  # Keras: imported only when needed

    model_name, scaler_name, manifest_name = artifact_names(session)
    model, scaler, manifest = bundle_to_bytes(bundle, str(session.pk))
    weights, scalers = storages["model_weights"], storages["scalers"]
    weights.save(model_name, ContentFile(model))
    scalers.save(scaler_name, ContentFile(scaler))
    weights.save(manifest_name, ContentFile(manifest))
    result: dict[str, Any] = json.loads(manifest)
    return result


def artifacts_delete(session: TrainingSession) -> None:
    """Remove the session's files, the manifest first; missing files are fine."""
    model_name, scaler_name, manifest_name = artifact_names(session)
    weights, scalers = storages["model_weights"], storages["scalers"]
    weights.delete(manifest_name)
    weights.delete(model_name)
    scalers.delete(scaler_name)


def session_bundle(session: TrainingSession) -> Any:
    """Load a succeeded session's model and scaler; refuses files that are not this session's."""
    from predictor.ml.artifacts import ArtifactError, bundle_from_bytes

    if not session.has_model:
        raise TrainingError(f"session {session.id} is {session.status}; it has no trained model")
    model_name, scaler_name, manifest_name = artifact_names(session)
    weights, scalers = storages["model_weights"], storages["scalers"]
    # Three reads, not one snapshot: a retry may delete and rewrite the files in between.
    # The manifest names the sha256 of the other two, so a pair that does not belong
    # together is refused below, never loaded.
    manifest = _read(session, weights, manifest_name)
    model = _read(session, weights, model_name)
    scaler = _read(session, scalers, scaler_name)
    bundle = bundle_from_bytes(model, scaler, manifest)
    meta = json.loads(manifest)
    if meta.get("id") != str(session.id):
        raise ArtifactError(f"manifest belongs to session {meta.get('id')}, not {session.id}")
    if bundle.data_hash != session.data_hash:
        raise ArtifactError(
            f"session {session.id}: the model was trained on other data than recorded"
        )
    if bundle.config.to_dict() != TrainConfig.from_dict(session.config).to_dict():
        raise ArtifactError(
            f"session {session.id}: the manifest's config differs from the session's"
        )
    return bundle


def _read(session: TrainingSession, storage: Storage, name: str) -> bytes:
    from predictor.ml.artifacts import ArtifactError

    try:
        with storage.open(name) as f:
            data: bytes = f.read()
    except FileNotFoundError as exc:
        # S3 names the key in its message only; a folder names the path.
        raise ArtifactError(
            f"session {session.id}: artifact file missing ({exc.filename or name})"
        ) from exc
    return data


class ForecasterCache:
    """Warmed-up ``Forecaster`` objects by session, least recently used dropped first."""

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
