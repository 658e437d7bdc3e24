"""The pages in headless Chromium (Playwright) against a live server.

Checks that Plotly.js (served from the plotly package) draws every chart with
data, that the empty states render, that live progress updates without a
reload, and that a logged-in user can train a tiny model from the form and see
it finish. Screenshots go to ``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from predictor.models import Market, TrainingSession
from tests.predictor.pages_data import make_session, store_predictions, store_report

# Playwright's sync API runs an event loop in this thread; the ORM calls of the test
# itself are still synchronous, one at a time.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
PASSWORD = "a-long-browser-password"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM}"),
]

CHART_STATE = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(el => ({
    id: el.id,
    svg: el.querySelectorAll('.main-svg').length,
    traces: (el._fullData || []).filter(t => t.visible !== false).length,
    points: (el._fullData || []).reduce((n, t) => n + (t.x ? t.x.length : 0), 0),
    drawn: el.querySelectorAll('.main-svg .trace').length,
}))"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.errors = []  # uncaught exceptions and console errors, checked by ``visit``
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    page.on("console", lambda msg: page.errors.append(msg.text) if msg.type == "error" else None)
    yield page
    context.close()


def visit(page: Any, url: str, shot: str, *, charts: int = 0) -> list[dict[str, Any]]:
    """Open ``url``, wait for ``charts`` Plotly charts, screenshot, and return their state."""
    response = page.goto(url)
    assert response is not None, url
    assert response.status == 200, url
    if charts:
        # charts.js sets data-drawn once Plotly.newPlot's promise resolves.
        page.wait_for_function(
            f"document.querySelectorAll('.chart[data-drawn=\"true\"]').length >= {charts}"
        )
    state: list[dict[str, Any]] = page.evaluate(CHART_STATE)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{shot}.png"), full_page=True)
    assert page.errors == [], page.errors
    assert len(state) == charts, state
    for chart in state:
        assert chart["svg"] > 0, chart
        assert chart["traces"] > 0, chart
        assert chart["points"] > 0, chart
        assert chart["drawn"] > 0, chart
    return state


def test_empty_pages_render_their_empty_states(live_server: Any, page: Any) -> None:
    for path, shot, text in (
        ("/", "empty-index", "No candles yet"),
        ("/forecast/", "empty-forecast", "No production session yet"),
        ("/evaluation/", "empty-evaluation", "No evaluation session has finished yet"),
        ("/training/", "empty-training", "No training sessions yet"),
    ):
        visit(page, live_server.url + path, shot)
        assert text in page.inner_text("main")


def test_every_page_draws_its_charts_with_data(
    live_server: Any, page: Any, make_market: Callable[..., Market]
) -> None:
    market = make_market("BTCUSDT", 400)
    production = make_session(market, evaluation=False)
    store_predictions(production, market)
    evaluation = make_session(market, evaluation=True)
    store_predictions(evaluation, market)
    store_report(evaluation, market, "test", leak=True)
    store_report(evaluation, market, "validation")

    index = visit(page, live_server.url + "/", "index", charts=1)
    assert index[0]["traces"] == 3  # candles, rising and falling volume
    page.select_option("select[name=style]", "line")
    page.select_option("select[name=interval]", "4h")
    with page.expect_navigation():
        page.click("form.controls button[type=submit]")
    # The close line and both volume traces carry every 4h bar of the week (NaN bars are not drawn).
    assert visit(page, page.url, "index-line-4h", charts=1)[0]["points"] == 3 * 7 * 6

    forecast = visit(page, live_server.url + "/forecast/", "forecast", charts=1)
    assert forecast[0]["traces"] == 3  # actual, predicted, future
    assert "Newest made at" in page.inner_text("section.future")
    with page.expect_download() as download:
        page.click("text=Download CSV")
    assert download.value.suggested_filename.endswith(".csv")

    visit(page, f"{live_server.url}/evaluation/?session={evaluation.pk}", "evaluation", charts=6)
    assert page.is_visible("#report-test .alarm")
    assert "In-sample" in page.inner_text("#report-validation h2")

    visit(page, live_server.url + "/training/", "training-list")
    visit(page, f"{live_server.url}/training/{evaluation.pk}/", "training-detail", charts=1)

    page.set_viewport_size({"width": 390, "height": 844})
    visit(page, live_server.url + "/", "index-phone", charts=1)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the phone layout scrolls sideways ({width} px)"
    visit(
        page, f"{live_server.url}/evaluation/?session={evaluation.pk}", "evaluation-phone", charts=6
    )


def test_progress_updates_live_and_a_queued_session_can_be_cancelled(
    live_server: Any, page: Any, make_market: Callable[..., Market], django_user_model: Any
) -> None:
    session = make_session(make_market("BTCUSDT", 200), evaluation=True, status="queued")
    row = f"tr[data-session='{session.pk}']"
    visit(page, live_server.url + "/training/", "training-list-queued")
    assert page.inner_text(f"{row} [data-field=status]") == "Queued"
    TrainingSession.objects.filter(pk=session.pk).update(
        status="running", epoch=1, epochs=3, loss=0.25, eta_seconds=40
    )
    page.wait_for_function(
        f"document.querySelector(\"{row} [data-field=epochs]\").textContent.trim() === '1 / 3'",
        timeout=10_000,
    )
    assert page.inner_text(f"{row} [data-field=status]") == "Running"
    assert page.inner_text(f"{row} [data-field=eta]") == "40 s"
    page.screenshot(path=str(SHOTS / "training-list-running.png"), full_page=True)
    TrainingSession.objects.filter(pk=session.pk).update(status="queued", epoch=0)

    owner = django_user_model.objects.create_user("trader", password=PASSWORD)
    TrainingSession.objects.filter(pk=session.pk).update(created_by=owner)
    page.goto(f"{live_server.url}/login/?next=/training/{session.pk}/")
    page.fill("input[name=username]", "trader")
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.click("main button[type=submit]")
    with page.expect_navigation():
        page.click("button.danger")
    assert "is cancelled" in page.inner_text("ul.messages")
    assert page.inner_text(".status-card [data-field=status]") == "Cancelled"
    page.screenshot(path=str(SHOTS / "training-cancelled.png"), full_page=True)


@pytest.fixture
def inline_training(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The queued task runs in-process, inside the request that queued it (no broker).

    ``task_always_eager`` covers ``Task.apply_async``; ``session_queue`` sends the task
    by name (``send_task``), which Celery never runs eagerly, so that is routed to
    the registered task's ``apply`` too: the real task body, no worker.
    """
    import predictor.tasks  # registers the tasks with the app
    from cryptooracle.celery import app

    assert "predictor.tasks.train" in app.tasks, predictor.tasks

    def send_task(name: str, args: Any = (), kwargs: Any = None, **options: Any) -> Any:
        return app.tasks[name].apply(args=args, kwargs=kwargs or {})

    monkeypatch.setattr(app, "send_task", send_task)
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = eager


