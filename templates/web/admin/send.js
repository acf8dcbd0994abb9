// Refreshes the send page's numbers every two seconds while the send runs.
(function () {
  var root = document.getElementById("send");
  if (!root) return;
  var url = root.getAttribute("data-poll");
  var shown = root.getAttribute("data-state");
  function set(id, value) {
    var el = document.getElementById(id);
    if (el) el.textContent = value;
  }
  function render(s) {
    Object.keys(s.progress).forEach(function (k) { set("n-" + k, s.progress[k]); });
    var bar = document.getElementById("bar");
    if (bar) bar.value = s.percent;
    set("percent", s.percent + "%");
    set("rate", s.rate_per_minute);
    set("eta", s.eta_secs === null ? "—" : Math.ceil(s.eta_secs / 60) + " min");
    var state = s.paused ? "paused" : s.state;
    if (state !== shown) {
      // Paused, resumed, finished or cancelled: the buttons and the summary change too.
      window.location.reload();
      return false;
    }
    var body = document.getElementById("errors");
    if (body) {
      body.textContent = "";
      s.errors.forEach(function (e) {
        var row = document.createElement("tr");
        [e.email, e.status, e.attempts, e.last_error || ""].forEach(function (v) {
          var cell = document.createElement("td");
          cell.textContent = v;
          row.appendChild(cell);
        });
        body.appendChild(row);
      });
    }
    return s.state === "sending";
  }
  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (s) { if (!s || render(s)) setTimeout(poll, 2000); })
      .catch(function () { setTimeout(poll, 5000); });
  }
  setTimeout(poll, 2000);
})();
