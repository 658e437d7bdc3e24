"""The sweep form: a base request, a search space written as text, and how to search it.

The space is one option a line (or separated by spaces, as ``manage.py sweep --grid``
takes them): ``units=16,32,64`` lists values, ``learning_rate=0.0001:0.01:log`` or
``window=8:64`` gives a range (random and TPE draw from it), and a list-valued option
joins its items with ``+`` (``features=returns+time,returns``). Each value is read by
the training form's field for that option, so it parses as it does there; the whole
request is then judged by :func:`predictor.services.sweeps.sweep_create`, whose errors
land on the field they name (a searched option's on the space).
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

from django import forms

from predictor.forms import DEFAULTS, MarketChoiceField, TrainForm, _choices, _when
from predictor.ml.config import FEATURE_SETS, NAME_CHOICES, REQUEST_MAXIMA, TrainConfig
from predictor.ml.intervals import CANONICAL_INTERVALS
from predictor.models import Market, SweepMethod, SweepObjective
from predictor.selectors.candles import markets_with_candles
from predictor.services.runs import RunRequest
from predictor.services.sessions import TrainingError
from predictor.services.sweep_space import MAX_TRIALS
from predictor.services.sweeps import MAX_PARALLEL, SweepRequest

CONFIG_FIELDS = frozenset(f.name for f in dataclasses.fields(TrainConfig)) - {"markets"}
SPACE_EXAMPLE = "window=8,16,32\nlearning_rate=0.0001:0.01:log"
_LINE = re.compile(r"^(?P<key>[A-Za-z_][\w-]*)=(?P<values>\S+)$")


class SpaceError(ValueError):
    """A line of the space text that does not parse; the message says which and why."""


def _read(key: str, text: str) -> Any:
    """One value of ``key``, read by the training form's field for it."""
    field = TrainForm.base_fields[key]
    raw: Any = text.split("+") if isinstance(field, forms.MultipleChoiceField) else text
    try:
        value = field.clean(raw)
    except forms.ValidationError as exc:
        raise SpaceError(f"{key}={text}: {' '.join(exc.messages)}") from exc
    if key == "xla":
        return {"on": True, "off": False}.get(value)
    if isinstance(value, list):
        return list(value)
    return value


def space_parse(text: str) -> dict[str, Any]:
    """``key=v1,v2`` and ``key=low:high[:log]`` items → the space ``sweep_create`` takes."""
    space: dict[str, Any] = {}
    items = [item for line in text.splitlines() for item in line.split("#")[0].split()]
    for item in items:
        match = _LINE.match(item)
        if match is None:
            raise SpaceError(f"{item!r}: write key=v1,v2 or key=low:high[:log]")
        key, values = match["key"].replace("-", "_"), match["values"]
        if key not in CONFIG_FIELDS or key not in TrainForm.base_fields:
            raise SpaceError(f"{key} is not a training option")
        if key in space:
            raise SpaceError(f"{key} is given twice")
        parts = values.split(":")
        if len(parts) == 1:
            space[key] = [_read(key, v) for v in values.split(",") if v != ""]
            continue
        field = TrainForm.base_fields[key]
        if not isinstance(field, forms.IntegerField | forms.FloatField):
            raise SpaceError(f"{key}={values}: only a number takes a range; list its values")
        if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "log"):
            raise SpaceError(f"{key}={values}: a range is low:high or low:high:log")
        space[key] = {
            "low": _read(key, parts[0]),
            "high": _read(key, parts[1]),
            "log": len(parts) == 3,
        }
    if not space:
        raise SpaceError("give at least one option to search over")
    return space