def test_log_in_submit_the_training_form_and_see_the_session_finish(
    live_server: Any,
    page: Any,
    make_market: Callable[..., Market],
    django_user_model: Any,
    inline_training: None,
) -> None:
    market = make_market("BTCUSDT", 400)
    django_user_model.objects.create_user("trader", password=PASSWORD)
    page.goto(live_server.url + "/training/new/")
    assert "/login/" in page.url  # the form needs a login
    page.fill("input[name=username]", "trader")
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.click("main button[type=submit]")
    assert page.url.endswith("/training/new/")

    page.check(f"input[name=markets][value='{market.pk}']")
    for name, value in (("window", "8"), ("units", "4"), ("epochs", "1"), ("batch_size", "32")):
        page.fill(f"input[name={name}]", value)
    page.select_option("select[name=xla]", "off")
    page.select_option("select[name=arch]", "mlp")  # mlp cannot learn price: a field error
    with page.expect_navigation():
        page.click("form.train-form button[type=submit]")
    assert "arch mlp cannot learn target" in page.inner_text(".field.has-error")
    page.screenshot(path=str(SHOTS / "training-form-error.png"), full_page=True)

    page.select_option("select[name=arch]", "lstm")
    with page.expect_navigation(timeout=300_000):
        page.click("form.train-form button[type=submit]")
    session = TrainingSession.objects.get()
    assert page.url.endswith(f"/training/{session.pk}/")
    assert session.status == "succeeded", session.error
    assert page.inner_text(".status-card [data-field=status]") == "Succeeded"
    state = visit(page, page.url, "training-finished", charts=1)
    assert state[0]["points"] == 2  # loss and val_loss of the one epoch
