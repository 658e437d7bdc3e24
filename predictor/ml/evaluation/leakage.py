"""The leakage alarm: results no honest short-horizon model reaches.

An information coefficient above 0.3, or directional accuracy above 65 %, at a
horizon under a day is far beyond what published crypto forecasters achieve;
it almost always means the model saw the future (a centred window, a scaler fit
on the test data, a target shifted the wrong way).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from predictor.ml.evaluation._common import ToDict

IC_LIMIT = 0.3
ACCURACY_LIMIT = 0.65
DAY_SECONDS = 86_400
MESSAGE = "suspiciously good — check for look-ahead"


@dataclass(frozen=True, slots=True)
class LeakageAlarm(ToDict):
    flagged: bool
    reasons: tuple[str, ...]
    horizon_seconds: int
    message: str


def leakage_alarm(
    *, ic: float, rank_ic: float, directional_accuracy: float, horizon_seconds: int
) -> LeakageAlarm:
    """Flag IC or rank IC > 0.3, or accuracy > 65 %, when the horizon is under a day."""
    reasons: list[str] = []
    if horizon_seconds < DAY_SECONDS:
        for name, value in (("IC", ic), ("rank IC", rank_ic)):
            if math.isfinite(value) and value > IC_LIMIT:
                reasons.append(f"{name} {value:.2f} > {IC_LIMIT}")
        if math.isfinite(directional_accuracy) and directional_accuracy > ACCURACY_LIMIT:
            reasons.append(
                f"directional accuracy {directional_accuracy * 100:.1f} % > {ACCURACY_LIMIT * 100:g} %"
            )
    flagged = bool(reasons)
    message = f"{MESSAGE}: {'; '.join(reasons)}." if flagged else "No leakage alarm."
    return LeakageAlarm(flagged, tuple(reasons), horizon_seconds, message)
