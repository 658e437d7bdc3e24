/* Draw every figure the server embedded as JSON: <div class="chart" data-figure="ID">
   reads <script type="application/json" id="ID">. Plotly.js comes from the plotly package. */
(function () {
  "use strict";
  var CONFIG = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["select2d", "lasso2d"] };

  function draw(el) {
    var source = document.getElementById(el.dataset.figure);
    if (!source || !window.Plotly) { return; }
    var figure = JSON.parse(source.textContent);
    el.dataset.drawn = "false";
    window.Plotly.newPlot(el, figure.data, figure.layout, CONFIG).then(function () {
      el.dataset.drawn = "true";
    });
  }

  function drawAll() {
    document.querySelectorAll(".chart[data-figure]").forEach(draw);
  }

  window.CryptoOracle = window.CryptoOracle || {};
  window.CryptoOracle.draw = draw;
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawAll);
  } else {
    drawAll();
  }
})();
