// What the softphone and the supervisor page share: the microphone, the offer
// Bond answers with its candidates trickled after it, and WebAudio meters of
// what is said and heard. Plain JS, no build step; `bondMedia` is the one global.
"use strict";

const bondMedia = (() => {
  let audio = null;

  // The microphone. `#processing=off` in the page's address turns the browser's
  // echo cancellation, noise suppression and gain control off (headsets; tone
  // tests, which they would otherwise cancel). Throws a readable Error.
  async function microphone() {
    const processing = new URLSearchParams(location.hash.slice(1)).get("processing") !== "off";
    try {
      return await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: processing, noiseSuppression: processing, autoGainControl: processing },
      });
    } catch (e) {
      throw new Error(e.name === "NotAllowedError"
        ? "Microphone access was refused. Allow the microphone for this page and try again."
        : `No microphone: ${e.message}`);
    }
  }

  // A peer connection gathering candidates from `iceServers` (the TURN relays
  // Bond hands out). `#ice=relay` in the page's address uses relayed
  // candidates only, as a firewall that blocks all UDP to Bond would.
  function peer(iceServers) {
    const relay = new URLSearchParams(location.hash.slice(1)).get("ice") === "relay";
    return new RTCPeerConnection({ iceServers, iceTransportPolicy: relay ? "relay" : "all" });
  }

  // Set `pc`'s offer and return it with a trickler: the page sends the offer
  // at once and calls `trickler.ready(callId)` once Bond knows the call, from
  // when each candidate the browser gathers goes to Bond as a `candidate`
  // frame through `send(callId, candidate)` (trickle ICE, RFC 8838): nobody
  // waits for gathering, which a slow or blocked TURN server holds up for
  // seconds. `#trickle=off` in the page's address waits for gathering to
  // complete (at most 3 s) and sends no candidates, as before trickle ICE.
  async function offer(pc, send) {
    const trickle = new URLSearchParams(location.hash.slice(1)).get("trickle") !== "off";
    let callId = null;
    const pending = [];
    if (trickle) {
      pc.addEventListener("icecandidate", (e) => {
        const line = e.candidate && e.candidate.candidate;
        if (!line) return; // the end of candidates: Bond needs no word of it
        if (callId) send(callId, line);
        else pending.push(line);
      });
    }
    await pc.setLocalDescription(await pc.createOffer());
    if (!trickle) await gathered(pc, 3000);
    const trickler = {
      ready(id) {
        callId = id;
        pending.splice(0).forEach((line) => send(id, line));
      },
    };
    return { sdp: pc.localDescription.sdp, trickler };
  }

  // Resolves once `pc` has gathered its candidates, or after `ms`.
  function gathered(pc, ms) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      pc.addEventListener("icegatheringstatechange", () => {
        if (pc.iceGatheringState === "complete") resolve();
      });
      setTimeout(resolve, ms);
    });
  }

  // A meter on `stream`: its level (RMS), its loudest frequency, and the share of
  // its spectrum's energy within 30 Hz of a frequency.
  function meter(stream) {
    audio = audio || new AudioContext();
    const node = audio.createAnalyser();
    node.fftSize = 4096;
    audio.createMediaStreamSource(stream).connect(node);
    const spectrum = () => {
      const bins = new Float32Array(node.frequencyBinCount);
      node.getFloatFrequencyData(bins);
      return bins.map((db) => Math.pow(10, db / 10));
    };
    const binHz = () => audio.sampleRate / node.fftSize;
    return {
      level() {
        const data = new Float32Array(node.fftSize);
        node.getFloatTimeDomainData(data);
        let sum = 0;
        for (const v of data) sum += v * v;
        return Math.sqrt(sum / data.length);
      },
      dominantHz() {
        const power = spectrum();
        let best = 1;
        for (let i = 1; i < power.length; i++) if (power[i] > power[best]) best = i;
        return best * binHz();
      },
      share(hz) {
        const power = spectrum();
        let near = 0, all = 0;
        power.forEach((p, i) => {
          all += p;
          if (Math.abs(i * binHz() - hz) <= 30) near += p;
        });
        return all > 0 ? near / all : 0;
      },
    };
  }

  return { microphone, peer, offer, meter };
})();
