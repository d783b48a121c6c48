"""Fixtures for interop tests: a real `bond serve` process and a webhook receiver.

The Bond binary comes from BOND_BIN (scripts/test builds it). Each test gets its
own data directory and a bootstrap API key, and Bond runs on its shipped
defaults: HTTP on 127.0.0.1:8080, SIP on 0.0.0.0:5060 (UDP and TCP), RTP on
0.0.0.0, and the WebRTC port on 0.0.0.0:31000, so what users run is what is
tested. The tests therefore run one Bond at a time in a network namespace (a
test that needs another address says so in its `extra_env`). scripts/test runs
several shards at once, each in its own namespace (BOND_INTEROP_SHARD, below).
"""

import contextlib
import hashlib
import json
import math
import os
import resource
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.request
import wave
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

API_KEY = "KEYINTEROP00000000000000000000000001"


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "host_services: needs the host's Postgres or NATS on 127.0.0.1, so runs in the first shard")


def shard():
    """BOND_INTEROP_SHARD=`index:claims-dir`: this pytest is one of several
    running the same tests side by side, each in its own network namespace (so
    each has Bond's shipped ports to itself). Each test is run by whichever
    shard claims it first, by making a file named after it in the shared claims
    directory; only shard 0 runs the tests marked host_services (its namespace
    is the host's), and runs them first."""
    value = os.environ.get("BOND_INTEROP_SHARD")
    if not value:
        return None
    index, claims = value.split(":", 1)
    return int(index), claims


