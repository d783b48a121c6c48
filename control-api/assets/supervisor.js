// Bond's supervisor page: every live call of the organization with its
// transcript and translation side by side. The socket (/v2/supervisor/ws)
// brings each segment as it is stored; a call seen for the first time is filled
// in from GET /v2/calls/{id}/translations first, so nothing said before the page
// opened is missing. The page signs in with a short-lived supervisor token
// (bond admin supervisor-token, or POST /v2/supervisor_tokens), never an API
// key, and keeps it in its memory only.
//
// Listen, Whisper and Barge join a call by voice: the page signs in as an agent
// of its own (a token issued with the supervisor token), has Bond dial it with
// `supervise_call_control_id` and `supervisor_role`, and answers with WebRTC
// (webrtc.js). Another button on the same call switches the role of that leg
// (`switch_supervisor_role`); Leave hangs it up, and it ends with the call.
// `window.supervisor` exposes the state and what is heard, for tests.
"use strict";

const $ = (id) => document.getElementById(id);
const calls = new Map(); // call_control_id -> { rows: tbody, ids: Set of segment ids }
let key = null;
let refresh = null;

function showError(text) {
  $("error").textContent = text;
  $("error").hidden = !text;
}

function setStatus(text, kind) {
  $("status").textContent = text;
  $("status").className = "badge " + (kind || "");
}

async function api(path, body) {
  const headers = { Authorization: "Bearer " + key };
  const init = body === undefined ? { headers }
    : { method: "POST", headers: { ...headers, "Content-Type": "application/json" }, body: JSON.stringify(body) };
  const response = await fetch("/v2" + path, init);
  const answered = await response.json().catch(() => ({}));
  if (!response.ok) {
    const detail = answered.errors && answered.errors[0] ? answered.errors[0].detail : response.statusText;
    throw new Error(detail);
  }
  return answered;
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
  const ear = document.createElement("div");
  ear.className = "ear";
  for (const [role, label] of [["monitor", "Listen"], ["whisper", "Whisper"], ["barge", "Barge"]]) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = role;
    button.textContent = label;
    button.onclick = () => supervise(callId, role).catch((e) => { showError(e.message); leave(); });
    ear.append(button);
  }
  const leaveButton = document.createElement("button");
  leaveButton.type = "button";
  leaveButton.className = "leave";
  leaveButton.textContent = "Leave";
  leaveButton.hidden = true;
  leaveButton.onclick = leave;
  const note = document.createElement("small");
  ear.append(leaveButton, note);
  const table = document.createElement("table");
  table.innerHTML = "<thead><tr><th>Said</th><th>Translation</th></tr></thead>";
  const rows = document.createElement("tbody");
  table.append(rows);
  section.append(h2, ear, table);
  $("calls").append(section);
  call = { rows, section, ids: new Set(), filled: false, ended: false };
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

