// Bond's supervisor page: every live call of the organization with its
// transcript and translation side by side. The socket (/v2/supervisor/ws)
// brings each segment as it is stored; a call seen for the first time is filled
// in from GET /v2/calls/{id}/translations first, so nothing said before the page
// opened is missing. The key stays in this page's memory only.
"use strict";

const $ = (id) => document.getElementById(id);
const calls = new Map(); // call_control_id -> { rows: tbody, ids: Set of segment ids }
let key = null;

function showError(text) {
  $("error").textContent = text;
  $("error").hidden = !text;
}

function setStatus(text, kind) {
  $("status").textContent = text;
  $("status").className = "badge " + (kind || "");
}

async function api(path) {
  const response = await fetch("/v2" + path, { headers: { Authorization: "Bearer " + key } });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const detail = body.errors && body.errors[0] ? body.errors[0].detail : response.statusText;
    throw new Error(detail);
  }
  return body;
}

function cell(language, text) {
  const td = document.createElement("td");
  const lang = document.createElement("span");
  lang.className = "lang";
  lang.textContent = language;
  td.append(lang, document.createTextNode(text));
  return td;
}

function panel(callId, title) {
  let call = calls.get(callId);
  if (call) return call;
  $("nothing").hidden = true;
  const section = document.createElement("section");
  section.className = "call";
  section.dataset.call = callId;
  const h2 = document.createElement("h2");
  const name = document.createElement("span");
  name.textContent = title || callId;
  const id = document.createElement("small");
  id.textContent = callId.slice(0, 18) + "…";
  h2.append(name, id);
  const table = document.createElement("table");
  table.innerHTML = "<thead><tr><th>Said</th><th>Translation</th></tr></thead>";
  const rows = document.createElement("tbody");
  table.append(rows);
  section.append(h2, table);
  $("calls").append(section);
  call = { rows, ids: new Set(), filled: false };
  calls.set(callId, call);
  return call;
}

function add(segment) {
  const call = panel(segment.call_control_id);
  if (call.ids.has(segment.id)) return;
  call.ids.add(segment.id);
  const tr = document.createElement("tr");
  tr.className = "segment";
  tr.append(cell(segment.language_from, segment.original), cell(segment.language_to, segment.translation));
  call.rows.append(tr);
}

// A call seen for the first time: what was said before, then what comes live.
async function fill(callId) {
  const call = panel(callId);
  if (call.filled) return;
  call.filled = true;
  const earlier = await api("/calls/" + encodeURIComponent(callId) + "/translations");
  const live = [...call.rows.children];
  call.rows.replaceChildren();
  call.ids.clear();
  earlier.data.forEach(add);
  live.forEach((tr) => call.rows.append(tr));
}

async function liveCalls() {
  const listed = await api("/calls?page[size]=100");
  for (const c of listed.data) {
    if (c.is_alive) panel(c.call_control_id, c.from + " → " + c.to);
  }
}

function watch() {
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  const socket = new WebSocket(scheme + location.host + "/v2/supervisor/ws");
  socket.onopen = () => socket.send(JSON.stringify({ type: "subscribe", token: key }));
  socket.onmessage = (message) => {
    const data = JSON.parse(message.data);
    if (data.type === "subscribed") {
      setStatus("watching", "ok");
      showError("");
    } else if (data.type === "error") {
      showError(data.detail);
      setStatus("refused", "bad");
    } else if (data.type === "translation") {
      const first = !calls.has(data.segment.call_control_id);
      add(data.segment);
      if (first) fill(data.segment.call_control_id).catch((e) => showError(e.message));
    } else if (data.type === "lagged") {
      showError(data.skipped + " segments were skipped (the page fell behind)");
    }
  };
  socket.onclose = () => {
    if ($("status").textContent === "watching") {
      setStatus("reconnecting", "bad");
      setTimeout(watch, 2000);
    }
  };
}

$("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  key = $("key").value.trim();
  try {
    await liveCalls();
    for (const id of calls.keys()) await fill(id);
    watch();
  } catch (e) {
    showError(e.message);
    setStatus("signed out", "bad");
  }
});
