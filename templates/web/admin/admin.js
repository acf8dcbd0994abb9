// The admin's small script. Every page works without it; it keeps numbers live while a send or
// an import runs, and shows the Markdown preview beside the issue editor.
(function () {
  function set(id, value) {
    var el = document.getElementById(id);
    if (el) el.textContent = value;
  }

  // Polls `data-poll` every two seconds while `running(state)`; `render` updates the page and
  // answers the state. A change of state (`data-state`) reloads the page, whose buttons and
  // report change with it.
  function follow(root, render, running) {
    var url = root.getAttribute("data-poll");
    var shown = root.getAttribute("data-state");
    function poll() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (s) {
          if (!s) return setTimeout(poll, 5000);
          var state = render(s);
          if (state !== shown) {
            window.location.reload();
          } else if (running(state)) {
            setTimeout(poll, 2000);
          }
        })
        .catch(function () { setTimeout(poll, 5000); });
    }
    setTimeout(poll, 2000);
  }

  function progress(percent) {
    var bar = document.getElementById("bar");
    if (bar) bar.value = percent;
    set("percent", percent + "%");
  }

  var send = document.getElementById("send");
  if (send) {
    follow(send, function (s) {
      Object.keys(s.progress).forEach(function (k) { set("n-" + k, s.progress[k]); });
      progress(s.percent);
      set("rate", s.rate_per_minute);
      set("eta", s.eta_secs === null ? "—" : Math.ceil(s.eta_secs / 60) + " min");
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
      return s.paused ? "paused" : s.state;
    }, function (state) { return state === "sending" || state === "paused"; });
  }

  var job = document.getElementById("import");
  if (job) {
    follow(job, function (s) {
      ["rows_read", "added_active", "added_pending", "added_inactive", "duplicates", "invalid", "suppressed"]
        .forEach(function (k) { set("n-" + k, s.job[k]); });
      progress(s.percent);
      return s.job.state;
    }, function (state) { return state === "loading" || state === "queued" || state === "running"; });
  }

  // The issue editor's preview follows the fields, half a second after the last keystroke.
  var preview = document.getElementById("live-preview");
  var editor = document.getElementById("issue-form");
  if (preview && editor) {
    var timer = null;
    var asked = 0;
    var render = function () {
      var mine = ++asked;
      var fields = new URLSearchParams(new FormData(editor));
      fetch(preview.getAttribute("data-render"), {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body: fields.toString()
      })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          // The server's sanitised rendering; an older answer never replaces a newer one.
          if (html !== null && mine === asked) preview.innerHTML = html;
        })
        .catch(function () {});
    };
    editor.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(render, 500);
    });
  }
})();