// Every live call gets a panel; a panel whose call ended says so and loses its buttons.
async function liveCalls() {
  const listed = await api("/calls?page[size]=100");
  const alive = new Set();
  for (const c of listed.data) {
    if (c.is_alive) {
      alive.add(c.call_control_id);
      panel(c.call_control_id, c.from + " → " + c.to);
    }
  }
  for (const [id, call] of calls) {
    if (!alive.has(id) && !call.ended && listed.data.some((c) => c.call_control_id === id)) {
      call.ended = true;
      call.section.classList.add("ended");
    }
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

// Joining calls by voice (see the top of this file).
const joined = { name: null, token: null, socket: null, registered: null, watched: null, call: null,
  role: null, pc: null, mic: null, meter: null };

function render() {
  for (const section of document.querySelectorAll("section.call")) {
    const here = section.dataset.call === joined.watched;
    for (const role of ["monitor", "whisper", "barge"]) {
      section.querySelector("button." + role).classList.toggle("on", here && joined.role === role);
    }
    section.querySelector("button.leave").hidden = !here;
    section.querySelector(".ear small").textContent = here ? (joined.pc ? "joined" : "joining…") : "";
  }
}

// The page's own agent: a token from the supervisor's key, registered on the signaling socket.
function register() {
  if (joined.registered) return joined.registered;
  joined.registered = (async () => {
    joined.name = "supervisor-" + Math.random().toString(36).slice(2, 10);
    joined.token = (await api("/agent_tokens", { agent: joined.name })).data.token;
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + location.host + "/v2/agent/ws");
    joined.socket = socket;
    await new Promise((resolve, reject) => {
      socket.onopen = () => socket.send(JSON.stringify({ type: "register", token: joined.token }));
      socket.onclose = (e) => {
        joined.registered = null;
        leave();
        reject(new Error("The signaling socket closed" + (e.reason ? ": " + e.reason : "")));
      };
      socket.onmessage = (message) => {
        const m = JSON.parse(message.data);
        if (m.type === "registered") {
          joined.iceServers = m.ice_servers || [];
          resolve();
        } else if (m.type === "ice_servers") joined.iceServers = m.ice_servers || [];
        else onSignal(m);
      };
    });
  })();
  return joined.registered;
}

function signal(message) {
  if (joined.socket && joined.socket.readyState === WebSocket.OPEN) joined.socket.send(JSON.stringify(message));
}

function onSignal(m) {
  if (m.type === "incoming_call") {
    // Only the call this page is dialing (its id may arrive before the dial's answer).
    if (joined.watched && !joined.pc && (!joined.call || joined.call === m.call_control_id)) {
      joined.call = m.call_control_id;
      answer(m.call_control_id).catch((e) => { showError(e.message); leave(); });
    } else {
      signal({ type: "reject", call_control_id: m.call_control_id });
    }
  } else if (m.type === "answer" && joined.pc && m.call_control_id === joined.call) {
    joined.pc.setRemoteDescription({ type: "answer", sdp: m.sdp }).catch((e) => showError(e.message));
  } else if (m.type === "hangup" && m.call_control_id === joined.call) {
    reset();
    if (m.cause === "connection_failed") showError("Listening ended: the audio connection to Bond could not be set up (ICE/DTLS failed).");
    else if (m.cause === "connection_lost") showError("Listening ended: the audio connection to Bond was lost.");
  } else if (m.type === "error" && m.code === "candidate_refused") {
    console.debug(m.detail); // a candidate Bond could not use: the others carry on
  } else if (m.type === "error") {
    showError(m.detail);
  }
}

async function answer(callId) {
  joined.mic = await bondMedia.microphone();
  const pc = bondMedia.peer(joined.iceServers || []);
  joined.pc = pc;
  joined.mic.getTracks().forEach((t) => pc.addTrack(t, joined.mic));
  pc.ontrack = (e) => {
    const stream = e.streams[0] || new MediaStream([e.track]);
    $("remote").srcObject = stream;
    joined.meter = bondMedia.meter(stream);
  };
  const { sdp, trickler } = await bondMedia.offer(pc, (id, candidate) =>
    signal({ type: "candidate", call_control_id: id, candidate }));
  signal({ type: "accept", call_control_id: callId, sdp });
  trickler.ready(callId);
  render();
}

// Join `callId` in `role`, or switch to `role` when joined already.
async function supervise(callId, role) {
  if (joined.watched === callId && joined.call) {
    await api("/calls/" + encodeURIComponent(joined.call) + "/actions/switch_supervisor_role", { role });
    joined.role = role;
    render();
    return;
  }
  leave();
  await register();
  const call = (await api("/calls/" + encodeURIComponent(callId))).data;
  Object.assign(joined, { watched: callId, role, call: null });
  render();
  const dialed = await api("/calls", { connection_id: call.connection_id, to: "agent:" + joined.name,
    from: call.from, supervise_call_control_id: callId, supervisor_role: role });
  if (joined.watched === callId && !joined.call) joined.call = dialed.data.call_control_id;
}

function leave() {
  if (joined.call) signal({ type: "hangup", call_control_id: joined.call });
  reset();
}

function reset() {
  if (joined.pc) joined.pc.close();
  if (joined.mic) joined.mic.getTracks().forEach((t) => t.stop());
  Object.assign(joined, { watched: null, call: null, role: null, pc: null, mic: null, meter: null });
  render();
}

window.supervisor = {
  joined,
  heardShare: (hz) => (joined.meter ? joined.meter.share(hz) : 0),
};

$("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  key = $("key").value.trim();
  if (!key.startsWith("bat_")) {
    showError("Sign in with a supervisor token (bond admin supervisor-token, or POST /v2/supervisor_tokens), not an API key.");
    return;
  }
  try {
    await liveCalls();
    for (const id of calls.keys()) await fill(id);
    watch();
    clearInterval(refresh);
    refresh = setInterval(() => liveCalls().catch((e) => showError(e.message)), 5000);
  } catch (e) {
    showError(e.message);
    setStatus("signed out", "bad");
  }
});
