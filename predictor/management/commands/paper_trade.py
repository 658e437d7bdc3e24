"""``paper_trade``: mark a session live or stopped, step it now, or replay stored bars."""

from __future__ import annotations

import argparse
import datetime as dt
from typing import TYPE_CHECKING, Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from predictor.management.commands.evaluate import MODES, fraction
from predictor.management.commands.forecast import session_from_option
from predictor.management.flags import when

if TYPE_CHECKING:
    from predictor.services.paper import ReplayResult


def non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 0 (a return, 0.001 = 0.1 %)")
    return value


class Command(BaseCommand):
    help = (
        "Paper trading: --live on freezes θ (from the session's validation report, --theta or "
        "--theta-from), the horizon, costs and mode, and the scheduled update then trades every "
        "new closed bar; --step trades them now; --replay runs the same path over stored bars "
        "and prints the trades. No order is ever sent to an exchange."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("-T", "--training-session-id", required=True, help="the session's id")
        action = parser.add_mutually_exclusive_group(required=True)
        action.add_argument("--live", choices=("on", "off"), help="start or stop paper trading")
        action.add_argument("--step", action="store_true", help="trade the new closed bars now")
        action.add_argument("--replay", action="store_true", help="replay --start … --end")
        parser.add_argument("--theta", type=non_negative, help="θ, a return (--live on)")
        parser.add_argument(
            "--theta-from", metavar="ID", help="take θ from this evaluation session's report"
        )
        parser.add_argument("--fee", type=fraction, help="fee per side (default: θ's, or 0.001)")
        parser.add_argument("--slippage", type=fraction, help="slippage per side (default: θ's)")
        parser.add_argument("--mode", choices=sorted(MODES), help="holding mode (default: θ's)")
        parser.add_argument("--start", type=when, help="--replay: first bar (ISO, UTC)")
        parser.add_argument("--end", type=when, help="--replay: last bar (ISO, UTC)")

    def handle(self, *args: Any, **options: Any) -> None:
        session = session_from_option(options["training_session_id"])
        from predictor.services.paper import PaperError  # Keras loads with the service
        from predictor.services.paper_bars import PaperDataError

        try:
            if options["live"] == "on":
                self._start(session, options)
            elif options["live"] == "off":
                self._stop(session)
            elif options["step"]:
                self._step(session)
            else:
                self._replay(session, options)
        except (PaperError, PaperDataError) as exc:
            raise CommandError(str(exc)) from exc

    def _start(self, session: Any, options: dict[str, Any]) -> None:
        from predictor.services.paper import paper_start

        origin = options["theta_from"]
        account = paper_start(
            session,
            theta=options["theta"],
            theta_from=session_from_option(origin) if origin else None,
            fee=options["fee"],
            slippage=options["slippage"],
            mode=MODES[options["mode"]] if options["mode"] else None,
        )
        self.stdout.write(
            f"Session {session.pk} is live on paper from the bar of "
            f"{account.first_bar:%Y-%m-%d %H:%M} UTC: θ {account.theta:g} ({account.theta_source}), "
            f"horizon {account.horizon}, fee {account.fee:g}, slippage {account.slippage:g}, "
            f"{account.mode.replace('_', '-')}."
        )

    def _stop(self, session: Any) -> None:
        from predictor.services.paper import paper_stop

        paper_stop(session)
        self.stdout.write(f"Session {session.pk} stopped paper trading; open holdings stay open.")

    def _step(self, session: Any) -> None:
        from predictor.services.paper import paper_step

        result = paper_step(session)
        self.stdout.write(
            f"Session {session.pk}: {result.bars} new bar(s) traded, {result.fills} fill(s), "
            f"{result.trades} closed trade(s)."
        )

    def _replay(self, session: Any, options: dict[str, Any]) -> None:
        if options["start"] is None or options["end"] is None:
            raise CommandError("--replay needs --start and --end")
        from predictor.selectors.paper import paper_account_get
        from predictor.services.paper import PaperRules, paper_replay

        rules = None
        if paper_account_get(session) is None:
            if options["theta"] is None:
                raise CommandError("the session never went live: give --theta for the replay")
            from predictor.ml.config import TrainConfig

            rules = PaperRules(
                options["theta"],
                TrainConfig.from_dict(session.config).effective_horizon,
                options["fee"] if options["fee"] is not None else 0.001,
                options["slippage"] or 0.0,
                MODES[options["mode"] or "non-overlapping"],
            )
        self._print(paper_replay(session, options["start"], options["end"], rules))

    def _print(self, result: ReplayResult) -> None:
        write = self.stdout.write
        rules = result.rules
        write(
            f"Replay {result.start:%Y-%m-%d %H:%M} – {result.end:%Y-%m-%d %H:%M} UTC, {result.bars} "
            f"bar(s): θ {rules.theta:g}, horizon {rules.horizon}, fee {rules.fee:g}, "
            f"slippage {rules.slippage:g}, {rules.mode.replace('_', '-')}"
        )
        write(
            f"{'entry (UTC)':<16} {'exit (UTC)':<16} {'market':<10} side  "
            f"{'entry':<10} {'exit':<10}  gross %    net %"
        )
        for trade in result.trades:
            h = trade.holding
            write(
                f"{_utc(h.entry_time)} {_utc(h.exit_time)} {trade.symbol:<10} "
                f"{'long ' if h.side > 0 else 'short'} {h.entry_price:<10.6g} {h.exit_price:<10.6g} "
                f"{h.gross_return * 100:+8.4f} {h.net_return * 100:+8.4f}"
            )
        nets = [t.holding.net_return for t in result.trades]
        hit = sum(n > 0 for n in nets) / len(nets) if nets else float("nan")
        write(
            f"Total: {len(nets)} holding(s), net hit rate {hit:.1%}, "
            f"total return {result.total_return * 100:+.4f} %"
        )


def _utc(seconds: int) -> str:
    return f"{dt.datetime.fromtimestamp(seconds, dt.UTC):%Y-%m-%d %H:%M}"
