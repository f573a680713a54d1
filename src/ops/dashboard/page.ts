/**
 * The dashboard's one page: plain HTML, CSS and script, no build step and nothing fetched from
 * elsewhere. It polls /api/servers every second; a click on a server shows its state and dead
 * letters, whose buttons POST to /api/dead-letters/requeue|purge.
 */
export const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>dgen-ts dashboard</title>
<style>
  body { font: 13px/1.4 system-ui, sans-serif; margin: 16px; color: #222; }
  h1 { font-size: 18px; margin: 0 0 8px; }
  table { border-collapse: collapse; }
  th, td { padding: 3px 8px; border-bottom: 1px solid #ddd; text-align: left; white-space: nowrap; }
  td.num { text-align: right; font-variant-numeric: tabular-nums; }
  tr.server { cursor: pointer; }
  tr.server:hover, tr.selected { background: #eef4ff; }
  svg { display: block; }
  #status { color: #555; margin: 6px 0; min-height: 1.4em; }
  #error { color: #b00; }
  #message { color: #060; min-height: 1.4em; }
  #details { margin-top: 16px; display: flex; gap: 24px; align-items: flex-start; }
  #details section { min-width: 320px; }
  pre { background: #f6f6f6; padding: 8px; max-height: 480px; overflow: auto; margin: 0; }
  button { font: inherit; }
</style>
</head>
<body>
<h1>dgen-ts dashboard</h1>
<div id="status">loading…</div><div id="message"></div><div id="error"></div>
<table id="servers">
  <thead><tr><th>tenant</th><th>tuid</th><th>class</th><th>depth</th><th>depth (history)</th><th>in/s</th><th>in/s (history)</th><th>lag</th><th>lock</th><th>dead</th></tr></thead>
  <tbody></tbody>
</table>
<div id="details" hidden>
  <section><h2 id="details-title"></h2><h3>dead letters</h3>
    <div><button id="requeue-all">requeue all</button> <button id="purge-all">purge all</button></div>
    <table id="letters"><thead><tr><th>id</th><th>attempts</th><th>error</th><th>message</th><th></th></tr></thead><tbody></tbody></table>
  </section>
  <section><h3>state <small id="state-version"></small></h3><pre id="state"></pre></section>
</div>
<script>
"use strict";
let selected = null;
const $ = (s) => document.querySelector(s);
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
const ago = (ms) => ms === null ? "-" : ms < 1000 ? Math.round(ms) + "ms" : ms < 60000 ? (ms / 1000).toFixed(1) + "s" : Math.floor(ms / 60000) + "m";
const idOf = (s) => JSON.stringify([s.tenant, s.tuid]);

/** A small line chart of values (nulls skipped) as inline SVG. */
function spark(values) {
  const w = 120, h = 24, vs = values.map((v) => v === null ? 0 : v);
  const max = Math.max(1, ...vs);
  const pts = vs.map((v, i) => ((vs.length < 2 ? w : (i * w) / (vs.length - 1)).toFixed(1) + "," + (h - 1 - (v / max) * (h - 2)).toFixed(1))).join(" ");
  return '<svg width="' + w + '" height="' + h + '" viewBox="0 0 ' + w + " " + h + '"><polyline fill="none" stroke="#36c" stroke-width="1.5" points="' + pts + '"/></svg>';
}

async function refresh() {
  try {
    const r = await fetch("/api/servers");
    const data = await r.json();
    $("#error").textContent = data.error || "";
    const body = $("#servers tbody");
    body.innerHTML = data.servers.map((s) => {
      const id = idOf(s);
      const lock = s.lock ? (s.lock.leaseUntil > data.at ? "held (" + ago(s.lock.leaseUntil - data.at) + ")" : "expired") : "-";
      return '<tr class="server' + (id === selected?.id ? " selected" : "") + '" data-id="' + esc(id) + '">' +
        "<td>" + esc(s.tenant.join("/")) + '</td><td class="tuid">' + esc(JSON.stringify(s.tuid)) + "</td><td>" + esc(s.className) +
        '</td><td class="num depth">' + s.queueLength + "</td><td>" + spark(s.history.map((p) => p[1])) +
        '</td><td class="num">' + (s.inRate === null ? "-" : s.inRate.toFixed(1)) + "</td><td>" + spark(s.history.map((p) => p[2])) +
        '</td><td class="num">' + ago(s.oldestAgeMs) + '</td><td class="lock">' + esc(lock) + '</td><td class="num dead">' + s.deadLetters + "</td></tr>";
    }).join("");
    $("#status").textContent = data.servers.length + " servers, sampled " + new Date(data.at).toLocaleTimeString();
  } catch (e) {
    $("#error").textContent = "cannot reach the dashboard: " + e;
  }
}

async function showDetails() {
  if (!selected) return;
  const q = "tenant=" + encodeURIComponent(selected.tenant.join("/")) + "&tuid=" + encodeURIComponent(JSON.stringify(selected.tuid));
  const [state, letters] = await Promise.all([fetch("/api/state?" + q).then((r) => r.json()), fetch("/api/dead-letters?" + q).then((r) => r.json())]);
  $("#details").hidden = false;
  $("#details-title").textContent = selected.tenant.join("/") + " " + JSON.stringify(selected.tuid);
  $("#state").textContent = state.error ? state.error + ": " + state.message : JSON.stringify(state.state, null, 2);
  $("#state-version").textContent = state.version ? "version " + state.version : "";
  $("#letters tbody").innerHTML = (letters.letters || []).map((l) =>
    '<tr class="letter" data-id="' + esc(l.id) + '"><td>' + esc(l.id) + '</td><td class="num">' + l.attempts + "</td><td>" + esc(l.error) +
    "</td><td>" + esc(JSON.stringify(l.msg)) + '</td><td><button class="requeue" data-id="' + esc(l.id) + '">requeue</button> <button class="purge" data-id="' + esc(l.id) + '">purge</button></td></tr>').join("");
}

async function write(action, ids) {
  if (action === "purge" && !confirm("Delete " + (ids ? ids.length : "all") + " dead letter(s)?")) return;
  const r = await fetch("/api/dead-letters/" + action, {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ tenant: selected.tenant.join("/"), tuid: JSON.stringify(selected.tuid), ids }),
  });
  const res = await r.json();
  // (its own line: the status line is rewritten at every refresh)
  $("#message").textContent = res.error ? res.error + ": " + res.message : action === "requeue" ? "requeued " + res.requeued : "purged " + res.purged;
  await Promise.all([showDetails(), refresh()]);
}

$("#servers tbody").addEventListener("click", (e) => {
  const tr = e.target.closest("tr.server");
  if (!tr) return;
  const [tenant, tuid] = JSON.parse(tr.dataset.id);
  selected = { id: tr.dataset.id, tenant, tuid };
  void showDetails();
  void refresh();
});
$("#letters tbody").addEventListener("click", (e) => {
  const b = e.target.closest("button");
  if (b) void write(b.className, [b.dataset.id]);
});
$("#requeue-all").addEventListener("click", () => void write("requeue", undefined));
$("#purge-all").addEventListener("click", () => void write("purge", undefined));
void refresh();
setInterval(refresh, 1000);
</script>
</body>
</html>
`;
