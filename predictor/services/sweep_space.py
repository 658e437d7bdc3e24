"""A sweep's search space: checked, expanded into trials, and asked of Optuna's TPE.

The space maps ``TrainConfig`` fields to either ``{"values": [...]}`` (a grid axis or
a categorical choice) or ``{"low": a, "high": b, "log": bool}`` (a range: integers
when both ends are integers). :func:`space_check` validates every trial a grid or a
random draw will run — and, for TPE, every choice and both ends of every range —
through :func:`runs.run_config`, the rules every entry shares, before anything is
stored; an error names the field and the value.

TPE keeps no Optuna storage: :func:`tpe_ask` rebuilds an in-memory study from the
finished trials (``create_trial`` + ``add_trial``) each time it is asked.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from predictor.services.runs import RunRequest, run_config
from predictor.services.sessions import TrainingError

MAX_TRIALS = 500  # one sweep; a bigger grid is a typing mistake more often than a plan
METHODS = ("grid", "random", "tpe")
# Fields a trial may not vary: they decide what is compared, not how a model learns it.
FIXED_FIELDS = frozenset({"markets", "evaluation", "interval", "target"})

Space = dict[str, dict[str, Any]]
Params = dict[str, Any]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def space_normalise(space: Mapping[str, Any]) -> Space:
    """The space in its stored shape; a malformed axis is refused by name."""
    if not space:
        raise TrainingError("give at least one parameter to search over", field="space")
    out: Space = {}
    for key, axis in space.items():
        if key in FIXED_FIELDS:
            raise TrainingError(
                f"{key} cannot vary within a sweep (trials must be comparable)", field=key
            )
        if isinstance(axis, list | tuple):
            axis = {"values": list(axis)}
        if not isinstance(axis, Mapping):
            raise TrainingError(f"{key}: expected a list of values or a low/high range", field=key)
        if "values" in axis:
            values = list(axis["values"])
            if not values:
                raise TrainingError(f"{key}: no values to try", field=key)
            if len(set(map(repr, values))) != len(values):
                raise TrainingError(f"{key}: a value is listed twice: {values}", field=key)
            out[key] = {"values": values}
            continue
        low, high, log = axis.get("low"), axis.get("high"), bool(axis.get("log", False))
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (low, high))
        if not numbers or not low < high:  # type: ignore[operator]
            raise TrainingError(f"{key}: a range needs numbers low < high, got {low!r}:{high!r}", field=key)  # fmt: skip
        if log and low <= 0:  # type: ignore[operator]
            raise TrainingError(f"{key}: a log range needs low > 0, got {low!r}", field=key)
        out[key] = {"low": low, "high": high, "log": log}
    return out


def grid_params(space: Space) -> list[Params]:
    """Every combination, in the order the axes and their values were given."""
    ranged = [key for key, axis in space.items() if "values" not in axis]
    if ranged:
        raise TrainingError(f"{ranged[0]}: a grid takes a list of values, not a range", field=ranged[0])  # fmt: skip
    keys = list(space)
    size = math.prod(len(space[k]["values"]) for k in keys)
    if size > MAX_TRIALS:  # counted before it is built: a typo must not fill the memory
        raise TrainingError(f"the grid has {size} combinations; at most {MAX_TRIALS}", field="space")  # fmt: skip
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(space[k]["values"] for k in keys))]  # fmt: skip


def _draw(axis: dict[str, Any], rng: random.Random) -> Any:
    if "values" in axis:
        return rng.choice(axis["values"])
    low, high, log = axis["low"], axis["high"], axis["log"]
    if _is_int(low) and _is_int(high):
        if log:
            return min(high, max(low, round(math.exp(rng.uniform(math.log(low), math.log(high))))))
        return rng.randint(low, high)
    if log:
        return math.exp(rng.uniform(math.log(low), math.log(high)))
    return rng.uniform(low, high)


def random_params(space: Space, n_trials: int, seed: int) -> list[Params]:
    """``n_trials`` seeded draws, each axis independently."""
    rng = random.Random(seed)
    return [{key: _draw(axis, rng) for key, axis in space.items()} for _ in range(n_trials)]


def first_params(space: Space) -> Params:
    """Every axis at its first value (a range at its low end)."""
    return {k: (a["values"][0] if "values" in a else a["low"]) for k, a in space.items()}


def _corners(space: Space) -> list[Params]:
    """One value per axis at a time (the others at their first): what TPE may propose."""
    first = first_params(space)
    found = []
    for key, axis in space.items():
        for value in axis["values"] if "values" in axis else (axis["low"], axis["high"]):
            found.append({**first, key: value})
    return found


def trial_request(base: RunRequest, params: Params) -> RunRequest:
    return replace(base, given={**base.given, **params, "evaluation": True})


def space_check(
    base: RunRequest, space: Space, method: str, n_trials: int, seed: int
) -> list[Params]:
    """The trials to store now (grid, random) or the empty list (tpe); refuses bad input."""
    if method not in METHODS:
        raise TrainingError(f"method {method!r}: choose one of {', '.join(METHODS)}", field="method")  # fmt: skip
    if base.parent is not None or base.walk_forward is not None:
        raise TrainingError("a sweep trains fresh evaluation sessions, not continuations or walk-forward runs", field="parent")  # fmt: skip
    if base.given.get("evaluation") is False:
        raise TrainingError("a sweep's trials are evaluation sessions: its objective is on validation", field="evaluation")  # fmt: skip
    if method == "grid":
        planned = grid_params(space)
    else:
        if not 1 <= n_trials <= MAX_TRIALS:
            raise TrainingError(f"trials: give 1…{MAX_TRIALS}, got {n_trials}", field="n_trials")
        planned = random_params(space, n_trials, seed) if method == "random" else _corners(space)
    if len(planned) > MAX_TRIALS:
        raise TrainingError(f"the grid has {len(planned)} combinations; at most {MAX_TRIALS}", field="space")  # fmt: skip
    for params in planned:
        try:
            config = run_config(trial_request(base, params))
        except (TypeError, ValueError) as exc:  # a raw value of the wrong type (API, JSON)
            key = next((k for k in params if k in str(exc)), next(iter(params), "space"))
            raise TrainingError(f"{key}={params.get(key)!r}: {exc}", field=key) from exc
        except TrainingError as exc:
            key = exc.field or "?"
            shown = params.get(key, base.given.get(key))
            raise TrainingError(f"{key}={shown!r}: {exc}", field=key) from exc
        if config.val_split <= 0:
            raise TrainingError("a sweep needs a validation split (val_split > 0)", field="val_split")  # fmt: skip
    return [] if method == "tpe" else planned


# --- TPE --------------------------------------------------------------------------------------


def _distributions(space: Space) -> dict[str, Any]:
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    found: dict[str, Any] = {}
    for key, axis in space.items():
        if "values" in axis:
            found[key] = CategoricalDistribution(axis["values"])
        elif _is_int(axis["low"]) and _is_int(axis["high"]):
            found[key] = IntDistribution(axis["low"], axis["high"], log=axis["log"])
        else:
            found[key] = FloatDistribution(float(axis["low"]), float(axis["high"]), log=axis["log"])
    return found


def tpe_ask(
    space: Space,
    finished: Sequence[tuple[Params, float | None]],
    *,
    minimise: bool,
    seed: int,
    n: int,
) -> list[Params]:
    """``n`` new proposals from a TPE study rebuilt from ``finished`` (params, value;
    ``None``: the trial failed). ``seed`` should change with every ask, so two asks over
    the same history (trials still in flight are not in it) do not propose the same."""
    import optuna
    from optuna.trial import TrialState, create_trial

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    distributions = _distributions(space)
    study = optuna.create_study(
        direction="minimize" if minimise else "maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
    )
    for params, value in finished:
        known = {k: v for k, v in params.items() if k in distributions}
        if set(known) != set(distributions):
            continue  # a trial from before the space changed is not evidence about it
        ok = value is not None and math.isfinite(value)
        study.add_trial(
            create_trial(
                state=TrialState.COMPLETE if ok else TrialState.FAIL,
                value=value if ok else None,
                params=known,
                distributions=distributions,
            )
        )
    asked = []
    for _ in range(n):
        trial = study.ask(distributions)
        asked.append(dict(trial.params))
    return asked
