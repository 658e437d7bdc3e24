"""The position engine: one bar at a time, the rules the backtest and the paper trader share.

A forecast made at the close of bar ``t`` becomes a signal (+1, -1, 0); the engine
is stepped with bar ``t + 1`` (its open, whether it is real) and that signal, and
answers with the legs traded at that open and the holdings closed there.

* ``non_overlapping``: one sleeve with all capital; a signal that arrives while
  its position is open is skipped. A holding due to exit at this open frees the
  sleeve first, so a signal ``h`` bars after the last one is taken.
* ``overlapping``: ``h`` sleeves of ``1/h`` capital; the signal of bar ``t`` goes
  to sleeve ``t mod h``, whose previous holding exits at this very open.

A signal is taken only when its own bar and the entry bar are real (no position
opens on a price a gap filled in) and ``can_hold`` says the exit will exist (a
backtest knows where its data ends; a live trader assumes it will). When a
holding exits into a new holding of the same side in the same sleeve, nothing
trades at that open: neither leg is charged and no fill is made.

The state is plain data (``to_dict``/``from_dict``), so a live trader can store it
between bars and resume exactly where it stopped.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Mode = Literal["overlapping", "non_overlapping"]
MODES: tuple[str, ...] = ("non_overlapping", "overlapping")


@dataclass(frozen=True, slots=True)
class EngineConfig:
    horizon: int
    fee: float
    slippage: float
    mode: Mode

    def __post_init__(self) -> None:
        if self.horizon < 1:
            raise ValueError("horizon must be at least one bar")
        if not (0 <= self.fee < 1 and 0 <= self.slippage < 1):
            raise ValueError("fee and slippage are fractions in [0, 1)")
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}")

    @property
    def leg_factor(self) -> float:
        """What one traded leg leaves of the position's value."""
        return (1.0 - self.fee) * (1.0 - self.slippage)

    @property
    def sleeves(self) -> int:
        return self.horizon if self.mode == "overlapping" else 1

    @property
    def weight(self) -> float:
        return 1.0 / self.horizon if self.mode == "overlapping" else 1.0


@dataclass(slots=True)
class Holding:
    """An open position in one sleeve; times are whatever the caller passes (unix seconds)."""

    sleeve: int
    side: int  # +1 long, -1 short
    weight: float
    signal_index: int
    entry_index: int
    exit_index: int  # the bar at whose open it is due to exit
    entry_time: int
    entry_price: float
    entry_traded: bool  # False: it continues the sleeve's previous holding, no leg paid


@dataclass(frozen=True, slots=True)
class Fill:
    """One traded leg at a bar's open; ``cost`` is the fraction of the leg's value paid."""

    sleeve: int
    side: int
    leg: Literal["entry", "exit"]
    index: int
    time: int
    price: float
    weight: float
    cost: float


@dataclass(frozen=True, slots=True)
class ClosedHolding:
    """A holding that reached its exit: the row of the trade list."""

    sleeve: int
    side: int
    weight: float
    signal_index: int
    entry_index: int
    exit_index: int
    entry_time: int
    exit_time: int
    entry_price: float
    exit_price: float
    entry_traded: bool
    exit_traded: bool
    gross_return: float
    growth: float  # the holding's value at exit over its value before entry, after costs
    cost: float  # fraction of the holding's value paid at its traded legs

    @property
    def net_return(self) -> float:
        return self.growth - 1.0


@dataclass(frozen=True, slots=True)
class Step:
    """What one bar did."""

    index: int
    taken: bool  # the signal opened or continued a holding
    fills: tuple[Fill, ...]
    opened: tuple[Holding, ...]
    closed: tuple[ClosedHolding, ...]


@dataclass(slots=True)
class EngineState:
    """Open holdings by sleeve and the last bar stepped (-1 before the first)."""

    last_index: int = -1
    holdings: dict[int, Holding] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "last_index": self.last_index,
            "holdings": [asdict(h) for h in sorted(self.holdings.values(), key=_by_sleeve)],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EngineState:
        holdings = [Holding(**h) for h in data.get("holdings", [])]
        return cls(int(data.get("last_index", -1)), {h.sleeve: h for h in holdings})


