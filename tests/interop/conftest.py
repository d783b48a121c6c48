"""Fixtures for interop tests: a real `bond serve` process and a webhook receiver.

The Bond binary comes from BOND_BIN (scripts/test builds it); each test gets its
own data directory, HTTP port and bootstrap API key.
"""

import contextlib
import json
import math
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
import wave
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

API_KEY = "KEYINTEROP00000000000000000000000001"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Bond:
    """A `bond serve` child process on its own data directory and port."""

    def __init__(self, data_dir: str, extra_env=None):
        self.data_dir = data_dir
        self.extra_env = extra_env or {}
        self.port = free_port()
        self.sip_port = free_port()
        self.proc = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v2"

    def start(self):
        env = {
            "PATH": os.environ.get("PATH", ""),
            "BOND_DATA_DIR": self.data_dir,
            "BOND_HTTP_LISTEN": f"127.0.0.1:{self.port}",
            "BOND_HTTP_PUBLIC_URL": f"http://127.0.0.1:{self.port}",
            "BOND_BOOTSTRAP_API_KEY": API_KEY,
            "BOND_RTP_BIND_IP": "127.0.0.1",
            "BOND_SIP_UDP_LISTEN": f"127.0.0.1:{self.sip_port}",
            "BOND_SIP_TCP_LISTEN": f"127.0.0.1:{self.sip_port}",
            "BOND_WEBRTC_LISTEN": "127.0.0.1:0",
            "BOND_WEBHOOKS_RETRY_INITIAL_MS": "100",
            "BOND_WEBHOOKS_RETRY_MAX_MS": "500",
            "BOND_LOG_LEVEL": "warn",
            # The embedded speech-to-text model scripts/test makes (tests/interop/test_speech.py).
            "BOND_WHISPER_MODEL": os.environ.get("BOND_WHISPER_MODEL", os.path.abspath("target/models/ggml-tiny.en.bin")),
            **self.extra_env,
        }
        bond_bin = os.environ.get("BOND_BIN", "target/debug/bond")
        self.proc = subprocess.Popen([bond_bin, "serve"], env=env, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=1)
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"bond exited: {self.proc.stderr.read()}")
                time.sleep(0.05)
        raise RuntimeError("bond did not become healthy")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            assert self.proc.wait(timeout=30) == 0, self.proc.stderr.read()


class Receiver:
    """Collects webhook POSTs: (headers, raw body), in arrival order."""

    def __init__(self, port: int = 0):
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
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

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
def bond_with(env=None):
    """A running Bond with `env` on top of the test defaults, stopped afterwards."""
    with tempfile.TemporaryDirectory() as data_dir:
        b = Bond(data_dir, env)
        b.start()
        yield b
        b.stop()


@pytest.fixture
def bond():
    with bond_with() as b:
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
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"null")


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


def share_at(samples, hz, rate):
    """Share of the energy at `hz` (Goertzel); near 1 for a clean tone."""
    coeff = 2 * math.cos(2 * math.pi * hz / rate)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + coeff * s1 - s2, s1
    power = s1 * s1 + s2 * s2 - coeff * s1 * s2
    energy = sum(x * x for x in samples) or 1.0
    return 2 * power / (len(samples) * energy)
