// Bond's softphone: registers on /v2/agent/ws with an agent token, rings on
// `incoming_call`, answers with a WebRTC offer (Bond answers it), and drives
// mute/hold/DTMF/hang-up over the same socket. It places calls too: `call` with
// an offer makes the agent's own leg, then `POST /v2/calls` (the token is the
// Bearer credential) dials the customer with `link_to` that leg and
// `bridge_on_answer`. Plain JS, no build step.
// `window.softphone` exposes state and audio analysis for tests.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { ws: null, token: null, agent: null, connectionId: null, call: null, pc: null, mic: null,
  muted: false, held: false, started: 0, retry: null, registered: false, lastHangup: null,
  inMeter: null, outMeter: null };

function showError(text) {
  $("error").textContent = text;
  $("error").hidden = !text;
}

function setStatus(text, kind) {
  $("status").textContent = text;
  $("status").className = "badge" + (kind ? " " + kind : "");
}

function connect() {
  clearTimeout(state.retry);
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/v2/agent/ws`);
  state.ws = ws;
  setStatus("connecting…");
  ws.onopen = () => ws.send(JSON.stringify({ type: "register", token: state.token }));
  ws.onmessage = (e) => onMessage(JSON.parse(e.data));
  ws.onclose = (e) => {
    const was = state.registered;
    state.registered = false;
    endCall(null);
    setStatus("disconnected", "bad");
    if (e.code === 1008 || e.code === 4001) {
      showError(`Signed out: ${e.reason || "the token was refused"}. Sign in with a new token.`);
      $("login").hidden = false; $("idle").hidden = true;
    } else if (e.code === 4000) {
      showError("This agent signed in somewhere else.");
    } else {
      showError(`The connection to Bond dropped${e.reason ? ": " + e.reason : ""}. Reconnecting…`);
      if (was || state.token) state.retry = setTimeout(connect, 2000);
    }
  };
}

function send(message) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify(message));
}

function onMessage(m) {
  switch (m.type) {
    case "registered":
      state.registered = true; state.agent = m.agent; state.connectionId = m.connection_id;
      state.iceServers = m.ice_servers || [];
      setStatus("registered", "ok"); showError("");
      $("login").hidden = true; $("idle").hidden = false; $("dial").hidden = !m.connection_id;
      $("agent-name").textContent = `Signed in as ${m.agent}`;
      // A new session starts not ready: say again what the agent chose before.
      if ($("available").checked) send({ type: "availability", available: true });
      break;
    case "ice_servers":
      state.iceServers = m.ice_servers || [];
      break;
    case "availability":
      $("available").checked = m.available;
      break;
    case "incoming_call":
      if (state.call) { send({ type: "reject", call_control_id: m.call_control_id }); break; }
      state.call = { id: m.call_control_id, from: m.from, to: m.to, phase: "ringing" };
      state.started = Date.now();
      $("peer").textContent = `Call from ${m.from}`;
      $("call").hidden = false; $("ringing").hidden = false; $("incall").hidden = true; $("idle").hidden = true;
      break;
    case "answer":
      if (state.pc && state.call && m.call_control_id === state.call.id) {
        state.pc.setRemoteDescription({ type: "answer", sdp: m.sdp }).catch((e) => showError(`Bond's answer was refused: ${e.message}`));
      }
      break;
    case "outgoing":
      if (state.pc && state.call && state.call.phase === "dialing" && !state.call.id) {
        state.call.id = m.call_control_id;
        state.call.trickler.ready(m.call_control_id);
        state.pc.setRemoteDescription({ type: "answer", sdp: m.sdp }).catch((e) => showError(`Bond's answer was refused: ${e.message}`));
        dialCustomer(state.call);
      } else {
        send({ type: "hangup", call_control_id: m.call_control_id }); // given up on meanwhile
      }
      break;
    case "answered":
      if (state.call && m.call_control_id === state.call.id) {
        state.call.phase = "connected"; state.started = Date.now();
        $("peer").textContent = `In call with ${state.call.from}`;
      }
      break;
    case "hangup":
      if (state.call && m.call_control_id === state.call.id) endCall(m.cause);
      break;
    case "error":
      // A candidate Bond could not use: the call goes on with the others.
      if (m.code === "candidate_refused") { console.debug(m.detail); break; }
      showError(`${m.detail} (${m.code})`);
      if (m.code === "call_failed" && state.call && !state.call.id) endCall(null);
      break;
  }
}

async function accept() {
  const call = state.call;
  if (!call || call.phase !== "ringing") return;
  call.phase = "connecting";
  $("accept").disabled = true;
  const sdp = await startMedia(call);
  if (!sdp) { call.phase = "ringing"; $("accept").disabled = false; return; }
  send({ type: "accept", call_control_id: call.id, sdp });
  call.trickler.ready(call.id);
  showCall(`In call with ${call.from}`);
}

// Place a call: the agent's own leg first, then the customer through the API.
async function placeCall() {
  const to = $("dial-to").value.trim(), callerId = $("dial-from").value.trim();
  if (state.call) return;
  if (!to || !callerId) { showError("Enter the number to call and the caller ID to show."); return; }
  localStorage.setItem("bond.callerId", callerId);
  const call = { id: null, from: to, to, callerId, phase: "dialing" };
  state.call = call;
  state.started = Date.now();
  showCall(`Calling ${to}…`);
  const sdp = await startMedia(call);
  if (!sdp) { endCall(null); return; }
  send({ type: "call", sdp, to });
}

