"""Forms of the pages: chart ranges, session pickers and the training request.

The training form offers the fields of :class:`~predictor.ml.config.TrainConfig`
(the ``train_model`` options). They become a :class:`~predictor.services.runs.RunRequest`,
judged by the same rules as the command's and the API's (:meth:`TrainConfig.from_request`,
bounds from ``REQUEST_MAXIMA``); an error becomes an error on the field it names.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from django import forms

from predictor.ml.config import (
    FEATURE_SETS,
    MAX_FILL_LIMIT,
    NAME_CHOICES,
    REQUEST_MAXIMA,
    TrainConfig,
)
from predictor.ml.intervals import CANONICAL_INTERVALS
from predictor.models import Market, TrainingSession
from predictor.selectors.candles import markets_with_candles
from predictor.services.runs import RunRequest, run_config
from predictor.services.sessions import TrainingError

DEFAULTS = TrainConfig()
# Fields a post may leave out (clients and pages from before they existed): the config's default.
_DEFAULT_WHEN_EMPTY = frozenset({"gbm_trees", "gbm_leaves"})
CHART_INTERVALS: tuple[str, ...] = CANONICAL_INTERVALS[1 : CANONICAL_INTERVALS.index("1w") + 1]
_DATETIME_WIDGET = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


def _choices(values: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(v, v) for v in values]


def _when(label: str) -> forms.DateTimeField:
    return forms.DateTimeField(
        required=False, label=label, widget=_DATETIME_WIDGET, help_text="UTC"
    )


class ChartForm(forms.Form):
    """Index page: which market, which bars, which range (GET)."""

    market = forms.TypedChoiceField(coerce=int, required=False)
    interval = forms.ChoiceField(choices=_choices(CHART_INTERVALS), required=False)
    start = _when("From")
    end = _when("To")
    style = forms.ChoiceField(
        choices=[("candles", "Candles"), ("line", "Close line")], required=False
    )

    def __init__(self, *args: Any, markets: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["market"].choices = markets  # type: ignore[attr-defined]


class SessionPickForm(forms.Form):
    """Forecast and evaluation pages: which session, and for forecasts which range (GET).

    ``sessions`` is the page's list, already read: the choice is checked against it, so
    the page runs its (annotated) session query once, not again to validate the choice.
    """

    session = forms.UUIDField(required=False)
    start = _when("From")
    end = _when("To")
    step = forms.IntegerField(min_value=1, required=False)

    def __init__(self, *args: Any, sessions: Sequence[TrainingSession] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sessions = {s.pk: s for s in sessions}

    def clean_session(self) -> TrainingSession | None:
        chosen = self.cleaned_data.get("session")
        if chosen is None:
            return None
        if chosen not in self.sessions:
            raise forms.ValidationError("no such session on this page", code="invalid_choice")
        return self.sessions[chosen]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("start"), data.get("end")
        if start and end and start >= end:
            self.add_error("end", "must be after the start")
        return data


def session_label(session: TrainingSession) -> str:
    return (
        f"{session.created:%Y-%m-%d %H:%M} · {session.arch}/{session.target} "
        f"{','.join(session.symbols)} {session.interval} · {session.get_status_display()}"
    )


class MarketChoiceField(forms.ModelMultipleChoiceField):  # type: ignore[type-arg]
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.symbol} ({obj.get_exchange_display()})"


class TrainForm(forms.Form):
    """The ``train_model`` options; ``TrainConfig`` has the last word on every value."""

    markets = MarketChoiceField(
        queryset=Market.objects.none(),
        widget=forms.CheckboxSelectMultiple,
        help_text="One or more markets of one exchange.",
    )
    interval = forms.ChoiceField(choices=_choices(CANONICAL_INTERVALS), initial=DEFAULTS.interval)
    start = _when("Data from")
    end = _when("Data to")
    evaluation = forms.BooleanField(
        required=False,
        initial=DEFAULTS.evaluation,
        label="Evaluation",
        help_text="Hold out validation and test splits (off: production, trained on all data).",
    )
    arch = forms.ChoiceField(choices=_choices(NAME_CHOICES["arch"]), initial=DEFAULTS.arch)
    target = forms.ChoiceField(choices=_choices(NAME_CHOICES["target"]), initial=DEFAULTS.target)
    features = forms.MultipleChoiceField(
        choices=_choices(FEATURE_SETS),
        initial=list(DEFAULTS.features),
        widget=forms.CheckboxSelectMultiple,
    )
    window = forms.IntegerField(
        max_value=REQUEST_MAXIMA["window"],
        min_value=1,
        initial=DEFAULTS.window,
        help_text="Bars per input.",
    )
    output_size = forms.IntegerField(
        max_value=REQUEST_MAXIMA["output_size"],
        min_value=1,
        initial=DEFAULTS.output_size,
        label="Outputs",
    )
    horizon = forms.IntegerField(
        max_value=REQUEST_MAXIMA["horizon"],
        min_value=1,
        required=False,
        help_text="Bars ahead; empty: 1 for price, 15 otherwise.",
    )
    units = forms.IntegerField(
        max_value=REQUEST_MAXIMA["units"], min_value=1, initial=DEFAULTS.units
    )
    activation = forms.ChoiceField(
        choices=_choices(NAME_CHOICES["activation"]), initial=DEFAULTS.activation
    )
    dropout = forms.FloatField(initial=DEFAULTS.dropout, help_text="A fraction in [0, 1).")
    cnn_blocks = forms.IntegerField(
        max_value=REQUEST_MAXIMA["cnn_blocks"],
        min_value=1,
        initial=DEFAULTS.cnn_blocks,
        label="CNN blocks",
    )
    batch_norm = forms.BooleanField(required=False, initial=DEFAULTS.batch_norm)
    gbm_trees = forms.IntegerField(
        required=False,
        max_value=REQUEST_MAXIMA["gbm_trees"],
        min_value=1,
        initial=DEFAULTS.gbm_trees,
        label="LightGBM trees",
        help_text="lgbm: boosting rounds (the most, with early stopping).",
    )
    gbm_leaves = forms.IntegerField(
        required=False,
        max_value=REQUEST_MAXIMA["gbm_leaves"],
        min_value=2,
        initial=DEFAULTS.gbm_leaves,
        label="LightGBM leaves",
        help_text="lgbm: leaves per tree.",
    )
    epochs = forms.IntegerField(
        max_value=REQUEST_MAXIMA["epochs"], min_value=1, initial=DEFAULTS.epochs
    )
    batch_size = forms.IntegerField(
        max_value=REQUEST_MAXIMA["batch_size"],
        min_value=1,
        initial=DEFAULTS.batch_size,
        label="Batch",
    )
    optimizer = forms.ChoiceField(
        choices=_choices(NAME_CHOICES["optimizer"]), initial=DEFAULTS.optimizer
    )
    learning_rate = forms.FloatField(
        required=False, help_text="Empty: the optimizer's default (lgbm: 0.05)."
    )
    loss = forms.ChoiceField(choices=_choices(NAME_CHOICES["loss"]), initial=DEFAULTS.loss)
    scaler = forms.ChoiceField(choices=_choices(NAME_CHOICES["scaler"]), initial=DEFAULTS.scaler)
    early_stopping = forms.IntegerField(
        max_value=REQUEST_MAXIMA["early_stopping"],
        min_value=0,
        initial=DEFAULTS.early_stopping,
        help_text="Patience in epochs (lgbm: rounds); 0: off.",
    )
    train_split = forms.FloatField(initial=DEFAULTS.train_split)
    val_split = forms.FloatField(
        initial=DEFAULTS.val_split,
        label="Validation split",
        help_text="Evaluation: the validation tail. Production: only with early stopping.",
    )
    gap = forms.IntegerField(
        max_value=REQUEST_MAXIMA["gap"],
        min_value=0,
        required=False,
        help_text="Purge gap in bars; empty: the label reach.",
    )
    max_fill = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=MAX_FILL_LIMIT,
        initial=DEFAULTS.max_fill,
        label="Max filled bars",
        help_text="Gap-filled bars a sample may read; 0 or empty: none (no invented bar is read).",
    )
    shuffle_buffer = forms.IntegerField(
        max_value=REQUEST_MAXIMA["shuffle_buffer"], min_value=0, initial=DEFAULTS.shuffle_buffer
    )
    seed = forms.IntegerField(max_value=REQUEST_MAXIMA["seed"], min_value=0, initial=DEFAULTS.seed)
    up = forms.FloatField(initial=DEFAULTS.up, help_text="updown: a rise this large means up.")
    down = forms.FloatField(
        initial=DEFAULTS.down, help_text="updown: a fall this large means down."
    )
    xla = forms.ChoiceField(
        choices=[("", "auto"), ("on", "on"), ("off", "off")],
        required=False,
        label="XLA",
        help_text="Compile the model with XLA.",
    )

    GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
        ("Data", ("markets", "interval", "start", "end", "evaluation")),
        (
            "Model",
            ("arch", "target", "features", "window", "output_size", "horizon", "units",
             "activation", "dropout", "cnn_blocks", "batch_norm", "gbm_trees", "gbm_leaves"),
        ),
        (
            "Training",
            ("epochs", "batch_size", "optimizer", "learning_rate", "loss", "scaler",
             "early_stopping", "train_split", "val_split", "gap", "max_fill", "shuffle_buffer",
             "seed", "xla"),
        ),
        ("Up/down classifier", ("up", "down")),
    )  # fmt: skip

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["markets"].queryset = markets_with_candles()  # type: ignore[attr-defined]
        self.request: RunRequest | None = None  # set by clean() once the rules accept it

    def groups(self) -> list[tuple[str, list[forms.BoundField]]]:
        return [(legend, [self[name] for name in names]) for legend, names in self.GROUPS]

    def _given(self, data: dict[str, Any]) -> dict[str, Any]:
        """The config fields as the form shows them: what the user sees is what trains.

        The one exception is the validation share: its shown default is for evaluation
        sessions, so a production request carries it only when the user changed it
        (and then it needs early stopping, as on the command line).
        """
        given: dict[str, Any] = {}
        for f in dataclasses.fields(TrainConfig):
            if f.name not in self.fields or f.name == "markets":
                continue
            if f.name == "val_split" and f.name not in self.changed_data:
                continue
            value = data[f.name]
            if value is None and f.name in _DEFAULT_WHEN_EMPTY:
                continue
            if f.name == "features":
                value = tuple(value)
            elif f.name == "xla":
                value = {"on": True, "off": False}.get(value or "")
            given[f.name] = value
        return given

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data  # the request rules only judge values that parsed
        markets = list(data["markets"])
        exchanges = {m.exchange for m in markets}
        if len(exchanges) > 1:
            self.add_error("markets", "pick markets of one exchange")
            return data
        start, end = data.get("start"), data.get("end")
        if start and end and start >= end:
            self.add_error("end", "must be after the start")
            return data
        request = RunRequest(
            given=self._given(data),
            symbols=[m.symbol for m in markets],
            exchange=exchanges.pop(),
            start=start,
            end=end,
        )
        try:
            run_config(request)  # the rules' verdict; run_start applies them again
        except TrainingError as exc:
            self.add_error_for(exc)
        else:
            self.request = request
        return data

    def add_error_for(self, exc: TrainingError) -> None:
        """A request error on the field it names, or on the form."""
        field = {"symbols": "markets", "period": "end"}.get(exc.field or "", exc.field)
        self.add_error(field if field in self.fields else None, str(exc))
