/* Live sweep progress: the element with data-sweep-url polls that JSON endpoint every
   2 s and updates the counts, each trial's row and the objective chart; when the sweep
   ends the page reloads, bringing the winner and its test report. */
(function () {
  "use strict";
  var PERIOD_MS = 2000;

  function set(root, field, value) {
    root.querySelectorAll('[data-field="' + field + '"]').forEach(function (node) {
      node.textContent = value;
    });
  }

  function number(value) {
    return value === null || value === undefined ? "\u2014" : String(Number(value.toFixed(5)));
  }

  function updateTrials(trials) {
    trials.forEach(function (t) {
      var row = document.querySelector('tr[data-trial="' + t.id + '"]');
      if (!row) { return; }  // a trial TPE asked for since the page loaded: the reload shows it
      var status = row.querySelector('[data-field="trial-status"]');
      if (status) { status.textContent = t.status_label; status.className = "status " + t.status; }
      set(row, "trial-objective", number(t.objective_value));
      set(row, "trial-error", t.error.length > 160 ? t.error.slice(0, 159) + "\u2026" : t.error);
    });
  }

  function redraw(trials) {
    var chart = document.getElementById("chart-trials");
    if (!chart || !window.Plotly || !chart.data || chart.data.length < 2) { return; }
    var scored = trials.filter(function (t) { return t.objective_value !== null; });
    var x = scored.map(function (t) { return t.trial_number; });
    var y = scored.map(function (t) { return t.objective_value; });
    window.Plotly.restyle(chart, { x: [x], y: [y] }, [0]);
  }

  function update(el, state) {
    var p = state.progress;
    var status = el.querySelector('[data-field="status"]');
    if (status) { status.textContent = state.status_label; status.className = "status " + state.status; }
    set(el, "done", String(p.done));
    set(el, "counts", Object.keys(p.counts).filter(function (k) { return p.counts[k]; })
      .map(function (k) { return p.counts[k] + " " + k; }).join(", "));
    set(el, "best", p.best_trial === null ? "\u2014" : "trial " + p.best_trial + " (" + number(p.best_value) + ")");
    el.querySelectorAll('[data-field="bar"]').forEach(function (bar) {
      bar.style.width = state.percent + "%";
      bar.parentNode.setAttribute("aria-valuenow", state.percent);
    });
    updateTrials(state.trials);
    redraw(state.trials);
  }

  function poll(el) {
    fetch(el.dataset.sweepUrl, { cache: "no-store", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : Promise.reject(response.status); })
      .then(function (state) {
        update(el, state);
        if (state.active) {
          window.setTimeout(function () { poll(el); }, PERIOD_MS);
        } else {
          window.location.reload();
        }
      })
      .catch(function () { window.setTimeout(function () { poll(el); }, PERIOD_MS * 2); });
  }

  function start() {
    document.querySelectorAll("[data-sweep-url]").forEach(function (el) {
      window.setTimeout(function () { poll(el); }, PERIOD_MS);
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