async function dialCustomer(call) {
  const response = await fetch("/v2/calls", {
    method: "POST",
    headers: { authorization: `Bearer ${state.token}`, "content-type": "application/json" },
    body: JSON.stringify({ connection_id: state.connectionId, to: call.to, from: call.callerId,
      link_to: call.id, bridge_on_answer: true }),
  }).catch((e) => ({ ok: false, statusText: e.message, json: async () => ({}) }));
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const detail = (body.errors && body.errors[0] && body.errors[0].detail) || response.statusText;
    send({ type: "hangup", call_control_id: call.id });
    if (state.call === call) endCall(null);
    showError(`The call could not be placed: ${detail}`);
    return;
  }
  call.customer = body.data.call_control_id;
}

function showCall(peer) {
  $("peer").textContent = peer;
  $("call").hidden = false; $("idle").hidden = true; $("ringing").hidden = true; $("incall").hidden = false;
  showError("");
}

// Microphone and peer connection for `call`; returns the offer (its
// candidates follow through `call.trickler`), or null (with a message) when
// the microphone is refused.
async function startMedia(call) {
  try {
    state.mic = await bondMedia.microphone();
  } catch (e) {
    showError(e.message);
    return null;
  }
  const pc = bondMedia.peer(state.iceServers || []);
  state.pc = pc;
  state.mic.getTracks().forEach((t) => pc.addTrack(t, state.mic));
  pc.ontrack = (e) => {
    $("remote").srcObject = e.streams[0] || new MediaStream([e.track]);
    state.outMeter = bondMedia.meter(new MediaStream([e.track]));
  };
  pc.onconnectionstatechange = () => {
    if (pc.connectionState === "connected") {
      if (call.phase !== "dialing") call.phase = "connected";
      setStatus("in call", "ok");
    }
    if (pc.connectionState === "failed") showError("The media connection to Bond failed (ICE/DTLS).");
  };
  state.inMeter = bondMedia.meter(state.mic);
  const { sdp, trickler } = await bondMedia.offer(pc, (id, candidate) =>
    send({ type: "candidate", call_control_id: id, candidate }));
  call.trickler = trickler;
  state.started = Date.now();
  return sdp;
}

function endCall(cause) {
  if (state.call) state.lastHangup = { call_control_id: state.call.id, cause };
  if (state.pc) state.pc.close();
  if (state.mic) state.mic.getTracks().forEach((t) => t.stop());
  Object.assign(state, { call: null, pc: null, mic: null, muted: false, held: false, inMeter: null, outMeter: null });
  $("call").hidden = true; $("accept").disabled = false; $("idle").hidden = !state.registered;
  $("mute").classList.remove("on"); $("hold").classList.remove("on");
  if (state.registered) setStatus("registered", "ok");
  if (cause) showError(cause === "normal_clearing" ? "" : `Call ended: ${causeText(cause)}`);
}

// What the agent reads for a hangup cause.
function causeText(cause) {
  const media = {
    connection_failed: "the audio connection to Bond could not be set up (ICE/DTLS failed: a firewall or Bond's webrtc.public_ip)",
    connection_lost: "the audio connection to Bond was lost",
  };
  return media[cause] || cause.replace(/_/g, " ");
}

function toggle(kind) {
  if (!state.call) return;
  state[kind] = !state[kind];
  $(kind === "muted" ? "mute" : "hold").classList.toggle("on", state[kind]);
  if (kind === "muted") send({ type: "mute", call_control_id: state.call.id, muted: state.muted });
  else send({ type: "hold", call_control_id: state.call.id, held: state.held });
}

function dtmf(digit) {
  if (!state.call || !state.pc) return;
  const sender = state.pc.getSenders().find((s) => s.dtmf);
  // RFC 4733 from the browser when it can; otherwise Bond plays the digit.
  if (sender && sender.dtmf.canInsertDTMF) sender.dtmf.insertDTMF(digit, 120, 70);
  else send({ type: "dtmf", call_control_id: state.call.id, digits: digit });
}

const level = (meter) => (meter ? meter.level() : 0);

function tick() {
  $("meter-in").style.width = `${Math.min(100, level(state.inMeter) * 300)}%`;
  $("meter-out").style.width = `${Math.min(100, level(state.outMeter) * 300)}%`;
  if (state.call) {
    const s = Math.floor((Date.now() - state.started) / 1000);
    $("timer").textContent = `${String(Math.floor(s / 60)).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
  }
  requestAnimationFrame(tick);
}

for (const d of "123456789*0#") {
  const b = document.createElement("button");
  b.textContent = d; b.type = "button"; b.onclick = () => dtmf(d);
  $("keypad").appendChild(b);
}
$("login").onsubmit = (e) => {
  e.preventDefault();
  state.token = $("token").value.trim();
  if (!state.token) { showError("Paste the agent token your administrator gave you."); return; }
  connect();
};
$("dial").onsubmit = (e) => { e.preventDefault(); placeCall(); };
$("dial-from").value = localStorage.getItem("bond.callerId") || "";
$("available").onchange = () => send({ type: "availability", available: $("available").checked });
$("accept").onclick = accept;
$("reject").onclick = () => state.call && send({ type: "reject", call_control_id: state.call.id });
$("hangup").onclick = () => {
  if (state.call && state.call.id) send({ type: "hangup", call_control_id: state.call.id });
  else endCall(null);
};
$("mute").onclick = () => toggle("muted");
$("hold").onclick = () => toggle("held");
requestAnimationFrame(tick);

// A token in the fragment (#token=...) signs in at once; it never reaches a server log.
const fragment = new URLSearchParams(location.hash.slice(1));
if (fragment.get("token")) { $("token").value = fragment.get("token"); state.token = fragment.get("token"); connect(); }

window.softphone = {
  state,
  accept,
  placeCall,
  dtmf,
  toggle,
  outputHz: () => (state.outMeter ? state.outMeter.dominantHz() : 0),
  outputLevel: () => level(state.outMeter),
  inputLevel: () => level(state.inMeter),
};
