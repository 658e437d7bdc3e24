"""Save and load a trained bundle: weights, scaler JSON and a manifest that ties them together.

Files for artifact ``<id>``: ``<id>.keras`` (native Keras format; a baseline is
``<id>.baseline.json``), ``<id>.json`` (scaler parameters) and
``<id>.manifest.json`` (config, channels, data range and hash, versions, seed,
backend, and the sha256 of the other two files). Each file is written to a
temporary name and moved into place with ``os.replace``; the manifest goes last,
so a manifest on disk means a complete artifact. Loading recomputes the hashes
and refuses any mismatch. No pickle anywhere.

:func:`bundle_to_bytes` / :func:`bundle_from_bytes` give the same files as bytes
for a storage API (Django storages, S3).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import numpy.typing as npt
import pandas as pd

from predictor.ml.arrays import DEFAULT_SYMBOL, align_markets
from predictor.ml.baselines import baseline_from_dict
from predictor.ml.config import TrainConfig
from predictor.ml.features import build_features
from predictor.ml.networks import output_width
from predictor.ml.scaling import Scaling
from predictor.ml.training import TrainedBundle

MANIFEST_FORMAT = "cryptooracle.manifest/1"


class ArtifactError(ValueError):
    """An artifact's files do not belong together or are damaged."""


