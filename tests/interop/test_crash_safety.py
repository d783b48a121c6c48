"""kill -9 at random points: nothing the API answered or a webhook announced is
lost. A workload dials calls recorded from answer, bridges them and hangs some
up while the application's webhook endpoint answers 500 (so the outbox grows);
Bond is killed at a random moment, started again on the same database, and the
endpoint starts answering 200. Then:

- every call the API answered for exists, and its `call.initiated` arrives;
- every bridge the API answered for has its `call.bridged` for both calls;
- every hangup the API answered for has its `call.hangup`;
- every call or recording a webhook named before the kill exists after it.

Run in loops on SQLite and, when BOND_TEST_DATABASE_URL is set, on Postgres
(a fresh schema each).
"""

import contextlib
import json
import os
import random
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import Bond, api

ROUNDS = int(os.environ.get("BOND_CRASH_ROUNDS", "4"))


class FlakyReceiver:
    """A webhook endpoint that keeps every body it is sent and answers `status`."""

    def __init__(self):
        self.status = 500
        self.bodies = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with outer.lock:
                    outer.bodies.append(json.loads(body)["data"])
                self.send_response(outer.status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def events(self):
        with self.lock:
            return list(self.bodies)

    def has(self, event_type, call):
        return any(e["event_type"] == event_type and e["payload"].get("call_control_id") == call
                   for e in self.events())

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def postgres_url():
    """A fresh schema in BOND_TEST_DATABASE_URL's database, or None."""
    base = os.environ.get("BOND_TEST_DATABASE_URL")
    if not base:
        return None
    schema = f"crash_{uuid.uuid4().hex}"
    subprocess.run(["psql", base, "-qc", f"CREATE SCHEMA {schema}"], check=True, capture_output=True)
    return f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"


class Workload:
    """Dials, bridges and hangs up until stopped; keeps what the API acknowledged."""

    def __init__(self, bond, connection):
        self.bond, self.connection = bond, connection
        self.dialed, self.bridged, self.hung_up = [], [], []
        self.stop = threading.Event()

    def call(self, method, path, body):
        try:
            return polite(self.bond, method, path, body)
        except (urllib.error.URLError, ConnectionError, OSError):
            return None  # refused, or Bond died under the request: nothing was acknowledged

    def dial(self, to, **extra):
        body = {"connection_id": self.connection, "to": to, "from": "+13125550100", **extra}
        answer = self.call("POST", "/calls", body)
        if answer:
            self.dialed.append(answer["data"]["call_control_id"])
            return answer["data"]["call_control_id"]
        return None

    def run(self):
        while not self.stop.is_set():
            a = self.dial("loop:tone?hz=700", record="record-from-answer", record_channels="dual")
            b = self.dial("loop:echo")
            if not (a and b):
                time.sleep(0.05)
                continue
            if self.call("POST", f"/calls/{a}/actions/bridge", {"call_control_id_to_bridge_with": b}):
                self.bridged.append((a, b))
            if random.random() < 0.5 and self.call("POST", f"/calls/{b}/actions/hangup", {}):
                self.hung_up.append(b)


def polite(bond, method, path, body=None):
    """`api`, waiting out the rate limit (50 requests a second per key by default)."""
    for _ in range(50):
        try:
            return api(bond, method, path, body)
        except urllib.error.HTTPError as e:
            if e.code != 429:
                raise
            time.sleep(float(e.headers.get("retry-after") or 0.2))
    raise AssertionError(f"{method} {path}: rate-limited for too long")


def wait_until(check, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@contextlib.contextmanager
def crashing_bond(database_url):
    with tempfile.TemporaryDirectory() as data_dir:
        env = {"BOND_DATABASE_URL": database_url} if database_url else {}
        bond = Bond(data_dir, env)
        try:
            yield bond
        finally:
            bond.kill()


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgres", marks=pytest.mark.host_services)])
def test_kill_9_at_random_points_loses_nothing_the_api_or_a_webhook_announced(database):
    url = postgres_url() if database == "postgres" else None
    if database == "postgres" and not url:
        pytest.skip("BOND_TEST_DATABASE_URL is not set")
    rng = random.Random(os.environ.get("BOND_CRASH_SEED", str(time.time())))
    receiver = FlakyReceiver()
    try:
        with crashing_bond(url) as bond:
            bond.start()
            body = {"application_name": "crash", "webhook_event_url": receiver.url}
            connection = api(bond, "POST", "/call_control_applications", body)["data"]["id"]
            for round_ in range(ROUNDS):
                receiver.status = 500
                work = Workload(bond, connection)
                workers = [threading.Thread(target=work.run) for _ in range(3)]
                for w in workers:
                    w.start()
                # The kill falls at a random point once the work is under way (a slow
                # machine may take longer than the shortest draw to answer a first dial).
                wait_until(lambda: work.dialed, 30, f"round {round_}: a first acknowledged dial")
                time.sleep(rng.uniform(0.0, 3.5))
                bond.proc.kill()  # SIGKILL
                bond.proc.wait()
                work.stop.set()
                for w in workers:
                    w.join(10)
                announced = receiver.events()

                bond.start()
                receiver.status = 200
                for call in work.dialed:
                    assert polite(bond, "GET", f"/calls/{call}")["data"]["call_control_id"] == call
                wait_until(lambda: all(receiver.has("call.initiated", c) for c in work.dialed), 30,
                           f"round {round_}: call.initiated of every acknowledged dial")
                wait_until(lambda: all(receiver.has("call.bridged", c) for pair in work.bridged for c in pair), 30,
                           f"round {round_}: call.bridged of every acknowledged bridge")
                wait_until(lambda: all(receiver.has("call.hangup", c) for c in work.hung_up), 30,
                           f"round {round_}: call.hangup of every acknowledged hangup")
                named = {e["payload"]["call_control_id"] for e in announced if e["payload"].get("call_control_id")}
                for call in named - set(work.dialed):
                    polite(bond, "GET", f"/calls/{call}")
                for event in announced:
                    payload = event["payload"]
                    if event["event_type"] == "call.recording.saved":
                        recording = polite(bond, "GET", f"/recordings/{payload['recording_id']}")["data"]
                        assert recording["call_control_id"] == payload["call_control_id"], (round_, recording)
                assert work.dialed, "the workload never got going"
    finally:
        receiver.close()
