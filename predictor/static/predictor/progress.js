/* Live training progress: every element with data-progress-url polls that JSON
   endpoint every 2 s and updates its [data-field] parts until the session ends. */
(function () {
  "use strict";
  var PERIOD_MS = 2000;

  function text(value, digits) {
    if (value === null || value === undefined) { return "\u2014"; }
    return typeof value === "number" ? String(Number(value.toFixed(digits))) : String(value);
  }

  function set(el, field, value) {
    el.querySelectorAll('[data-field="' + field + '"]').forEach(function (node) {
      node.textContent = value;
    });
  }

  function redrawLoss(history) {
    var chart = document.getElementById("chart-loss");
    if (!chart || !window.Plotly || !chart.data || !history.length) { return; }
    var names = Object.keys(history[0]).filter(function (k) { return k !== "epoch" && k.indexOf("loss") >= 0; });
    var traces = names.map(function (name) {
      return {
        x: history.map(function (row, i) { return row.epoch || i + 1; }),
        y: history.map(function (row) { return row[name]; }),
        mode: "lines+markers", name: name.replace(/_/g, " "), type: "scatter"
      };
    });
    window.Plotly.react(chart, traces, chart.layout);
  }

  function update(el, p) {
    var status = el.querySelector('[data-field="status"]');
    if (status) { status.textContent = p.status_label; status.className = "status " + p.status; }
    var detail = el.classList.contains("status-card");
    set(el, "epochs", p.epochs ? (detail ? "epoch " : "") + p.epoch + " / " + p.epochs : "\u2014");
    set(el, "loss", text(p.loss, 5));
    set(el, "val_loss", text(p.val_loss, 5));
    set(el, "eta", p.eta_seconds === null ? "\u2014" : Math.round(p.eta_seconds) + " s");
    el.querySelectorAll('[data-field="bar"]').forEach(function (bar) {
      bar.style.width = p.percent + "%";
      bar.parentNode.setAttribute("aria-valuenow", p.percent);
    });
    if (detail) { redrawLoss(p.history || []); }
  }

  function poll(el) {
    var url = el.dataset.progressUrl;
    fetch(url, { cache: "no-store", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : Promise.reject(response.status); })
      .then(function (p) {
        update(el, p);
        if (p.active) {
          window.setTimeout(function () { poll(el); }, PERIOD_MS);
        } else if (el.dataset.reloadOnFinish) {
          window.location.reload();  // artifacts, reports and the final chart come with the page
        }
      })
      .catch(function () { window.setTimeout(function () { poll(el); }, PERIOD_MS * 2); });
  }

  function start() {
    document.querySelectorAll("[data-progress-url]").forEach(function (el) {
      window.setTimeout(function () { poll(el); }, PERIOD_MS);
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
