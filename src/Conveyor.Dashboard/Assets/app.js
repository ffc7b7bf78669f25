// Conveyor dashboard: a page per hash route, each a view of the JSON API beside this file. Plain DOM, no framework,
// no build step; data is always set as text (never as HTML), so nothing a task carries can run in the page.
(function () {
  "use strict";

  var session = null;
  var refreshTimer = null;
  var main = document.getElementById("main");
  var SVG = "http://www.w3.org/2000/svg";
  var STATES = ["pending", "scheduled", "active", "dead", "succeeded", "failed", "revoked"];

  // ---- helpers ----

  function h(tag, attrs) {
    var el = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        var v = attrs[k];
        if (v === null || v === undefined || v === false) return;
        if (k === "text") el.textContent = String(v);
        else if (k === "onclick" || k === "onchange" || k === "onsubmit" || k === "oninput") el[k] = v;
        else el.setAttribute(k, v === true ? "" : String(v));
      });
    }
    for (var i = 2; i < arguments.length; i++) append(el, arguments[i]);
    return el;
  }

  function append(el, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) { child.forEach(function (c) { append(el, c); }); return; }
    el.appendChild(typeof child === "object" ? child : document.createTextNode(String(child)));
  }

  function s(tag, attrs) {
    var el = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") el.textContent = attrs[k]; else el.setAttribute(k, attrs[k]);
    });
    return el;
  }

  function fmt(n) { return n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US"); }

  function age(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    seconds = Math.max(0, seconds);
    if (seconds < 1) return Math.round(seconds * 1000) + " ms";
    if (seconds < 90) return Math.round(seconds) + " s";
    if (seconds < 5400) return Math.round(seconds / 60) + " min";
    if (seconds < 172800) return (seconds / 3600).toFixed(1) + " h";
    return (seconds / 86400).toFixed(1) + " d";
  }

  function when(iso) {
    if (!iso) return "–";
    var t = new Date(iso);
    var delta = (Date.now() - t.getTime()) / 1000;
    var text = delta >= 0 ? age(delta) + " ago" : "in " + age(-delta);
    return h("span", { title: t.toISOString(), text: text });
  }

  function utc(iso) { return new Date(iso).toISOString().slice(0, 16).replace("T", " ") + " UTC"; }

  function badge(state) { return h("span", { "class": "badge " + state, text: state }); }

  function args(list) {
    return (list || []).map(function (a) { return a.type + ":" + a.value; }).join(" ");
  }

  function flash(text, isError) {
    var el = document.getElementById("flash");
    el.textContent = text;
    el.className = isError ? "error" : "";
    el.hidden = false;
  }

  function clearFlash() { document.getElementById("flash").hidden = true; }

  function get(path) {
    return fetch(path, { headers: { "Accept": "application/json" }, credentials: "same-origin" }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (body) {
        if (!r.ok) throw new Error(body.error || ("HTTP " + r.status));
        return body;
      });
    });
  }

  // Every change is a POST with the antiforgery token in its header.
  function post(path, body) {
    var headers = { "Content-Type": "application/json", "Accept": "application/json" };
    headers[session.antiforgery.header] = session.antiforgery.token;
    return fetch(path, { method: "POST", headers: headers, credentials: "same-origin", body: JSON.stringify(body || {}) }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (result) {
        if (!r.ok) throw new Error(result.error || ("HTTP " + r.status));
        return result;
      });
    });
  }

  function act(path, body, after) {
    clearFlash(); // the next message shown is this action's
    return post(path, body).then(function (result) {
      flash(result.message || "done", false);
      if (after) after();
    }, function (e) { flash(e.message, true); });
  }

  function can(kind) { return session && session.can[kind]; }

  function button(label, kind, onclick, danger) {
    if (!can(kind)) return null;
    return h("button", { type: "button", "class": danger ? "danger" : null, "data-action": label.toLowerCase().replace(/ /g, "-"), onclick: onclick, text: label });
  }

  function enc(x) { return encodeURIComponent(x); }

  function route() {
    var hash = location.hash.replace(/^#/, "") || "/";
    var q = hash.indexOf("?");
    var path = q >= 0 ? hash.slice(0, q) : hash;
    var params = new URLSearchParams(q >= 0 ? hash.slice(q + 1) : "");
    return { path: path, params: params };
  }

  function setActive(page) {
    Array.prototype.forEach.call(document.querySelectorAll("#nav a"), function (a) {
      a.classList.toggle("active", a.getAttribute("data-page") === page);
    });
  }

  function render(title, content) {
    main.replaceChildren(h("h1", { text: title }), content);
  }

  function failed(e) { main.replaceChildren(h("p", { "class": "error-text", text: e.message })); }

  // ---- pages ----

  function chart(series) {
    var width = 900, height = 180, pad = 24;
    var max = 1;
    series.forEach(function (p) { max = Math.max(max, p.succeeded + p.failed); });
    var svg = s("svg", { "class": "chart", viewBox: "0 0 " + width + " " + height, preserveAspectRatio: "none", role: "img", "aria-label": "finished tasks per minute" });
    var bar = (width - pad) / Math.max(1, series.length);
    series.forEach(function (p, i) {
      var x = pad + i * bar;
      var hs = (height - pad) * p.succeeded / max;
      var hf = (height - pad) * p.failed / max;
      var title = new Date(p.minute).toISOString().slice(11, 16) + " UTC: " + p.succeeded + " succeeded, " + p.failed + " failed";
      var g = s("g", {});
      g.appendChild(s("title", { text: title }));
      g.appendChild(s("rect", { "class": "succeeded", x: x + 1, y: height - pad - hs, width: Math.max(1, bar - 2), height: hs }));
      g.appendChild(s("rect", { "class": "failed", x: x + 1, y: height - pad - hs - hf, width: Math.max(1, bar - 2), height: hf }));
      svg.appendChild(g);
    });
    svg.appendChild(s("line", { "class": "axis", x1: pad, y1: height - pad, x2: width, y2: height - pad }));
    svg.appendChild(s("text", { x: 0, y: 10, text: fmt(max) }));
    svg.appendChild(s("text", { x: 0, y: height - pad, text: "0" }));
    if (series.length) {
      svg.appendChild(s("text", { x: pad, y: height - 6, text: new Date(series[0].minute).toISOString().slice(11, 16) }));
      svg.appendChild(s("text", { x: width - 40, y: height - 6, text: new Date(series[series.length - 1].minute).toISOString().slice(11, 16) }));
    }
    return svg;
  }

  function overview() {
    setActive("overview");
    return get("api/overview").then(function (data) {
      var totals = { pending: 0, scheduled: 0, active: 0, dead: 0 };
      data.queues.forEach(function (q) { Object.keys(totals).forEach(function (k) { totals[k] += q[k]; }); });
      var minute = data.throughput.length ? data.throughput[data.throughput.length - 1] : { succeeded: 0, failed: 0 };
      var processed = 0, failedHour = 0;
      data.throughput.forEach(function (p) { processed += p.succeeded + p.failed; failedHour += p.failed; });
      var oldest = null;
      data.queues.forEach(function (q) { if (q.oldestPendingSeconds !== null && (oldest === null || q.oldestPendingSeconds > oldest)) oldest = q.oldestPendingSeconds; });
      function card(label, value, id) { return h("div", { "class": "card", id: id }, h("div", { "class": "label", text: label }), h("div", { "class": "value", text: value })); }
      var content = h("div", null,
        h("div", { "class": "cards" },
          card("Pending", fmt(totals.pending), "total-pending"),
          card("Scheduled", fmt(totals.scheduled), "total-scheduled"),
          card("Active", fmt(totals.active), "total-active"),
          card("Dead letters", fmt(totals.dead), "total-dead"),
          card("Processed / min", fmt(minute.succeeded + minute.failed), "processed-minute"),
          card("Failed / min", fmt(minute.failed), "failed-minute"),
          card("Oldest pending", age(oldest), "oldest-pending"),
          card("Workers", fmt(data.workers) + " (" + fmt(data.running) + " running)", "workers")),
        h("div", { "class": "panel" },
          h("h2", { text: "Finished tasks per minute, last hour (" + fmt(processed) + " processed, " + fmt(failedHour) + " failed)" }),
          chart(data.throughput),
          h("div", { "class": "legend" }, h("span", null, h("i", { "class": "s" }), "succeeded"), h("span", null, h("i", { "class": "f" }), "failed"))),
        h("div", { "class": "panel" },
          h("h2", { text: "Queues" }),
          h("table", { id: "overview-queues" },
            h("thead", null, h("tr", null, h("th", { text: "Queue" }), ["Pending", "Scheduled", "Active", "Dead", "Succeeded (1 h)", "Failed (1 h)", "Oldest pending"].map(function (t) { return h("th", { "class": "num", text: t }); }))),
            h("tbody", null, data.queues.map(function (q) {
              return h("tr", { "data-queue": q.name },
                h("td", null, h("a", { href: "#/tasks?state=pending&queue=" + enc(q.name), text: q.name }), q.paused ? [" ", badge("paused")] : null),
                h("td", { "class": "num", text: fmt(q.pending) }), h("td", { "class": "num", text: fmt(q.scheduled) }),
                h("td", { "class": "num", text: fmt(q.active) }), h("td", { "class": "num", text: fmt(q.dead) }),
                h("td", { "class": "num", text: fmt(q.succeededLastHour) }), h("td", { "class": "num", text: fmt(q.failedLastHour) }),
                h("td", { "class": "num", text: age(q.oldestPendingSeconds) }));
            })))));
      render("Overview", content);
      // Live: the counts and the chart refresh on the configured interval while this page is shown.
      refreshTimer = setTimeout(function () { if (route().path === "/") overview().catch(function () { }); }, session.refreshSeconds * 1000);
    });
  }

  function queues() {
    setActive("queues");
    return get("api/overview").then(function (data) {
      var rows = data.queues.map(function (q) {
        var base = "api/queues/" + enc(q.name) + "/";
        return h("tr", { "data-queue": q.name },
          h("td", null, h("a", { href: "#/tasks?state=pending&queue=" + enc(q.name), text: q.name })),
          h("td", { "class": "num", text: fmt(q.pending) }),
          h("td", { "class": "num", text: fmt(q.scheduled) }),
          h("td", { "class": "num", text: fmt(q.active) }),
          h("td", { "class": "num", text: fmt(q.dead) }),
          h("td", null, q.paused ? badge("paused") : h("span", { "class": "muted", text: "running" })),
          h("td", { "class": "num", text: age(q.oldestPendingSeconds) }),
          h("td", { "class": "num", text: q.errorRate === null ? "–" : (q.errorRate * 100).toFixed(1) + " %" }),
          h("td", null,
            q.paused ? button("Resume", "pause", function () { act(base + "resume", {}, load); }) : button("Pause", "pause", function () { act(base + "pause", {}, load); }),
            " ",
            button("Purge", "delete", function () { if (confirm("Delete every pending and scheduled task of " + q.name + "?")) act(base + "purge", {}, load); }, true)));
      });
      render("Queues", h("div", { "class": "panel" }, h("table", { id: "queues" },
        h("thead", null, h("tr", null, h("th", { text: "Queue" }), h("th", { "class": "num", text: "Size" }), h("th", { "class": "num", text: "Scheduled" }),
          h("th", { "class": "num", text: "Active" }), h("th", { "class": "num", text: "Dead" }), h("th", { text: "State" }),
          h("th", { "class": "num", text: "Latency" }), h("th", { "class": "num", text: "Error rate (1 h)" }), h("th", { text: "" }))),
        h("tbody", null, rows))));
    });
  }

  // Keyset pages: the cursors of the pages before this one are kept in the hash (prev), so Back works too.
  function tasks(params) {
    setActive(params.get("state") === "dead" ? "dead" : "tasks");
    var state = params.get("state") || "pending";
    var queue = params.get("queue") || "";
    var text = params.get("q") || "";
    var after = params.get("after") || "";
    var trail = (params.get("trail") || "").split(",").filter(function (x) { return x.length; });
    var url = "api/tasks?state=" + enc(state) + "&queue=" + enc(queue) + "&q=" + enc(text) + (after ? "&after=" + enc(after) : "");
    return Promise.all([get(url), get("api/overview")]).then(function (results) {
      var page = results[0], queuesList = results[1].queues.map(function (q) { return q.name; });
      var dead = state === "dead";
      function link(changes) {
        var p = new URLSearchParams({ state: state, queue: queue, q: text });
        Object.keys(changes).forEach(function (k) { if (changes[k] === null) p.delete(k); else p.set(k, changes[k]); });
        return "#/" + (dead ? "dead" : "tasks") + "?" + p.toString();
      }
      function selected() {
        return Array.prototype.map.call(main.querySelectorAll("input.pick:checked"), function (c) { return c.value; });
      }
      function bulk(action, path) {
        var ids = selected();
        if (!ids.length) { flash("select tasks first", true); return; }
        act(path || ("api/tasks/" + action), { state: state, ids: ids }, load);
      }
      var tabs = dead ? null : h("div", { "class": "tabs", id: "state-tabs" }, STATES.filter(function (x) { return x !== "dead"; }).map(function (x) {
        return h("a", { href: "#/tasks?" + new URLSearchParams({ state: x, queue: queue, q: text }).toString(), "class": x === state ? "active" : null, "data-state": x, text: x });
      }));
      var queueSelect = h("select", { id: "queue", onchange: function () { location.hash = link({ queue: this.value, after: null, trail: null }); } },
        h("option", { value: "", text: dead ? "all queues" : (STATES.indexOf(state) >= 4 ? "all queues" : session.defaultQueue + " (default)") }),
        queuesList.map(function (name) { return h("option", { value: name, selected: name === queue, text: name }); }));
      var search = h("input", { type: "search", id: "search", placeholder: "id, name or argument text", value: text });
      var form = h("form", { onsubmit: function (e) { e.preventDefault(); location.hash = link({ q: search.value, after: null, trail: null }); } }, search, " ", h("button", { type: "submit", text: "Search" }));
      var actions = dead
        ? [button("Requeue", "retry", function () { bulk("requeue", "api/dead-letters/requeue"); }), button("Delete", "delete", function () { bulk("delete", "api/dead-letters/delete"); }, true)]
        : [state === "scheduled" || state === "dead" ? button("Retry", "retry", function () { bulk("retry"); }) : null,
           state !== "active" ? button("Delete", "delete", function () { bulk("delete"); }, true) : null,
           ["pending", "scheduled", "active"].indexOf(state) >= 0 ? button("Revoke", "revoke", function () { bulk("revoke"); }, true) : null];
      var all = h("input", { type: "checkbox", id: "pick-all", "aria-label": "select all", onchange: function () { var on = this.checked; Array.prototype.forEach.call(main.querySelectorAll("input.pick"), function (c) { c.checked = on; }); } });
      var whenLabel = state === "scheduled" ? "ETA" : dead ? "Dead-lettered" : "Since";
      var lastLabel = state === "active" ? "Worker" : (dead ? "Reason" : "Error");
      var rows = page.tasks.map(function (t) {
        var key = dead ? t.deadLetterId : t.id;
        return h("tr", { "data-id": t.id, "data-dead-letter": t.deadLetterId },
          h("td", null, h("input", { type: "checkbox", "class": "pick", value: key, "aria-label": "select " + key })),
          h("td", null, h("a", { "class": "mono", href: "#/task/" + enc(t.id), text: t.id })),
          h("td", { text: t.name }),
          h("td", { text: t.queue }),
          h("td", null, badge(t.state)),
          h("td", { "class": "mono", text: args(t.args) }),
          h("td", { "class": "num", text: t.attempts }),
          h("td", null, when(state === "scheduled" ? t.eta : t.since)),
          h("td", { "class": state === "active" ? "mono" : "error-text", text: (state === "active" ? t.worker : t.error) || "" }),
          dead ? h("td", null, button("Requeue", "retry", function () { act("api/dead-letters/requeue", { ids: [t.deadLetterId] }, load); }), " ",
            button("Delete", "delete", function () { act("api/dead-letters/delete", { ids: [t.deadLetterId] }, load); }, true)) : null);
      });
      var pager = h("div", { "class": "pager" },
        trail.length || after ? h("a", { href: link({ after: trail.length > 1 ? trail[trail.length - 2] : null, trail: trail.slice(0, -1).join(",") || null }), id: "prev", text: "← Previous" }) : null,
        after ? h("a", { href: link({ after: null, trail: null }), text: "First page" }) : null,
        page.next ? h("a", { href: link({ after: page.next, trail: trail.concat([page.next]).join(",") }), id: "next", text: "Next →" }) : h("span", { "class": "muted", text: page.tasks.length + " shown, no more" }));
      render(dead ? "Dead letters" : "Tasks",
        h("div", null, tabs,
          h("div", { "class": "toolbar" }, queueSelect, form, actions),
          h("div", { "class": "panel" }, h("table", { id: "tasks" },
            h("thead", null, h("tr", null, h("th", null, all), h("th", { text: "Id" }), h("th", { text: "Name" }), h("th", { text: "Queue" }), h("th", { text: "State" }),
              h("th", { text: "Arguments" }), h("th", { "class": "num", text: "Attempts" }), h("th", { text: whenLabel }), h("th", { text: lastLabel }), dead ? h("th", { text: "" }) : null)),
            h("tbody", null, rows.length ? rows : h("tr", null, h("td", { colspan: 10, "class": "muted", text: "no tasks" }))))),
          pager));
    });
  }

  function treeNode(node) {
    return h("li", { "class": node.current ? "current" : null },
      h("span", { "class": "node" }, h("span", { "class": "kind", text: node.kind }),
        node.kind === "group" ? h("span", { "class": "mono", text: node.id }) : h("a", { "class": "mono", href: "#/task/" + enc(node.id), text: node.id }),
        node.name ? " " + node.name : "", " ", node.state ? badge(node.state) : null),
      node.children && node.children.length ? h("ul", null, node.children.map(treeNode)) : null);
  }

  function task(id) {
    setActive("tasks");
    return get("api/task/" + enc(id)).then(function (t) {
      if (t.kind === "group") {
        render("Group " + id, h("div", { "class": "panel" }, h("h2", { text: "Members" }), h("ul", { "class": "tree", id: "tree" }, treeNode(t.tree))));
        return;
      }
      var status = t.status || (t.state ? t.state.state.toLowerCase() : "unknown");
      var kv = h("dl", { "class": "kv", id: "task-fields" },
        h("dt", { text: "Id" }), h("dd", { "class": "mono", text: t.id }),
        h("dt", { text: "Name" }), h("dd", { text: t.name }),
        h("dt", { text: "Status" }), h("dd", null, badge(status)),
        h("dt", { text: "Arguments" }), h("dd", { "class": "mono", id: "task-args", text: args(t.args) || "–" }),
        h("dt", { text: "Result" }), h("dd", { "class": "mono", id: "task-result", text: t.state && t.state.results ? args(t.state.results) || "(none)" : "–" }),
        h("dt", { text: "Error" }), h("dd", { "class": "error-text", id: "task-error", text: (t.state && t.state.error) || "–" }),
        h("dt", { text: "Progress" }), h("dd", null, t.progress ? [progressBar(t.progress.percent), " " + t.progress.percent.toFixed(0) + " % " + t.progress.message + " ", when(t.progress.at)] : "–"),
        h("dt", { text: "State stored" }), h("dd", null, t.state ? [badge(t.state.state), " created ", when(t.state.createdAt)] : "–"),
        t.signature ? [h("dt", { text: "ETA" }), h("dd", null, when(t.signature.eta)), h("dt", { text: "Retries" }), h("dd", { text: t.signature.retryCount + " (timeout " + t.signature.retryTimeout + " s)" }),
          h("dt", { text: "Priority" }), h("dd", { text: t.signature.priority })] : null);
      var messages = t.messages.length ? h("table", null,
        h("thead", null, h("tr", null, ["Queue", "State", "Attempt", "ETA", "Worker"].map(function (x) { return h("th", { text: x }); }))),
        h("tbody", null, t.messages.map(function (m) {
          return h("tr", null, h("td", { text: m.queue }), h("td", null, badge(m.state)), h("td", { text: m.attempts }), h("td", null, when(m.eta)), h("td", { "class": "mono", text: m.worker || "" }));
        }))) : h("p", { "class": "muted", text: "no message in the broker (finished, or not readable here)" });
      var state = t.messages.length ? t.messages[0].state : status;
      var actions = h("div", { "class": "toolbar" },
        ["pending", "scheduled", "active"].indexOf(state) >= 0 ? button("Revoke", "revoke", function () { act("api/tasks/revoke", { state: state, ids: [t.id] }, load); }, true) : null,
        state === "scheduled" ? button("Run now", "retry", function () { act("api/tasks/retry", { state: state, ids: [t.id] }, load); }) : null,
        ["pending", "scheduled", "succeeded", "failed", "revoked"].indexOf(state) >= 0 ? button("Delete", "delete", function () { act("api/tasks/delete", { state: state, ids: [t.id] }, load); }, true) : null);
      render("Task " + t.id, h("div", null, actions,
        h("div", { "class": "panel" }, kv),
        h("div", { "class": "panel" }, h("h2", { text: "Messages" }), messages),
        h("div", { "class": "panel" }, h("h2", { text: "Workflow" }), h("ul", { "class": "tree", id: "tree" }, treeNode(t.tree)))));
    });
  }

  function progressBar(percent) {
    var inner = h("span");
    inner.style.width = Math.max(0, Math.min(100, percent)) + "%";
    return h("span", { "class": "progress" }, inner);
  }

  function schedules() {
    setActive("schedules");
    return get("api/schedules").then(function (data) {
      var rows = data.schedules.map(function (x) {
        var base = "api/schedules/" + enc(x.name) + "/";
        return h("tr", { "data-schedule": x.name },
          h("td", { text: x.name }), h("td", { "class": "mono", text: x.spec }), h("td", { text: x.timeZone }),
          h("td", { "class": "mono", text: x.task }),
          h("td", null, x.next.map(function (n, i) { return [i ? h("br") : null, h("span", { "class": "mono", text: utc(n) }), " (", when(n), ")"]; })),
          h("td", null, x.last ? [h("span", { "class": "mono", text: utc(x.last) }), " (", when(x.last), ")"] : "never"),
          h("td", null, x.enabled ? h("span", { text: "enabled" }) : h("span", { "class": "badge paused", text: "disabled" })),
          h("td", null, button("Trigger now", "retry", function () { act(base + "trigger", {}, load); }), " ",
            x.enabled ? button("Disable", "pause", function () { act(base + "disable", {}, load); }) : button("Enable", "pause", function () { act(base + "enable", {}, load); })));
      });
      render("Periodic schedules", h("div", null,
        data.problem ? h("p", { "class": "error-text", text: data.problem }) : null,
        h("div", { "class": "panel" }, h("table", { id: "schedules" },
          h("thead", null, h("tr", null, ["Schedule", "Spec", "Time zone", "Work", "Next ticks", "Last tick", "State", ""].map(function (x) { return h("th", { text: x }); }))),
          h("tbody", null, rows.length ? rows : h("tr", null, h("td", { colspan: 8, "class": "muted", text: "no schedules (Conveyor:Schedules, or a scheduler in this process)" })))))));
    });
  }

  function workers() {
    setActive("workers");
    return get("api/workers").then(function (data) {
      var rows = data.workers.map(function (w) {
        return h("tr", { "data-worker": w.name },
          h("td", { "class": "mono", text: w.name }), h("td", { text: w.host }), h("td", { "class": "num", text: w.pid }),
          h("td", { text: w.queues.join(", ") }), h("td", { "class": "num", text: w.concurrency }),
          h("td", null, w.running.length ? w.running.map(function (id, i) { return [i ? ", " : null, h("a", { "class": "mono", href: "#/task/" + enc(id), text: id })]; }) : h("span", { "class": "muted", text: "none" })),
          h("td", null, w.paused ? badge("paused") : "–"),
          h("td", null, when(w.startedAt)), h("td", null, when(w.lastHeartbeat)));
      });
      render("Workers", h("div", { "class": "panel" }, h("table", { id: "workers" },
        h("thead", null, h("tr", null, ["Name", "Host", "Pid", "Queues", "Concurrency", "Running", "Paused", "Started", "Heartbeat"].map(function (x) { return h("th", { text: x }); }))),
        h("tbody", null, rows.length ? rows : h("tr", null, h("td", { colspan: 9, "class": "muted", text: "no worker has a current heartbeat" }))))));
    });
  }

  function load() {
    if (refreshTimer) { clearTimeout(refreshTimer); refreshTimer = null; }
    var r = route();
    var page;
    if (r.path === "/" || r.path === "") page = overview();
    else if (r.path === "/queues") page = queues();
    else if (r.path === "/tasks") page = tasks(r.params);
    else if (r.path === "/dead") { r.params.set("state", "dead"); page = tasks(r.params); }
    else if (r.path.indexOf("/task/") === 0) page = task(decodeURIComponent(r.path.slice(6)));
    else if (r.path === "/schedules") page = schedules();
    else if (r.path === "/workers") page = workers();
    else page = Promise.reject(new Error("no page " + r.path));
    return page.then(function () { document.body.setAttribute("data-loaded", r.path); }, failed);
  }

  window.addEventListener("hashchange", function () { clearFlash(); load(); });
  get("api/session").then(function (data) {
    session = data;
    document.getElementById("conn").textContent = (data.readOnly ? "read-only · " : "") + (data.broker || "") + (data.backend && data.backend !== data.broker ? " · " + data.backend : "");
    load();
  }, failed);
})();