def claimed(claims: str, item) -> bool:
    name = "test-" + hashlib.sha256(item.nodeid.encode()).hexdigest()[:32]
    try:
        os.close(os.open(os.path.join(claims, name), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        return True
    except FileExistsError:
        return False


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session):
    """Runs the tests this shard claims (see `shard`); without a shard, pytest's own loop."""
    this = shard()
    if this is None or session.config.option.collectonly:
        return None
    if session.testsfailed and not session.config.option.continue_on_collection_errors:
        raise session.Interrupted(f"{session.testsfailed} errors during collection")
    index, claims = this
    if index == 0:
        # For scripts/lib/interop.sh to check that every test was claimed.
        with open(os.path.join(claims, "collected"), "w") as f:
            f.write(str(len(session.items)))
    pinned = [item for item in session.items if item.get_closest_marker("host_services")]
    shared = [item for item in session.items if not item.get_closest_marker("host_services")]
    for item in (pinned if index == 0 else []) + shared:
        if not claimed(claims, item):
            continue
        # No fixture outlives a test here, so each test tears all of its own down (nextitem=None).
        item.config.hook.pytest_runtest_protocol(item=item, nextitem=None)
        if session.shouldfail:
            raise session.Failed(session.shouldfail)
        if session.shouldstop:
            raise session.Interrupted(session.shouldstop)
    return True


def free_port() -> int:
    """A port free over both UDP and TCP: sipp and Bond's SIP listen on UDP,
    and a port the kernel finds free for TCP may be held over UDP."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, socket.socket() as tcp:
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            try:
                tcp.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


class Bond:
    """A `bond serve` child process on its own data directory and port."""

    def __init__(self, data_dir: str, extra_env=None, nofile=None, ca=None):
        self.data_dir = data_dir
        self.extra_env = extra_env or {}
        self.nofile = nofile  # a descriptor limit (ulimit -n) to run under
        # Served over HTTPS (http.tls_cert): clients trust `ca`, the CA that signed it.
        self.scheme = "https" if "BOND_HTTP_TLS_CERT" in self.extra_env else "http"
        self.ssl_context = ssl.create_default_context(cafile=ca) if self.scheme == "https" else None
        self.port = int(self.extra_env.get("BOND_HTTP_LISTEN", "127.0.0.1:8080").rsplit(":", 1)[1])
        self.sip_port = int(self.extra_env.get("BOND_SIP_UDP_LISTEN", "0.0.0.0:5060").rsplit(":", 1)[1])
        self.proc = None

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/v2"

    def start(self):
        env = {
            "PATH": os.environ.get("PATH", ""),
            "BOND_DATA_DIR": self.data_dir,
            "BOND_BOOTSTRAP_API_KEY": API_KEY,
            "BOND_WEBHOOKS_RETRY_INITIAL_MS": "100",
            "BOND_WEBHOOKS_RETRY_MAX_MS": "500",
            "BOND_LOG_LEVEL": "warn",
            # The embedded speech-to-text model scripts/test makes (tests/interop/test_speech.py).
            "BOND_WHISPER_MODEL": os.environ.get("BOND_WHISPER_MODEL", os.path.abspath("target/models/ggml-tiny.en-q8_0.bin")),
            "BOND_WHISPER_MULTILINGUAL_MODEL": os.environ.get(
                "BOND_WHISPER_MULTILINGUAL_MODEL", os.path.abspath("target/models/ggml-base-q8_0.bin")
            ),
            # Whisper's threads and workers, when a load script compares them (scripts/voice-agent-load.py).
            **{name: value for name, value in os.environ.items() if name in ("BOND_WHISPER_THREADS", "BOND_WHISPER_WORKERS")},
            **self.extra_env,
        }
        bond_bin = os.environ.get("BOND_BIN", "target/debug/bond")
        health = f"{self.scheme}://127.0.0.1:{self.port}/health"
        with contextlib.suppress(OSError), urllib.request.urlopen(health, timeout=1, context=self.ssl_context):
            raise RuntimeError(f"something already answers on port {self.port}: a Bond left running?")
        limit = (lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (self.nofile, self.nofile))) if self.nofile else None
        self.proc = subprocess.Popen([bond_bin, "serve"], env=env, stderr=subprocess.PIPE, text=True, preexec_fn=limit)
        # Read as it is written: a pipe nobody reads stalls Bond once 64 KiB of log fill it.
        self._log = []
        self._drain = threading.Thread(target=self._read_log, daemon=True)
        self._drain.start()
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                urllib.request.urlopen(health, timeout=1, context=self.ssl_context)
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"bond exited: {self.log()}")
                time.sleep(0.05)
        raise RuntimeError("bond did not become healthy")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            assert self.proc.wait(timeout=30) == 0, self.log()

    def _read_log(self):
        for line in self.proc.stderr:
            self._log.append(line)

    def log(self) -> str:
        """What Bond wrote to stderr so far (all of it once it has exited)."""
        if self.proc.poll() is not None:
            self._drain.join(timeout=5)
        return "".join(self._log)

    def kill(self):
        """Stop it whatever state it is in (a test that failed half-way)."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)


class Receiver:
    """Collects webhook POSTs: (headers, raw body), in arrival order; over
    HTTPS with `tls` (a certificate file and its key file)."""

    def __init__(self, port: int = 0, tls=None):
        self.received = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0))).decode("utf-8")
                with outer.lock:
                    outer.received.append(({k: v for k, v in self.headers.items()}, body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.scheme = "http"
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            self.scheme = "https"
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/hooks"

    def wait_for(self, count: int, timeout: float = 20.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.05)
        raise AssertionError(f"expected {count} webhooks, got {len(self.received)}")

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@contextlib.contextmanager
def bond_with(env=None, nofile=None, ca=None):
    """A running Bond with `env` on top of the test defaults, stopped afterwards."""
    with tempfile.TemporaryDirectory() as data_dir:
        b = Bond(data_dir, env, nofile, ca)
        b.start()
        try:
            yield b
            b.stop()
        finally:
            b.kill()


@pytest.fixture
def bond():
    with bond_with() as b:
        yield b


# TEST-NET-2: a public address no interface of this host has.
PUBLIC_IP = "198.51.100.7"
WEBRTC_PORT = 31000


def default_route_ip() -> str:
    """The local address packets to the outside leave from (nothing is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.1", 9))
        return s.getsockname()[0]


def iptables(*rule):
    subprocess.run(["iptables", *rule], check=True, capture_output=True)


@contextlib.contextmanager
def firewall(*rule):
    """An iptables rule (`-t table CHAIN match...`, without -A/-D) in force for the block."""
    table, chain, match = rule[:2], rule[2], rule[3:]
    iptables(*table, "-A", chain, *match)
    try:
        yield
    finally:
        subprocess.run(["iptables", *table, "-D", chain, *match], check=False, capture_output=True)


@contextlib.contextmanager
def one_to_one_nat():
    """A 1:1 NAT in front of this host's WebRTC port, as a cloud provider's: UDP
    for PUBLIC_IP:31000 reaches the host's own address (DNAT), and what the port
    sends leaves as from PUBLIC_IP:31000 (SNAT; replies are rewritten back by
    the kernel's connection tracking). Bond is told only the public address
    (webrtc.public_ip) and stays on its default listen address."""
    local = default_route_ip()
    port = str(WEBRTC_PORT)
    with firewall("-t", "nat", "OUTPUT", "-d", PUBLIC_IP, "-p", "udp", "--dport", port,
                  "-j", "DNAT", "--to-destination", f"{local}:{port}"), \
            firewall("-t", "nat", "POSTROUTING", "-p", "udp", "--sport", port,
                     "-j", "SNAT", "--to-source", f"{PUBLIC_IP}:{port}"):
        yield


def needs_iptables():
    if os.geteuid() != 0 or subprocess.run(["which", "iptables"], capture_output=True).returncode != 0:
        pytest.skip("needs root and iptables (scripts/test installs it) to stand in for a NAT")


@pytest.fixture(params=["default_address", "public_ip_behind_nat"])
def webrtc_bond(request):
    """Bond on its default WebRTC listen address (0.0.0.0:31000), as it is, and
    behind a 1:1 NAT with webrtc.public_ip set: agent tests run both ways."""
    if request.param == "default_address":
        with bond_with() as b:
            yield b
        return
    needs_iptables()
    with one_to_one_nat(), bond_with({"BOND_WEBRTC_PUBLIC_IP": PUBLIC_IP}) as b:
        yield b


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def event_types(received, call_control_id):
    out = []
    for _, body in received:
        data = json.loads(body)["data"]
        if data["payload"].get("call_control_id") == call_control_id:
            out.append(data["event_type"])
    return out


def api(bond, method, path, body=None, key=API_KEY):
    req = urllib.request.Request(
        f"{bond.base_url}{path}",
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10, context=bond.ssl_context) as r:
        return json.loads(r.read() or b"null")


def bridge_to(bond, conn, call, to):
    """Dial `to` (a `loop:` leg, say) on `conn` and bridge `call` with it; the new call's id."""
    other = api(bond, "POST", "/calls", {"connection_id": conn, "to": to, "from": "+15550000000"})["data"]["call_control_id"]
    api(bond, "POST", f"/calls/{call}/actions/bridge", {"call_control_id_to_bridge_with": other})
    return other


def wav_at(url):
    """The WAV at `url`: (channels, rate, interleaved samples)."""
    with urllib.request.urlopen(url, timeout=10) as r:
        data = r.read()
    with tempfile.NamedTemporaryFile(suffix=".wav") as f:
        f.write(data)
        f.flush()
        with wave.open(f.name) as w:
            frames = w.readframes(w.getnframes())
            return w.getnchannels(), w.getframerate(), memoryview(frames).cast("h").tolist()


def tone(hz, rate, samples, amplitude=8000, start=0):
    return [int(amplitude * math.sin(2 * math.pi * hz * (start + n) / rate)) for n in range(samples)]


def rms(samples):
    return math.sqrt(sum(x * x for x in samples) / max(1, len(samples)))


def chunks_of(samples, rate=8000, chunk_ms=100):
    """`samples` cut into whole chunks of `chunk_ms`."""
    size = rate * chunk_ms // 1000
    return [samples[i:i + size] for i in range(0, len(samples) - size + 1, size)]


def ringing_chunks(samples, pair, rate=8000):
    """The loud 100 ms chunks of `samples` that are mostly the two frequencies of `pair`
    (a ringback tone)."""
    return [c for c in chunks_of(samples, rate)
            if rms(c) > 500 and share_at(c, pair[0], rate) + share_at(c, pair[1], rate) > 0.8]


def share_at(samples, hz, rate):
    """Share of the energy at `hz` (Goertzel); near 1 for a clean tone."""
    coeff = 2 * math.cos(2 * math.pi * hz / rate)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + coeff * s1 - s2, s1
    power = s1 * s1 + s2 * s2 - coeff * s1 * s2
    energy = sum(x * x for x in samples) or 1.0
    return 2 * power / (len(samples) * energy)


def shares_by_chunk(samples, hz, rate, chunk_ms=100):
    """`share_at` of each `chunk_ms` of `samples`. One window over a whole second
    is undone by a single concealed or late packet (the tone's phase jumps and the
    halves cancel); per chunk, such a glitch costs one chunk."""
    return [share_at(c, hz, rate) for c in chunks_of(samples, rate, chunk_ms)]


def assert_mostly_tone(samples, hz, rate, floor, what):
    """Most chunks (the median) of `samples` are `hz`; the message lists each chunk's share."""
    shares = shares_by_chunk(samples, hz, rate)
    median = sorted(shares)[len(shares) // 2]
    assert median > floor, f"{what}: {hz} Hz share per 100 ms {[round(s, 2) for s in shares]}"
