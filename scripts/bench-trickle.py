"""How long a browser agent's answer takes to carry audio, with trickle ICE
and without (the softphone's `#trickle=off`: wait for gathering, at most 3 s,
then send a complete offer), for BENCHMARKS.md ("Trickle ICE").

Headless Chromium (Debian's) runs two softphone pages, one per mode, signed in
as two agents of one Bond. Each round dials both agents, one after the other
(A/B, then B/A the next round); each page clicks accept, and the time from the
click to the page's peer connection reaching `connected` (ICE and DTLS up) is
read off the page's own clock. Three set-ups of `turn.urls`:

- `none`: no TURN server (Bond's shipped default);
- `coturn`: a local coturn that answers (Debian's `coturn`);
- `blocked`: a TURN server the network drops (TEST-NET-1 192.0.2.1, nothing
  answers), as behind a firewall that blocks UDP 3478.

    BOND_BIN=target/release/bond target/interop-venv/bin/python scripts/bench-trickle.py [rounds]
"""

import contextlib
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "interop"))
from conftest import Receiver, api, bond_with, default_route_ip  # noqa: E402
from test_turn import SECRET, coturn  # noqa: E402
from test_webrtc_aiortc import agent_token, connection  # noqa: E402
from test_webrtc_chromium import page_with_microphone  # noqa: E402

# The click on accept and the peer connection's `connected`, on the page's clock.
TIMING = """(() => {
  window.timing = {};
  document.addEventListener("click", (e) => {
    if (e.target.id === "accept") window.timing = { click: performance.now() };
  }, true);
  const Native = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener("connectionstatechange", () => {
        if (this.connectionState === "connected") window.timing.connected = performance.now();
      });
    }
  };
})();"""


def signed_in(page, bond, name, mode):
    page.add_init_script(TIMING)
    page.goto(f"http://127.0.0.1:{bond.port}/agent#processing=off&trickle={mode}")
    page.fill("#token", agent_token(bond, name))
    page.click("#login button[type=submit]")
    page.wait_for_selector("#status:has-text('registered')")


def answer_ms(page, bond, conn, name):
    """Ring `name`, accept on its page: milliseconds from the click to connected."""
    api(bond, "POST", "/calls", {"connection_id": conn, "to": f"agent:{name}", "from": "+15550001111"})
    page.wait_for_selector("#accept:visible")
    page.click("#accept")
    page.wait_for_function("window.timing.connected !== undefined", timeout=20000)
    ms = page.evaluate("window.timing.connected - window.timing.click")
    page.click("#hangup")
    page.wait_for_selector("#call", state="hidden")
    time.sleep(0.3)
    return ms


def measure(setup, turn_url, rounds):
    env = {"BOND_TURN_URLS": turn_url, "BOND_TURN_SECRET": SECRET} if turn_url else {}
    receiver = Receiver()
    times = {"on": [], "off": []}
    with bond_with(env) as bond, page_with_microphone(560) as on:
        off = on.context.browser.new_page()
        conn = connection(bond, receiver)
        pages = {"on": on, "off": off}
        for mode, page in pages.items():
            signed_in(page, bond, f"bench-{mode}", mode)
        for r in range(rounds):
            order = ["on", "off"] if r % 2 == 0 else ["off", "on"]
            for mode in order:
                times[mode].append(answer_ms(pages[mode], bond, conn, f"bench-{mode}"))
    for mode in ("on", "off"):
        t = sorted(times[mode])
        print(f"{setup:8} trickle {mode:3}: median {statistics.median(t):7.1f} ms, "
              f"min {t[0]:7.1f}, max {t[-1]:7.1f}  ({len(t)} calls)", flush=True)
    ratio = statistics.median(times["on"]) / statistics.median(times["off"])
    print(f"{setup:8} on/off median: {ratio:.3f}", flush=True)


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    measure("none", None, rounds)
    with coturn(default_route_ip()) as (url, _):
        measure("coturn", url, rounds)
    measure("blocked", "turn:192.0.2.1:3478?transport=udp", rounds)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
