// New subscriptions and restocks per day on the demand report (Chart.js, served from here).
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("demand-chart-data").textContent);
  var canvas = document.getElementById("demand-chart");
  if (!window.Chart || !canvas) {
    return;
  }
  new window.Chart(canvas, {
    type: "bar",
    data: {
      labels: data.labels,
      datasets: [
        { label: "new subscriptions", data: data.subscriptions, backgroundColor: "#417690" },
        { label: "restocks told to Klaviyo", data: data.restocks, backgroundColor: "#e0a526" }
      ]
    },
    options: {
      animation: false,
      maintainAspectRatio: false,
      scales: { y: { beginAtZero: true, ticks: { precision: 0 } } }
    }
  });
})();