def _by_sleeve(holding: Holding) -> int:
    return holding.sleeve


class PositionEngine:
    """Steps bars in increasing index order; bars where nothing can happen may be skipped."""

    def __init__(self, config: EngineConfig, state: EngineState | None = None) -> None:
        self.config = config
        self.state = state if state is not None else EngineState()
        self._leg = config.leg_factor

    def next_exit(self) -> int | None:
        """The earliest bar an open holding is due to exit at, or None when flat."""
        exits = [h.exit_index for h in self.state.holdings.values()]
        return min(exits) if exits else None

    def step(
        self,
        index: int,
        open_price: float,
        *,
        real: bool = True,
        signal: int = 0,
        signal_real: bool = True,
        can_hold: bool = True,
        time: int | None = None,
    ) -> Step:
        """Bar ``index`` opens at ``open_price``; ``signal`` was made at the close of ``index - 1``.

        ``real``/``signal_real``: whether this bar and the signal's bar are real
        candles. ``time`` (default: the index) is recorded on fills and holdings.
        """
        state, config = self.state, self.config
        if index <= state.last_index:
            raise ValueError(f"bar {index} was already stepped (last {state.last_index})")
        due = self.next_exit()
        if due is not None and due < index:
            raise ValueError(f"bar {due} has a due exit and was skipped")
        when = index if time is None else int(time)
        side = 1 if signal > 0 else -1 if signal < 0 else 0
        active = side != 0 and real and signal_real and can_hold
        sleeve = (index - 1) % config.horizon if config.mode == "overlapping" else 0
        fills: list[Fill] = []
        closed: list[ClosedHolding] = []
        for holding in sorted(state.holdings.values(), key=_by_sleeve):
            if holding.exit_index != index:
                continue
            continues = active and holding.sleeve == sleeve and holding.side == side
            closed.append(self._close(holding, index, when, open_price, not continues, fills))
            del state.holdings[holding.sleeve]
        opened: tuple[Holding, ...] = ()
        taken = active and sleeve not in state.holdings
        if taken:
            continued = any(c.sleeve == sleeve and not c.exit_traded for c in closed)
            holding = Holding(
                sleeve=sleeve,
                side=side,
                weight=config.weight,
                signal_index=index - 1,
                entry_index=index,
                exit_index=index + config.horizon,
                entry_time=when,
                entry_price=float(open_price),
                entry_traded=not continued,
            )
            state.holdings[sleeve] = holding
            opened = (holding,)
            if holding.entry_traded:
                fills.append(self._fill(holding, "entry", index, when, open_price))
        state.last_index = index
        return Step(index, taken, tuple(fills), opened, tuple(closed))

    def _fill(
        self, holding: Holding, leg: Literal["entry", "exit"], index: int, time: int, price: float
    ) -> Fill:
        return Fill(
            holding.sleeve,
            holding.side,
            leg,
            index,
            time,
            float(price),
            holding.weight,
            1.0 - self._leg,
        )

    def _close(
        self,
        holding: Holding,
        index: int,
        time: int,
        price: float,
        exit_traded: bool,
        fills: list[Fill],
    ) -> ClosedHolding:
        if exit_traded:
            fills.append(self._fill(holding, "exit", index, time, price))
        gross = holding.side * (float(price) / holding.entry_price - 1.0)
        entry_cost = self._leg if holding.entry_traded else 1.0
        exit_cost = self._leg if exit_traded else 1.0
        factor = max((1.0 + gross) * entry_cost * exit_cost, 0.0)  # a sleeve can lose it all
        return ClosedHolding(
            sleeve=holding.sleeve,
            side=holding.side,
            weight=holding.weight,
            signal_index=holding.signal_index,
            entry_index=holding.entry_index,
            exit_index=index,
            entry_time=holding.entry_time,
            exit_time=time,
            entry_price=holding.entry_price,
            exit_price=float(price),
            entry_traded=holding.entry_traded,
            exit_traded=exit_traded,
            gross_return=gross,
            growth=factor,
            cost=1.0 - entry_cost * exit_cost,
        )
