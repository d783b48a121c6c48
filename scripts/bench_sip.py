"""SIP load: sipp calls into a release `bond serve`; a small application answers each
call and bridges it to loop:echo. Reports setup rate, concurrency, loss from Bond's
own call_quality_stats, CPU and memory of the Bond process.

    scripts/bench-sip [concurrent_calls] [call_rate_per_s] [plays_of_8s]
"""

import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "interop"))
from conftest import Bond, api, free_port  # noqa: E402

calls, rate, plays = (int(a) for a in (sys.argv[1:] + ["100", "50", "7"])[:3][:3])
state = {"answered": 0, "hangups": 0, "lost": 0, "received": 0, "sent": 0, "errors": 0}
lock = threading.Lock()


def make_app(bond, connection):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            event = json.loads(self.rfile.read(int(self.headers["content-length"])))["data"]
            self.send_response(200)
            self.end_headers()
            payload = event["payload"]
            try:
                if event["event_type"] == "call.initiated" and payload.get("direction") == "incoming":
                    call = payload["call_control_id"]
                    api(bond, "POST", f"/calls/{call}/actions/answer", {})
                    echo = api(bond, "POST", "/calls", {"connection_id": connection(), "to": "loop:echo",
                                                        "from": "+15550000000"})["data"]["call_control_id"]
                    api(bond, "POST", f"/calls/{call}/actions/bridge", {"call_control_id_to_bridge_with": echo})
                    with lock:
                        state["answered"] += 1
                elif event["event_type"] == "call.hangup" and payload["from"] != "+15550000000":
                    q = payload["call_quality_stats"]
                    with lock:
                        state["hangups"] += 1
                        state["lost"] += int(q["inbound"]["skip_packet_count"])
                        state["received"] += int(q["inbound"]["packet_count"])
                        state["sent"] += int(q["outbound"]["packet_count"])
            except Exception as e:  # noqa: BLE001 - counted, the run goes on
                with lock:
                    state["errors"] += 1
                print("app error:", e, file=sys.stderr)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def write_pcap(path, seconds=8, hz=700):
    """PCMA in 20 ms RTP packets, as a pcap sipp can replay (sipp's own g711a.pcap
    uses 30 ms; the load target is 50 packets a second each way)."""
    import math
    import struct
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for n in range(seconds * 50):
        pcm = b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * hz * (n * 160 + i) / 8000)))
                       for i in range(160))
        rtp = struct.pack("!BBHII", 0x80, 8, n & 0xFFFF, n * 160, 0x5EED) + audioop.lin2alaw(pcm, 2)
        udp = struct.pack("!HHHH", 6000, 6000, 8 + len(rtp), 0) + rtp
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                         bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1])) + udp
        frame = b"\x00" * 12 + b"\x08\x00" + ip
        usec = n * 20_000
        out.append(struct.pack("<IIII", usec // 1_000_000, usec % 1_000_000, len(frame), len(frame)) + frame)
    with open(path, "wb") as f:
        f.write(b"".join(out))


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


with tempfile.TemporaryDirectory() as data:
    # The application's three requests a call would pass the default API rate limit.
    bond = Bond(data, {"BOND_RATE_LIMIT_PER_SECOND": "100000", "BOND_RATE_LIMIT_BURST": "100000"})
    os.environ.setdefault("BOND_BIN", "target/release/bond")
    bond.start()
    conn_id = {}
    app = make_app(bond, lambda: conn_id["id"])
    body = {"application_name": "load", "webhook_event_url": f"http://127.0.0.1:{app.server_address[1]}/hooks",
            "bond": {"sip": {"allowed_ips": ["127.0.0.1"]}}}
    conn_id["id"] = api(bond, "POST", "/call_control_applications", body)["data"]["id"]
    workdir = tempfile.mkdtemp()
    scenario = open(os.path.join(os.path.dirname(__file__), "..", "tests", "interop", "sipp", "load_uac.xml")).read()
    path = os.path.join(workdir, "load_uac.xml")
    pcap = os.path.join(workdir, "pcma20.pcap")
    write_pcap(pcap)
    open(path, "w").write(scenario.replace("{plays}", str(plays)).replace("/usr/share/sip-tester/g711a.pcap", pcap))
    pid = bond.proc.pid
    cpu0, t0 = cpu_seconds(pid), time.time()
    sipp = subprocess.run(
        ["sipp", "-sf", path, f"127.0.0.1:{bond.sip_port}", "-s", "+15557654321", "-i", "127.0.0.1",
         "-p", str(free_port()), "-mi", "127.0.0.1", "-mp", "30000", "-m", str(calls), "-l", str(calls), "-r", str(rate),
         "-timeout", str(plays * 8 + 120) + "s", "-nostdin", "-trace_stat", "-stf", os.path.join(workdir, "stat.csv"),
         "-fd", "1", "-max_socket", "4000"],
        cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.time() - t0
    cpu = cpu_seconds(pid) - cpu0
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    sipp_cpu = children.ru_utime + children.ru_stime
    peak_rss = rss_mib(pid)
    deadline = time.time() + 30
    while state["hangups"] < state["answered"] and time.time() < deadline:
        time.sleep(0.2)
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{bond.port}/metrics", timeout=10).read().decode()
    dropped = [l for l in metrics.splitlines() if l.startswith("bond_rtp_packets")]
    stats = open(os.path.join(workdir, "stat.csv")).read().splitlines()
    header, last = stats[0].split(";"), stats[-1].split(";")
    row = dict(zip(header, last))
    print(f"calls: {calls} at {rate}/s, {plays * 8} s of audio each (sipp exit {sipp.returncode})")
    print(f"sipp: successful {row.get('SuccessfulCall(C)')}, failed {row.get('FailedCall(C)')}, "
          f"peak concurrent {row.get('CurrentCall(P)', '?')}")
    print(f"bond answered {state['answered']}, hung up {state['hangups']}, app errors {state['errors']}")
    print(f"RTP in {state['received']} packets, lost {state['lost']} "
          f"({100.0 * state['lost'] / max(1, state['received'] + state['lost']):.3f} %), out {state['sent']}")
    print(f"bond metrics: {dropped} (sipp sent {calls * plays * 400} packets)")
    print(f"bond CPU {cpu:.1f} s over {wall:.1f} s wall = {100 * cpu / wall:.1f} % of one core; "
          f"RSS at the end {peak_rss:.0f} MiB")
    print(f"sipp CPU {sipp_cpu:.1f} s = {100 * sipp_cpu / wall:.1f} % of one core")
    print(f"sipp: {sipp.stderr.strip()[-500:]}" if sipp.returncode else "", end="")
    bond.stop()