@dataclass(frozen=True)
class ArtifactPaths:
    model: Path
    scaler: Path
    manifest: Path

    @classmethod
    def for_id(
        cls,
        artifact_id: str,
        weights_dir: str | Path,
        scalers_dir: str | Path | None = None,
        *,
        baseline: bool = False,
    ) -> ArtifactPaths:
        """``weights_dir/<id>.keras``, ``scalers_dir/<id>.json``, ``weights_dir/<id>.manifest.json``.

        A baseline's parameters replace the ``.keras`` file as ``<id>.baseline.json``.
        """
        if not artifact_id or any(c in artifact_id for c in "/\\") or artifact_id.startswith("."):
            raise ArtifactError(f"artifact id {artifact_id!r} is not a plain file name")
        weights = Path(weights_dir)
        scalers = Path(scalers_dir) if scalers_dir is not None else weights
        suffix = ".baseline.json" if baseline else ".keras"
        return cls(
            weights / f"{artifact_id}{suffix}",
            scalers / f"{artifact_id}.json",
            weights / f"{artifact_id}.manifest.json",
        )


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def atomic_write(path: Path, data: bytes) -> None:
    """Write to a temporary file beside ``path``, fsync, then rename over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _model_bytes(bundle: TrainedBundle) -> bytes:
    if not bundle.is_network:
        return json.dumps(bundle.model.to_dict()).encode()
    # Keras writes .keras files only to a path; go through a private temp dir.
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.keras"
        bundle.model.save(path)
        return path.read_bytes()


def _iso(ts: pd.Timestamp) -> str:
    return ts.isoformat()


def bundle_to_bytes(bundle: TrainedBundle, artifact_id: str) -> tuple[bytes, bytes, bytes]:
    """``(model, scaler, manifest)`` file contents of ``bundle``."""
    model = _model_bytes(bundle)
    scaler = json.dumps(bundle.scaling.to_dict(), indent=1).encode()
    manifest = {
        "format": MANIFEST_FORMAT,
        "id": artifact_id,
        "kind": "keras" if bundle.is_network else "baseline",
        "config": bundle.config.to_dict(),
        "channel_names": list(bundle.channel_names),
        "input_shape": [bundle.config.window, len(bundle.channel_names)],
        "data_start": _iso(bundle.data_start),
        "data_end": _iso(bundle.data_end),
        "data_hash": bundle.data_hash,
        "versions": bundle.versions,
        "backend": bundle.backend,
        "seed": bundle.seed,
        "history": list(bundle.history),
        "split": bundle.split,
        "model_sha256": sha256(model),
        "scaler_sha256": sha256(scaler),
        "created": dt.datetime.now(dt.UTC).isoformat(),
    }
    return model, scaler, json.dumps(manifest, indent=1).encode()


def save_bundle(bundle: TrainedBundle, paths: ArtifactPaths, artifact_id: str) -> dict[str, Any]:
    """Write the three files atomically (manifest last); returns the manifest."""
    model, scaler, manifest = bundle_to_bytes(bundle, artifact_id)
    atomic_write(paths.model, model)
    atomic_write(paths.scaler, scaler)
    atomic_write(paths.manifest, manifest)
    result: dict[str, Any] = json.loads(manifest)
    return result


def load_bundle(paths: ArtifactPaths) -> TrainedBundle:
    """Read and cross-check an artifact; raises :class:`ArtifactError` on any mismatch."""
    for path in (paths.manifest, paths.model, paths.scaler):
        if not path.is_file():
            raise ArtifactError(f"artifact file missing: {path}")
    return bundle_from_bytes(
        paths.model.read_bytes(), paths.scaler.read_bytes(), paths.manifest.read_bytes()
    )


def _load_keras(model: bytes) -> Any:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.keras"
        path.write_bytes(model)
        return keras.saving.load_model(path, compile=False)


def _check_model(net: Any, config: TrainConfig, channels: int) -> None:
    expected_in = (config.window, channels)
    if tuple(net.input_shape[1:]) != expected_in:
        raise ArtifactError(f"model input {tuple(net.input_shape[1:])} != manifest {expected_in}")
    expected_out = 3 if config.target == "updown" else output_width(config)
    if int(net.output_shape[-1]) != expected_out:
        raise ArtifactError(
            f"model has {net.output_shape[-1]} outputs, the config needs {expected_out}"
        )


def bundle_from_bytes(model: bytes, scaler: bytes, manifest: bytes) -> TrainedBundle:
    """Rebuild a bundle from its three files' contents, checking they belong together."""
    try:
        meta = json.loads(manifest)
        scaling = Scaling.from_dict(json.loads(scaler))
        config = TrainConfig.from_dict(meta["config"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"artifact is unreadable: {exc}") from exc
    if meta.get("format") != MANIFEST_FORMAT:
        raise ArtifactError(f"unknown manifest format {meta.get('format')!r}")
    if sha256(model) != meta["model_sha256"]:
        raise ArtifactError("model file does not match the manifest's sha256")
    if sha256(scaler) != meta["scaler_sha256"]:
        raise ArtifactError("scaler file does not match the manifest's sha256")
    channels = tuple(meta["channel_names"])
    if scaling.channel_names and scaling.channel_names != channels:
        raise ArtifactError("scaler channels differ from the manifest's feature list")
    if scaling.kind != config.scaler:
        raise ArtifactError(f"scaler is {scaling.kind!r}, the config says {config.scaler!r}")
    if config.is_network != (meta["kind"] == "keras"):
        raise ArtifactError(f"manifest kind {meta['kind']!r} does not fit arch {config.arch!r}")
    if config.is_network:
        net = _load_keras(model)
        _check_model(net, config, len(channels))
    else:
        net = baseline_from_dict(json.loads(model))
    return TrainedBundle(
        model=net,
        scaling=scaling,
        config=config,
        channel_names=channels,
        data_start=pd.Timestamp(meta["data_start"]),
        data_end=pd.Timestamp(meta["data_end"]),
        data_hash=meta["data_hash"],
        versions=dict(meta["versions"]),
        backend=meta["backend"],
        seed=int(meta["seed"]),
        history=tuple(meta["history"]),
        split=dict(meta["split"]),
    )


def latest_window(
    bundle: TrainedBundle, frames: pd.DataFrame | dict[str, pd.DataFrame]
) -> tuple[pd.Timestamp, npt.NDArray[np.float32]]:
    """The newest complete raw window ``[W, channels]`` and the time of its last candle."""
    if (
        isinstance(frames, dict)
        and len(frames) == 1
        and all(c.startswith(f"{DEFAULT_SYMBOL}:") for c in bundle.channel_names)
    ):
        # Trained on one market passed as a bare frame: its channels carry no symbol.
        frames = next(iter(frames.values()))
    elif isinstance(frames, dict) and bundle.config.markets:
        frames = {m: frames[m] for m in bundle.config.markets}
    market = align_markets(frames, bundle.config.interval)
    feats = build_features(market, bundle.config.features)
    if feats.channel_names != bundle.channel_names:
        raise ArtifactError("the data gives other feature channels than the model was trained on")
    window = feats.flat()[-bundle.config.window :]
    if window.shape[0] < bundle.config.window or not np.isfinite(window).all():
        raise ValueError("not enough complete history for one window")
    return market.index[-1], window


class Forecaster:
    """Fast single forecasts: ``predict_on_batch`` (≈4 ms on TF), never ``predict()`` (40-80 ms)."""

    def __init__(self, bundle: TrainedBundle) -> None:
        self.bundle = bundle

    def warm_up(self) -> None:
        """Trace the model once so the first real forecast is not the slow one."""
        shape = (1, self.bundle.config.window, len(self.bundle.channel_names))
        self.bundle.predict(np.ones(shape, dtype=np.float32))

    def forecast(self, window: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
        """One raw window ``[W, C]`` → outputs in target units (``[outputs]``)."""
        out: npt.NDArray[np.float64] = self.bundle.predict(
            np.asarray(window, dtype=np.float32)[None]
        )
        return np.asarray(out[0], dtype=np.float64)
