"""``train_model``: every flag of the original tool parsed right, bad values rejected by name."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from predictor.ml.config import TrainConfig
from predictor.models import Market, SessionMode, SessionStatus, TrainingSession
from tests.predictor.conftest import T0, store_candles

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    from io import StringIO

    out = StringIO()
    call_command("train_model", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def queued(*args: str) -> TrainingSession:
    """Create a session with --async (the message is sent on commit, which tests never reach)."""
    run(*args, "--async")
    return TrainingSession.objects.latest("created")


def test_every_original_flag_is_parsed_into_the_session(
    make_market: Callable[..., Market],
) -> None:
    make_market("ETHUSD", 50, exchange="gemini")
    session = queued(
        *("-N", "ethusd", "-V", "false", "-S", "2024-01-01", "-E", "2024-01-02T01:00"),
        *("-W", "24", "-O", "3", "-I", "H", "-F", "500", "-T", "70%", "-U", "32", "-P", "7"),
        *("-B", "64", "-D", "0.3", "-Z", "rmsprop", "-L", "mae", "-A", "relu", "-C", "robust"),
    )
    config = session.config
    assert session.mode == SessionMode.PRODUCTION  # "-V false" is false, not true
    assert session.symbols == ["ETHUSD"]
    assert session.exchange == "gemini"
    assert session.requested_start.isoformat() == "2024-01-01T00:00:00+00:00"
    assert session.requested_end.isoformat() == "2024-01-02T01:00:00+00:00"
    expected = {
        "window": 24,
        "output_size": 3,
        "interval": "1h",
        "shuffle_buffer": 500,
        "train_split": 0.7,
        "units": 32,
        "epochs": 7,
        "batch_size": 64,
        "dropout": 0.3,  # a fraction: the original's type=int rejected it
        "optimizer": "rmsprop",
        "loss": "mae",
        "activation": "relu",
        "scaler": "robust",
        "evaluation": False,
    }
    assert {k: config[k] for k in expected} == expected
    assert session.status == SessionStatus.QUEUED


def test_new_flags_are_parsed(make_market: Callable[..., Market]) -> None:
    make_market("BTCUSDT", 30)
    make_market("ETHUSDT", 30, seed=1)
    session = queued(
        *("--markets", "btcusdt,ethusdt", "--exchange", "binance", "--arch", "cnn"),
        *("--target", "logreturn", "--horizon", "4", "--features", "returns,cross,time"),
        *("--val-split", "0.15", "--gap", "6", "--seed", "7", "--early-stopping", "3"),
        *("--learning-rate", "0.002", "--cnn-blocks", "3", "--no-batch-norm", "--no-xla"),
    )
    config = session.config
    assert session.symbols == ["BTCUSDT", "ETHUSDT"]
    assert set(session.markets.values_list("symbol", flat=True)) == {"BTCUSDT", "ETHUSDT"}
    assert config["markets"] == ["BTCUSDT", "ETHUSDT"]
    assert config["features"] == ["returns", "cross", "time"]
    assert (config["arch"], config["target"], config["horizon"], config["gap"]) == (
        "cnn",
        "logreturn",
        4,
        6,
    )
    assert (config["val_split"], config["seed"], config["early_stopping"]) == (0.15, 7, 3)
    assert (config["learning_rate"], config["cnn_blocks"]) == (0.002, 3)
    assert config["batch_norm"] is False
    assert config["xla"] is False
    assert session.seed == 7


def test_updown_target_picks_the_classifier_and_its_loss(
    make_market: Callable[..., Market],
) -> None:
    make_market("BTCUSD", 30)
    session = queued("--target", "updown", "--up", "0.02", "--down", "0.01")
    assert session.config["arch"] == "mlp"
    assert session.config["loss"] == "sparse_categorical_crossentropy"
    assert (session.config["up"], session.config["down"]) == (0.02, 0.01)


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (("-V", "maybe"), "-V"),
        (("-D", "2"), "-D"),
        (("-D", "a lot"), "-D"),
        (("-W", "0"), "-W"),
        (("-W", "1.5"), "-W"),
        (("-O", "-1"), "-O"),
        (("-P", "x"), "-P"),
        (("-B", "0"), "-B"),
        (("-U", "0"), "-U"),
        (("-F", "-5"), "-F"),
        (("-T", "1.2"), "-T"),
        (("-T", "0"), "-T"),
        (("-S", "yesterday"), "-S"),
        (("-E", "2024-13-01"), "-E"),
        (("-I", "fortnightly"), "-I"),
        (("-Z", "lbfgs"), "-Z"),
        (("-L", "hinge"), "-L"),
        (("-A", "swish2"), "-A"),
        (("-C", "log"), "-C"),
        (("-X", "not-a-uuid"), "-X"),
        (("--arch", "transformer"), "--arch"),
        (("--target", "volatility"), "--target"),
        (("--features", "close,magic"), "--features"),
        (("--horizon", "0"), "--horizon"),
        (("--val-split", "1"), "--val-split"),
        (("--gap", "0", "--target", "return", "--horizon", "5"), "--gap"),
        (("--arch", "mlp", "--target", "price"), "--target"),
        (("--target", "updown", "-L", "mse"), "-L"),
        (("-C", "window", "--features", "ohlcv"), "-C"),
        (("--features", "cross"), "--features"),
        (("--up", "-0.1"), "--up"),
        (("-S", "2024-02-01", "-E", "2024-01-01"), "-S"),
        (("-N", "DOGEUSD"), "-N"),
        (("-X", "00000000-0000-0000-0000-000000000000"), "-X"),
        (("--retry", "00000000-0000-0000-0000-000000000000"), "--retry"),
    ],
)
def test_bad_values_are_rejected_naming_the_flag(
    make_market: Callable[..., Market], args: tuple[str, ...], flag: str
) -> None:
    make_market("BTCUSD", 30)
    with pytest.raises(CommandError, match=rf"(^|\W){flag}\b"):
        run(*args, "--async")
    assert not TrainingSession.objects.exists()


def test_symbol_on_two_exchanges_needs_exchange(make_market: Callable[..., Market]) -> None:
    make_market("BTCUSD", 30, exchange="gemini")
    make_market("BTCUSD", 30, exchange="bitstamp")
    with pytest.raises(CommandError, match="--exchange"):
        run("-N", "BTCUSD", "--async")
    assert queued("-N", "BTCUSD", "--exchange", "bitstamp").exchange == "bitstamp"


def test_inline_training_prints_a_summary_and_stores_the_session(
    make_market: Callable[..., Market],
) -> None:
    make_market("BTCUSD", 300)
    out = run("-W", "8", "-U", "4", "-P", "2", "-B", "32", "--no-xla", "-I", "1h")
    session = TrainingSession.objects.get()
    assert session.status == SessionStatus.SUCCEEDED
    assert f"Session {session.id} succeeded" in out
    assert "epoch 2/2" in out
    assert [h["epoch"] for h in session.history] == [1.0, 2.0]
    assert session.epoch == 2
    assert session.backend
    assert session.versions["keras"]
    assert session.data_start.timestamp() == T0
    assert session.samples["train"] > session.samples["test"] > 0
    assert f"windows: train {session.samples['train']:,}, validation" in out


def test_a_production_session_trains_on_every_window_and_says_so(
    make_market: Callable[..., Market],
) -> None:
    make_market("BTCUSD", 300)
    out = run("-V", "false", "--arch", "ridge", "-W", "8", "-I", "1h")
    session = TrainingSession.objects.get()
    assert session.status == SessionStatus.SUCCEEDED
    assert session.config["val_split"] == 0.0
    assert session.samples["validation"] == session.samples["test"] == 0
    assert "production: training on every window" in out
    assert f"trained on all {session.samples['train']:,} windows" in out


def test_a_validation_tail_in_production_needs_early_stopping(
    make_market: Callable[..., Market],
) -> None:
    make_market("BTCUSD", 30)
    with pytest.raises(
        CommandError, match=r"--val-split: a production session without early stopping"
    ):
        run("-V", "false", "--val-split", "0.2", "--async")
    assert not TrainingSession.objects.exists()
    session = queued("-V", "false", "--val-split", "0.2", "--early-stopping", "2")
    assert session.config["val_split"] == 0.2


def test_a_failing_session_exits_with_its_error(make_market: Callable[..., Market]) -> None:
    make_market("BTCUSD", 12)  # fewer candles than a window and a horizon need
    with pytest.raises(CommandError, match="failed"):
        run("-W", "30", "-U", "4", "-P", "1", "--no-xla")
    session = TrainingSession.objects.get()
    assert session.status == SessionStatus.FAILED
    assert session.error


def _scaler_file(session: TrainingSession, settings: Any) -> dict[str, Any]:
    path = Path(settings.STORAGES["scalers"]["OPTIONS"]["location"]) / f"{session.id}.json"
    result: dict[str, Any] = json.loads(path.read_text())
    return result


def test_continuing_with_x_keeps_the_scaler_and_trains_on_newer_data_only(
    make_market: Callable[..., Market], settings: Any
) -> None:
    market = make_market("BTCUSD", 300)
    run("-V", "false", "-W", "8", "-U", "4", "-P", "1", "-B", "32", "--no-xla", "-C", "standard")
    parent = TrainingSession.objects.get()
    # New candles arrive, at a different price level: a refitted scaler would differ.
    store_candles(market, 200, seed=5, start=T0 + 300 * 3600)
    run("-X", str(parent.id), "-P", "1", "--no-xla")
    child = TrainingSession.objects.exclude(pk=parent.pk).get()
    assert child.status == SessionStatus.SUCCEEDED, child.error
    assert child.parent_id == parent.id
    assert child.data_start > parent.data_end
    assert child.config["window"] == 8
    assert child.config["scaler"] == "standard"
    assert _scaler_file(child, settings) == _scaler_file(parent, settings)


def test_continuing_cannot_change_the_model_shape(make_market: Callable[..., Market]) -> None:
    make_market("BTCUSD", 300)
    run("-V", "false", "-W", "8", "-U", "4", "-P", "1", "-B", "32", "--no-xla")
    parent = TrainingSession.objects.get()
    with pytest.raises(
        CommandError,
        match=r"-W/--window-length: the continued session .* window=8; a continuation cannot",
    ):
        run("-X", str(parent.id), "-W", "16")
    with pytest.raises(CommandError, match=r"-S/--start-date"):
        run("-X", str(parent.id), "-S", "2024-01-01")


def test_cancel_a_queued_session_and_retry_it(make_market: Callable[..., Market]) -> None:
    make_market("BTCUSD", 300)
    session = queued("-W", "8", "-U", "4", "-P", "1", "--no-xla")
    out = run("--cancel", str(session.id))
    session.refresh_from_db()
    assert session.status == SessionStatus.CANCELLED
    assert "cancelled" in out
    with pytest.raises(CommandError, match="--retry"):
        run("--retry", str(TrainingSession.objects.create(
            mode="evaluation", config=session.config, arch="lstm", target="price",
            interval="1h", exchange="binance", symbols=["BTCUSD"], seed=1,
        ).id))  # fmt: skip  # a queued session cannot be retried
    out = run("--retry", str(session.id))
    session.refresh_from_db()
    assert session.status == SessionStatus.SUCCEEDED, session.error
    assert session.attempts == 1
    assert session.error == ""


def test_gap_counts_are_printed_and_max_fill_is_stored_with_the_session(
    make_market: Callable[..., Market],
) -> None:
    market = make_market("BTCUSDT", 0)
    store_candles(market, 300)
    store_candles(market, 200, start=T0 + 310 * 3600, seed=1)  # bars 300..309 are missing
    base = ("-N", "BTCUSDT", "--arch", "zero", "--target", "return", "--horizon", "2", "-W", "8")
    out = run(*base)
    session = TrainingSession.objects.latest("created")
    assert session.config["max_fill"] == 0
    assert "gaps: 10 filled bar(s) on the grid" in out
    assert "19 dropped" in out  # 10 + window 8 - 1 + horizon 2 anchors read the gap
    assert f"{session.split['train']['windows_kept']:>9} windows kept" in out
    run(*base, "--max-fill", "3")
    loose = TrainingSession.objects.latest("created")
    assert loose.config["max_fill"] == 3
    assert loose.split["gaps"]["windows_dropped"] == 19 - 6
    with pytest.raises(CommandError, match="--max-fill"):
        run(*base, "--max-fill", "-1")


def test_a_session_whose_data_is_all_gap_is_refused_with_the_counts(
    make_market: Callable[..., Market],
) -> None:
    market = make_market("BTCUSDT", 0)
    store_candles(market, 20)
    store_candles(market, 20, start=T0 + 400 * 3600, seed=1)
    with pytest.raises(
        CommandError,
        match=r"validation split: no samples of real data .* 397 read more than max_fill=0",
    ):
        run("-N", "BTCUSDT", "--arch", "zero", "--target", "return", "--horizon", "2", "-W", "16")


def test_every_config_field_has_a_flag() -> None:
    import dataclasses

    from predictor.management.training_flags import CONFIG_FLAGS

    assert set(CONFIG_FLAGS) == {f.name for f in dataclasses.fields(TrainConfig)}


def test_an_lgbm_session_trains_end_to_end_and_forecasts_from_its_artifact(
    make_market: Callable[..., Market],
) -> None:
    from predictor.services.forecasting import session_forecast

    make_market("BTCUSD", 1200)  # the chance set looks 719 bars back
    out = run(
        "--arch", "lgbm", "--target", "return", "--horizon", "3", "-W", "2", "-I", "1h",
        "--features", "returns,chance", "--gbm-trees", "20", "--gbm-leaves", "4",
        "--early-stopping", "5",
    )  # fmt: skip
    session = TrainingSession.objects.get()
    assert session.status == SessionStatus.SUCCEEDED, session.error
    assert f"Session {session.id} succeeded" in out
    assert session.config["gbm_trees"] == 20
    assert session.config["gbm_leaves"] == 4
    result = session_forecast(session)
    assert result is not None


def test_lgbm_flags_are_bounded_like_every_count(make_market: Callable[..., Market]) -> None:
    make_market("BTCUSD", 30)
    with pytest.raises(CommandError, match=r"--gbm-trees: must be at most 100,000"):
        run("--arch", "lgbm", "--target", "return", "--gbm-trees", "100001", "--async")
    with pytest.raises(CommandError, match=r"--gbm-leaves: must be a whole number >= 2"):
        run("--arch", "lgbm", "--target", "return", "--gbm-leaves", "1", "--async")
    with pytest.raises(CommandError, match=r"--target: arch lgbm cannot learn target 'price'"):
        run("--arch", "lgbm", "--target", "price", "--async")
    assert not TrainingSession.objects.exists()
