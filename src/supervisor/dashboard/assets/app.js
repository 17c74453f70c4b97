// raft-nosql dashboard. Everything arrives over one Server-Sent Events stream
// (/events) from the supervisor; buttons POST to the control API. No library, no build.
"use strict";

const $ = (sel) => document.querySelector(sel);
const el = (tag, attrs = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k);
  return e;
};

let state = null;          // the last DashState
let timeline = [];         // TimelineEvent, oldest first
let samples = [];          // Sample, oldest first
const cards = new Map();   // node id -> {root, fields…}
const SAMPLE_WINDOW = 300; // seconds shown in the charts

// ---- colours: one hue per term, the same on every node -------------------------
function termColour(term) {
  const hue = (term * 67) % 360;
  return `hsl(${hue} 70% 62%)`;
}

// ---- actions ----------------------------------------------------------------
function logAction(text, ok) {
  const li = el("li", { class: ok ? "ok" : "error" },
    el("time", { text: new Date().toLocaleTimeString() }), text);
  $("#actions").prepend(li);
  while ($("#actions").children.length > 100) $("#actions").lastChild.remove();
}

// POSTs `body` (an object, or nothing) to `path`; shows the answer's message or error.
async function post(path, body) {
  let resp, data;
  try {
    resp = await fetch(path, {
      method: "POST",
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    data = await resp.json().catch(() => ({}));
  } catch (e) {
    logAction(`${path}: the supervisor did not answer (${e.message})`, false);
    return { ok: false, data: null };
  }
  if (resp.ok) {
    logAction(data.message || `${path}: done`, true);
    return { ok: true, data };
  }
  const msg = data && data.error ? `${data.error.message} (${data.error.code})` : `HTTP ${resp.status}`;
  logAction(`${path}: ${msg}`, false);
  return { ok: false, data };
}

// ---- node cards ---------------------------------------------------------------
const FIELDS = [
  ["pid", "pid"], ["role", "role"], ["term", "term"], ["voted", "voted for"],
  ["leader", "leader"], ["last", "last log"], ["committed", "committed"], ["applied", "applied"],
  ["lag", "lag"], ["digest", "digest"],
];

function makeCard(node) {
  const root = el("article", { class: "card", id: `node-${node.id}`, "data-node": node.id });
  const title = el("h3", {}, el("span", { text: `node ${node.id}` }));
  const stateBadge = el("span", { class: "badge state" });
  const roleBadge = el("span", { class: "badge role" });
  const cutBadge = el("span", { class: "badge cut", text: "cut off", hidden: "" });
  title.append(stateBadge, roleBadge, cutBadge);
  const addr = el("div", { class: "muted", text: node.addr });
  const dl = el("dl");
  const f = {};
  for (const [key, label] of FIELDS) {
    f[key] = el("dd", { "data-field": key, text: "-" });
    dl.append(el("dt", { text: label }), f[key]);
  }
  const faults = el("div", { class: "faults" });
  const actions = el("div", { class: "actions" });
  const button = (action, label, cls = "") => el("button", {
    type: "button", class: cls, "data-action": action, "data-node": node.id, text: label,
    onclick: () => post(`/nodes/${node.id}/${action}`),
  });
  const buttons = {
    kill: button("kill", "kill", "danger"), stop: button("stop", "stop"),
    start: button("start", "start"), restart: button("restart", "restart"),
    pause: button("pause", "pause"), resume: button("resume", "resume"),
  };
  const cut = el("button", {
    type: "button", "data-action": "partition", "data-node": node.id, text: "cut off",
    onclick: () => post("/api/partition", { nodes: [node.id] }),
  });
  const slowMs = el("input", { type: "number", min: "0", value: "200", title: "delay of each outgoing Raft message, ms" });
  const slow = el("button", {
    type: "button", "data-action": "slow", "data-node": node.id, text: "slow",
    onclick: () => post(`/api/nodes/${node.id}/slow`, { delay_ms: Number(slowMs.value), jitter_ms: 0, drop_rate: 0 }),
  });
  const delayMs = el("input", { type: "number", min: "0", value: "2000", title: "apply delay, ms" });
  const delay = el("button", {
    type: "button", "data-action": "apply-delay", "data-node": node.id, text: "apply delay",
    onclick: () => post(`/api/nodes/${node.id}/apply-delay`, { apply_delay_ms: Number(delayMs.value) }),
  });
  actions.append(...Object.values(buttons), cut, slowMs, slow, delayMs, delay);
  root.append(title, addr, dl, faults, actions);
  $("#cards").append(root);
  // Partition picker and form choices for this node.
  $("#partition-picks").append(el("label", {},
    el("input", { type: "checkbox", class: "pick", value: node.id, id: `pick-${node.id}` }), ` ${node.id} `));
  $("#item-node").append(el("option", { value: node.id, text: `node ${node.id}` }));
  $("#tl-node").append(el("option", { value: node.id, text: `node ${node.id}` }));
  const card = { root, stateBadge, roleBadge, cutBadge, f, faults, buttons };
  cards.set(node.id, card);
  return card;
}

function describeFaults(s) {
  const parts = [];
  const f = s && s.faults;
  if (f) {
    if (f.partitioned_from && f.partitioned_from.length) parts.push(`cut off from ${f.partitioned_from.join(",")}`);
    if (f.delay_ms > 0 || f.jitter_ms > 0) parts.push(`slow ${f.delay_ms}±${f.jitter_ms} ms`);
    if (f.drop_rate > 0) parts.push(`drops ${Math.round(f.drop_rate * 100)}%`);
  }
  if (s && s.apply_delay_ms > 0) parts.push(`apply +${s.apply_delay_ms} ms`);
  return parts.join("; ");
}

const show = (v) => (v === null || v === undefined ? "-" : String(v));

function renderCards(st) {
  const view = st.view;
  const leader = view.leader;
  const leaderNode = leader && view.nodes.find((n) => n.id === leader.id);
  const leaderApplied = leaderNode && leaderNode.status ? leaderNode.status.applied : null;
  for (const n of view.nodes) {
    const c = cards.get(n.id) || makeCard(n);
    const s = n.status;
    const isLeader = !!leader && leader.id === n.id;
    const down = !(n.state === "running" && s);
    // Cut off = partitioned from so many nodes that it cannot reach a majority.
    const blocked = s && s.faults && s.faults.partitioned_from ? s.faults.partitioned_from.length : 0;
    const cut = blocked > 0 && view.nodes.length - blocked <= Math.floor(view.nodes.length / 2);
    let role = s ? s.role : (n.state === "running" ? "unreachable" : "-");
    const lag = s && leaderApplied !== null && s.applied !== null ? Math.max(0, leaderApplied - s.applied) : null;
    c.root.dataset.state = n.state;
    c.root.dataset.role = role;
    c.root.dataset.leader = String(isLeader);
    c.root.dataset.down = String(down);
    c.root.dataset.cut = String(cut);
    c.root.dataset.term = s ? s.term : "";
    c.root.dataset.lag = lag === null ? "" : lag;
    c.stateBadge.textContent = n.state;
    c.stateBadge.className = `badge state state-${n.state}`;
    c.roleBadge.textContent = isLeader ? "LEADER" : role;
    c.roleBadge.className = `badge role role-${isLeader ? "Leader" : role}`;
    c.cutBadge.hidden = !cut;
    c.f.pid.textContent = show(n.pid);
    c.f.role.textContent = role;
    c.f.term.textContent = s ? s.term : "-";
    c.f.voted.textContent = s ? show(s.voted_for) : "-";
    c.f.leader.textContent = s ? show(s.leader_id) : "-";
    c.f.last.textContent = s ? show(s.last_log_index) : "-";
    c.f.committed.textContent = s ? show(s.committed) : "-";
    c.f.applied.textContent = s ? show(s.applied) : "-";
    c.f.lag.textContent = show(lag);
    c.f.digest.textContent = s && s.digest ? s.digest.slice(0, 8) : "-";
    let faults = describeFaults(s);
    if (!s && n.unreachable) faults = `unreachable: ${n.unreachable}`;
    if (!s && n.last_exit && n.state !== "running") faults = `last exit: ${n.last_exit}`;
    c.faults.textContent = faults;
    const running = n.state === "running", paused = n.state === "paused";
    c.buttons.kill.disabled = !(running || paused);
    c.buttons.stop.disabled = !(running || paused);
    c.buttons.start.disabled = running || paused;
    c.buttons.pause.disabled = !running;
    c.buttons.resume.disabled = !paused;
  }
}

// ---- replication bars -----------------------------------------------------------
function renderReplication(st) {
  const box = $("#replication");
  box.replaceChildren();
  const view = st.view;
  const leaderNode = view.leader && view.nodes.find((n) => n.id === view.leader.id);
  const s = leaderNode && leaderNode.status;
  if (!s || !s.replication) {
    box.append(el("div", { class: "muted", text: st.electing || "no leader: nothing is being replicated" }));
    return;
  }
  const last = s.last_log_index || 0;
  const grid = el("div", { class: "repl" });
  for (const [id, p] of Object.entries(s.replication)) {
    const matched = p.matched || 0;
    const pct = last > 0 ? Math.min(100, (100 * matched) / last) : 100;
    const isLeader = Number(id) === view.leader.id;
    const bar = el("div", { class: `bar${isLeader ? " leader" : p.behind > 0 ? " behind" : ""}`, "data-node": id, "data-behind": p.behind });
    bar.append(el("div", { style: `width:${pct.toFixed(1)}%` }));
    grid.append(el("span", { text: `node ${id}${isLeader ? " ★" : ""}` }), bar,
      el("span", { text: `${matched}/${last}${p.behind > 0 ? ` (${p.behind} behind)` : ""}` }));
  }
  box.append(grid);
}

// ---- log strips -------------------------------------------------------------------
function renderStrips(st) {
  const box = $("#strips");
  box.replaceChildren();
  const strips = Object.entries(st.strips);
  if (!strips.length) { box.append(el("div", { class: "muted", text: "no log read yet" })); return; }
  let maxIndex = 0;
  for (const [, s] of strips) for (const e of s.entries) maxIndex = Math.max(maxIndex, e.index);
  const width = 40;
  const first = Math.max(1, maxIndex - width + 1);
  const terms = new Set();
  for (const [id, s] of strips) {
    const row = el("div", { class: `strip${s.stale ? " stale" : ""}`, "data-node": id });
    const cells = el("div", { class: "cells", style: `grid-template-columns: repeat(${width}, 1fr)` });
    const byIndex = new Map(s.entries.map((e) => [e.index, e]));
    for (let i = first; i < first + width; i++) {
      const e = byIndex.get(i);
      if (!e) { cells.append(el("div", { class: "cell empty", title: `index ${i}: not on this node` })); continue; }
      terms.add(e.term);
      let cls = "cell";
      if (s.committed === null || e.index > s.committed) cls += " uncommitted";
      if (e.index === s.committed) cls += " commit";
      if (e.index === s.applied) cls += " apply";
      const writes = e.writes > 1 ? ` (${e.writes} writes)` : "";
      cells.append(el("div", {
        class: cls, style: `background-color:${termColour(e.term)}`,
        title: `index ${e.index}, term ${e.term}, ${e.kind}${writes}`, text: String(e.term),
      }));
    }
    row.append(el("span", { text: `node ${id}${s.stale ? " (last seen)" : ""}` }), cells);
    box.append(row);
  }
  const legend = $("#term-legend");
  legend.replaceChildren("terms: ");
  for (const t of [...terms].sort((a, b) => a - b)) {
    legend.append(el("span", { style: `background:${termColour(t)}`, text: String(t) }));
  }
  legend.append(` · indexes ${first}–${first + width - 1}; faded = not committed on that node`);
}

// ---- header --------------------------------------------------------------------------
function renderHeader(st) {
  const v = $("#verdict");
  v.dataset.kind = st.verdict.kind;
  v.textContent = st.verdict.text;
  const l = st.view.leader;
  $("#leader").textContent = l ? `leader: node ${l.id}, term ${l.term}` : "no leader";
  $("#leader").dataset.leader = l ? l.id : "";
  $("#leader").dataset.term = l ? l.term : "";
  const e = $("#electing");
  e.hidden = !st.electing;
  e.textContent = st.electing || "";
  const load = st.load;
  $("#load-status").textContent = load.running
    ? `running at ${load.rate}/s: ${load.writes} writes, ${load.reads} reads, ${load.errors} errors`
    : load.writes ? `stopped after ${load.writes} writes, ${load.errors} errors` : "not running";
  $("#load-status").dataset.running = String(load.running);
}

function render() {
  if (!state) return;
  renderHeader(state);
  renderCards(state);
  renderReplication(state);
  renderStrips(state);
}

// ---- timeline ---------------------------------------------------------------------------
function eventLine(ev) {
  const t = ev.ts.slice(11, 23);
  const fields = Object.entries(ev.fields).map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`).join(" ");
  return el("li", { "data-event": ev.event, "data-node": ev.node },
    el("time", { text: t }), `node ${ev.node}`,
    el("span", { class: `ev ev-${ev.event}`, text: ev.event }),
    el("span", { class: "fields", text: fields }));
}

function renderTimeline() {
  const filter = $("#tl-filter").value.trim().toLowerCase();
  const node = $("#tl-node").value;
  const list = $("#timeline");
  const shown = [];
  for (let i = timeline.length - 1; i >= 0 && shown.length < 300; i--) {
    const ev = timeline[i];
    if (node !== "" && String(ev.node) !== node) continue;
    if (filter && !(`${ev.event} ${ev.message} ${JSON.stringify(ev.fields)}`.toLowerCase().includes(filter))) continue;
    shown.push(eventLine(ev));
  }
  list.replaceChildren(...shown);
  $("#tl-count").textContent = `${shown.length} of ${timeline.length} events`;
}

// ---- charts ---------------------------------------------------------------------------------
function drawChart(canvas, points, colour) {
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, pad = 4;
  ctx.clearRect(0, 0, w, h);
  const now = Date.now();
  const from = now - SAMPLE_WINDOW * 1000;
  const vals = points.filter((p) => p.t >= from && p.v !== null);
  const max = Math.max(1, ...vals.map((p) => p.v)) * 1.15;
  ctx.strokeStyle = "#e5e7eb";
  ctx.fillStyle = "#9aa1ad";
  ctx.font = "10px sans-serif";
  ctx.beginPath(); ctx.moveTo(0, h - pad); ctx.lineTo(w, h - pad); ctx.stroke();
  ctx.fillText(max.toFixed(max < 10 ? 1 : 0), 2, 10);
  ctx.strokeStyle = colour;
  ctx.lineWidth = 1.6;
  ctx.beginPath();
  let started = false;
  for (const p of vals) {
    const x = ((p.t - from) / (SAMPLE_WINDOW * 1000)) * w;
    const y = h - pad - (p.v / max) * (h - 2 * pad);
    if (!started) { ctx.moveTo(x, y); started = true; } else ctx.lineTo(x, y);
  }
  ctx.stroke();
}

function renderCharts() {
  drawChart($("#chart-writes"), samples.map((s) => ({ t: s.t, v: s.writes_per_s })), "#2563eb");
  drawChart($("#chart-reads"), samples.map((s) => ({ t: s.t, v: s.reads_per_s })), "#16a34a");
  drawChart($("#chart-p99"), samples.map((s) => ({ t: s.t, v: s.p99_ms })), "#dc2626");
  const last = samples[samples.length - 1];
  $("#now-writes").textContent = last ? last.writes_per_s.toFixed(1) : "–";
  $("#now-reads").textContent = last ? last.reads_per_s.toFixed(1) : "–";
  $("#now-p99").textContent = last && last.p99_ms !== null ? last.p99_ms.toFixed(1) : "–";
}

// ---- the stream -------------------------------------------------------------------------------
function connect() {
  const es = new EventSource("/events");
  es.addEventListener("open", () => { $("#conn").dataset.conn = "live"; $("#conn").textContent = "live"; });
  es.addEventListener("error", () => {
    $("#conn").dataset.conn = "reconnecting";
    $("#conn").textContent = "supervisor unreachable, reconnecting…";
  });
  es.addEventListener("hello", (m) => {
    const d = JSON.parse(m.data);
    state = d.state; timeline = d.timeline; samples = d.samples;
    render(); renderTimeline(); renderCharts();
  });
  es.addEventListener("state", (m) => { state = JSON.parse(m.data); render(); });
  es.addEventListener("event", (m) => {
    timeline.push(JSON.parse(m.data));
    if (timeline.length > 2000) timeline.splice(0, timeline.length - 2000);
    renderTimeline();
  });
  es.addEventListener("sample", (m) => {
    samples.push(JSON.parse(m.data));
    if (samples.length > 600) samples.splice(0, samples.length - 600);
    renderCharts();
  });
}

// ---- forms ----------------------------------------------------------------------------------------
function wire() {
  $("#partition-btn").addEventListener("click", () => {
    const nodes = [...document.querySelectorAll(".pick:checked")].map((c) => Number(c.value));
    post("/api/partition", { nodes });
  });
  $("#heal-btn").addEventListener("click", () => post("/api/heal"));
  $("#load-start").addEventListener("click", () => post("/api/load/start", { rate: Number($("#load-rate").value) }));
  $("#load-stop").addEventListener("click", () => post("/api/load/stop"));
  const syncForm = () => {
    const get = $("#item-op").value === "get";
    $("#item-value-label").hidden = get;
    $("#item-consistency-label").hidden = !get;
  };
  $("#item-op").addEventListener("change", syncForm);
  syncForm();
  $("#item-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const op = $("#item-op").value;
    const body = { op, node: Number($("#item-node").value), key: $("#item-key").value };
    if (op === "put") {
      const raw = $("#item-value").value;
      try { body.value = JSON.parse(raw); } catch { body.value = raw; }
    } else {
      body.consistency = $("#item-consistency").value;
    }
    const box = $("#item-result");
    box.className = "result muted";
    box.textContent = "sending…";
    const { ok, data } = await post("/api/item", body);
    if (ok) {
      box.className = `result ${data.stale ? "stale" : "ok"}`;
      const lines = [data.message];
      lines.push(`sent to node ${data.sent_to}; answered by node ${show(data.answered_by)} (${show(data.role)}, applied ${show(data.applied)})`);
      lines.push(data.redirected_to ? `redirect: 307 to ${data.redirected_to}` : "redirect: none");
      if (op === "get") lines.push(`stale: ${data.stale ? "yes" : "no"} (read version ${show(data.version)}, leader has ${show(data.latest_version)})`);
      box.textContent = lines.join("\n");
      box.dataset.answeredBy = show(data.answered_by);
      box.dataset.redirected = String(!!data.redirected_to);
    } else {
      box.className = "result error";
      box.textContent = data && data.error ? data.error.message : "the supervisor did not answer";
    }
  });
  $("#tl-filter").addEventListener("input", renderTimeline);
  $("#tl-node").addEventListener("change", renderTimeline);
  setInterval(renderCharts, 1000); // slide the charts' time axis even without samples
}

wire();
connect();