class SweepForm(forms.Form):
    """A sweep: the base request's main options, the space, the search and its objective."""

    markets = MarketChoiceField(
        queryset=Market.objects.none(),
        widget=forms.CheckboxSelectMultiple,
        help_text="One or more markets of one exchange.",
    )
    interval = forms.ChoiceField(choices=_choices(CANONICAL_INTERVALS), initial=DEFAULTS.interval)
    start = _when("Data from")
    end = _when("Data to")
    arch = forms.ChoiceField(choices=_choices(NAME_CHOICES["arch"]), initial=DEFAULTS.arch)
    target = forms.ChoiceField(choices=_choices(NAME_CHOICES["target"]), initial=DEFAULTS.target)
    features = forms.MultipleChoiceField(
        choices=_choices(FEATURE_SETS),
        initial=list(DEFAULTS.features),
        widget=forms.CheckboxSelectMultiple,
    )
    window = forms.IntegerField(
        max_value=REQUEST_MAXIMA["window"], min_value=1, initial=DEFAULTS.window
    )
    horizon = forms.IntegerField(
        max_value=REQUEST_MAXIMA["horizon"],
        min_value=1,
        required=False,
        help_text="Bars ahead; empty: 1 for price, 15 otherwise.",
    )
    epochs = forms.IntegerField(
        max_value=REQUEST_MAXIMA["epochs"], min_value=1, initial=DEFAULTS.epochs
    )
    val_split = forms.FloatField(
        initial=DEFAULTS.val_split,
        label="Validation split",
        help_text="Every trial is judged on it; the test split after it is left alone.",
    )
    space = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 5, "placeholder": SPACE_EXAMPLE, "class": "mono"}),
        label="Search space",
        help_text="One option a line: key=v1,v2 lists values; key=low:high or low:high:log is a "
        "range (random, tpe); features=returns+time joins a list. One value fixes an option for "
        "every trial. The space overrides the options above.",
    )
    method = forms.ChoiceField(choices=SweepMethod.choices, initial=SweepMethod.GRID)
    n_trials = forms.IntegerField(
        min_value=1,
        max_value=MAX_TRIALS,
        required=False,
        label="Trials",
        help_text="random and tpe: how many (a grid runs every combination).",
    )
    parallel = forms.IntegerField(
        min_value=1, max_value=MAX_PARALLEL, initial=1, help_text="tpe: trials in flight at once."
    )
    objective = forms.ChoiceField(choices=SweepObjective.choices, initial=SweepObjective.VAL_LOSS)
    sweep_seed = forms.IntegerField(
        min_value=0, max_value=2**31 - 1, initial=0, label="Seed of the draws"
    )
    name = forms.CharField(max_length=120, required=False)

    GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
        ("Data", ("markets", "interval", "start", "end")),
        ("Base model", ("arch", "target", "features", "window", "horizon", "epochs", "val_split")),
        ("Search", ("space", "method", "n_trials", "parallel", "objective", "sweep_seed", "name")),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["markets"].queryset = markets_with_candles()  # type: ignore[attr-defined]
        self.request: SweepRequest | None = None  # set by clean() once the form parses

    def groups(self) -> list[tuple[str, list[forms.BoundField]]]:
        return [(legend, [self[name] for name in names]) for legend, names in self.GROUPS]

    def clean_space(self) -> dict[str, Any]:
        try:
            return space_parse(self.cleaned_data["space"])
        except SpaceError as exc:
            raise forms.ValidationError(str(exc), code="invalid") from exc

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data  # sweep_create judges only values that parsed
        markets = list(data["markets"])
        exchanges = {m.exchange for m in markets}
        if len(exchanges) > 1:
            self.add_error("markets", "pick markets of one exchange")
            return data
        if data.get("start") and data.get("end") and data["start"] >= data["end"]:
            self.add_error("end", "must be after the start")
            return data
        space = data["space"]
        if data["method"] == SweepMethod.GRID:
            size = math.prod(len(a) for a in space.values() if isinstance(a, list))
            if size > MAX_TRIALS:  # refused before anything expands it
                self.add_error("space", f"the grid has {size} combinations; at most {MAX_TRIALS}")
                return data
        given = {
            name: data[name]
            for name in ("interval", "arch", "target", "window", "horizon", "epochs", "val_split")
            if data.get(name) is not None
        }
        given["features"] = tuple(data["features"])
        self.request = SweepRequest(
            base=RunRequest(
                given=given,
                symbols=[m.symbol for m in markets],
                exchange=exchanges.pop(),
                start=data.get("start"),
                end=data.get("end"),
            ),
            space=space,
            method=data["method"],
            n_trials=data.get("n_trials") or 0,
            parallel=data["parallel"],
            objective=data["objective"],
            seed=data["sweep_seed"],
            name=data.get("name") or "",
        )
        return data

    def add_error_for(self, exc: TrainingError) -> None:
        """A refusal of ``sweep_create`` on the field it names: a searched option's on the
        space, the base request's on its own field, else on the form."""
        field = exc.field or ""
        if field in (self.cleaned_data.get("space") or {}):
            self.add_error("space", str(exc))
            return
        field = {"symbols": "markets", "markets": "markets", "period": "end"}.get(field, field)
        self.add_error(field if field in self.fields else None, str(exc))
