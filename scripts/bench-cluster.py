"""Cluster figures for BENCHMARKS.md (docs/cluster.md): nodes on one Postgres
database and the local NATS, on this machine.

- set-up rate: dials (loop:echo) and hangups through one node, then through
  three nodes round-robin (each dial placed, two in three on another node),
  alternated A/B/A/B, 8 clients each;
- the NATS round trip an action adds: client_state_update sent to the node
  carrying the call, then to the other node (forwarded), alternated;
- a bridge across nodes: a sipp caller on node 1 bridged with a loop:echo on
  node 1, then on node 2, alternated (4 rounds of 500 packets each): the
  round trip of each packet the caller sends, p50 and p99;
- failover: a node carrying calls killed with SIGKILL, ten times: seconds from
  the kill to the last of its calls' call.hangup received;
- with `passthrough` (only): 500 bridged passthrough SIP pairs for 20 s
  (`target/release/bridge-load`) on a lone node, then on a node sharing the
  database and NATS with two more, alternated twice: the node's CPU and
  memory per call.

    BOND_BIN=target/release/bond target/interop-venv/bin/python scripts/bench-cluster.py \
        postgres://postgres@127.0.0.1:5432/test [echo | passthrough]

With `echo`, only the bridge across nodes is measured.
"""

import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "interop"))
from conftest import API_KEY, Bond, Receiver, api  # noqa: E402

NATS = "nats://127.0.0.1:4222"


def fresh_schema(base):
    schema = f"bench_{uuid.uuid4().hex}"
    subprocess.run(["psql", base, "-qc", f"CREATE SCHEMA {schema}"], check=True, capture_output=True)
    return f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"


def node_env(i, url, nats=True):
    return {
        "BOND_DATABASE_URL": url,
        **({"BOND_CLUSTER_NATS_URL": NATS} if nats else {}),
        "BOND_HTTP_LISTEN": f"127.0.0.1:{8080 + i}",
        "BOND_SIP_UDP_LISTEN": f"0.0.0.0:{5060 + 10 * i}",
        "BOND_SIP_TCP_LISTEN": f"0.0.0.0:{5060 + 10 * i}",
        "BOND_WEBRTC_LISTEN": f"0.0.0.0:{31000 + i}",
        "BOND_RTP_PORT_MIN": str(20000 + 3334 * i),
        "BOND_RTP_PORT_MAX": str(20000 + 3334 * i + 3332),
        "BOND_RATE_LIMIT_PER_SECOND": "100000",
        "BOND_RATE_LIMIT_BURST": "100000",
        "BOND_LOG_LEVEL": "error",
    }


@contextlib.contextmanager
def cluster(n, url, nats=True, first=0, extra=None):
    """`n` nodes on `url`, on the addresses of nodes `first`, `first` + 1, ..."""
    dirs = [tempfile.TemporaryDirectory() for _ in range(n)]
    nodes = [Bond(d.name, {**node_env(first + i, url, nats), **(extra or {})}) for i, d in enumerate(dirs)]
    try:
        for b in nodes:
            b.start()
        yield nodes
    finally:
        for b in nodes:
            b.kill()
        for d in dirs:
            d.cleanup()


def dial(bond, connection):
    body = {"connection_id": connection, "to": "loop:echo", "from": "+13125550100"}
    return api(bond, "POST", "/calls", body)["data"]["call_control_id"]


def setup_rate(nodes, connection, calls=400, clients=8):
    """Dials and hangups a second, spread round-robin over `nodes`."""

    def one(i):
        bond = nodes[i % len(nodes)]
        call = dial(bond, connection)
        api(bond, "POST", f"/calls/{call}/actions/hangup", {})

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, range(calls)))
    return calls / (time.perf_counter() - start)


def timed_action(bond, call, n=200):
    out = []
    for _ in range(n):
        start = time.perf_counter()
        api(bond, "POST", f"/calls/{call}/actions/client_state_update", {"client_state": "YQ=="})
        out.append((time.perf_counter() - start) * 1000)
    return out


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


def echo_across_nodes(base, receiver):
    from test_cluster_bridge import Caller, bridge, dial_on
    from test_cluster import name_of
    from test_sip_trunk import rtp_caller, trunk_connection, wait_event

    with cluster(2, fresh_schema(base)) as (a, b):
        connection = trunk_connection(a, receiver)
        caller, media = rtp_caller(a, 300000)
        call = wait_event(receiver, "call.initiated", direction="incoming")["call_control_id"]
        api(a, "POST", f"/calls/{call}/actions/answer", {})
        port = int(caller.logged(r"BOND_RTP (\d+) ").group(1))
        body = {"connection_id": connection, "to": "loop:echo", "from": "+15550000000", "link_to": call}
        near = api(a, "POST", "/calls", body)["data"]["call_control_id"]
        far = dial_on(a, b, connection, name_of(b))
        rtp, trips = Caller(media, port), {near: [], far: []}
        for _ in range(4):
            for echo in (near, far):
                bridge(a, call, echo)
                got = rtp.round_trips(500)
                print(f"  {'same node' if echo == near else 'two nodes'}: {500 - len(got)} lost, "
                      f"p50 {pct(got, 50):.2f} ms, p99 {pct(got, 99):.2f} ms")
                trips[echo] += got
        print("echo round trip of a SIP caller's packets (2,000 each, alternated in blocks of 500):")
        for name, v in (("echo on the caller's node", trips[near]), ("echo on the other node", trips[far])):
            print(f"  {name}: p50 {pct(v, 50):.2f} ms, p99 {pct(v, 99):.2f} ms")
        api(a, "POST", f"/calls/{call}/actions/hangup", {})
        caller.wait()


def passthrough_in_a_cluster(base, pairs=500, seconds=20):
    """bridge-load's own node alone (SQLite), then beside two more on Postgres and NATS."""
    load = [os.path.join(os.path.dirname(os.environ["BOND_BIN"]), "bridge-load"), str(pairs), str(seconds),
            "--bond", os.environ["BOND_BIN"]]
    lines = ("cpu=", "packets sent", "marked packets, ms")
    for round_ in range(int(os.environ.get("ROUNDS", "2"))):
        for n in (3, 1)[: int(os.environ.get("CONFIGS", "2"))]:
            # bridge-load's node takes node 0's RTP ports; in a cluster, nodes 1 and 2 run beside it.
            env = {**os.environ, "BOND_RTP_PORT_MIN": "20000", "BOND_RTP_PORT_MAX": "23332"}
            others = contextlib.nullcontext()
            if n == 3:
                url = fresh_schema(base)
                env.update({"BOND_DATABASE_URL": url, "BOND_CLUSTER_NATS_URL": NATS})
                # The organization and key bridge-load's node expects (tests/support/bond_process.rs).
                others = cluster(2, url, first=1, extra={"BOND_BOOTSTRAP_API_KEY": "tools-bootstrap-key-0001"})
            with others:
                out = subprocess.run(load, env=env, capture_output=True, text=True, timeout=300)
            print(f"  round {round_ + 1}: {'alone' if n == 1 else 'one of three nodes'}:")
            if out.returncode != 0:
                print(out.stderr[-3000:])
            for line in out.stderr.splitlines():
                if any(k in line for k in lines):
                    print(f"    {line}")


def main():
    base = sys.argv[1] if len(sys.argv) > 1 else "postgres://postgres@127.0.0.1:5432/test"
    receiver = Receiver()
    hook = {"application_name": "bench", "webhook_event_url": receiver.url}
    if sys.argv[2:] == ["echo"]:
        echo_across_nodes(base, receiver)
        return receiver.close()
    if sys.argv[2:] == ["passthrough"]:
        print("500 bridged passthrough SIP pairs for 20 s (bridge-load), alternated:")
        passthrough_in_a_cluster(base)
        return receiver.close()

    print("set-up rate (dial + hangup a second, 400 calls, 8 clients), alternated:")
    for round_ in range(2):
        for n in (1, 3):
            with cluster(n, fresh_schema(base)) as nodes:
                connection = api(nodes[0], "POST", "/call_control_applications", hook)["data"]["id"]
                setup_rate(nodes, connection, calls=40)  # warm-up
                rate = setup_rate(nodes, connection)
                print(f"  round {round_ + 1}: {n} node(s): {rate:.0f} calls/s")

    with cluster(2, fresh_schema(base)) as (a, b):
        connection = api(a, "POST", "/call_control_applications", hook)["data"]["id"]
        call = dial(a, connection)
        direct, forwarded = [], []
        timed_action(a, call, 50)
        timed_action(b, call, 50)
        for _ in range(4):
            direct += timed_action(a, call)
            forwarded += timed_action(b, call)
        print("action round trip (client_state_update, 800 each, alternated in blocks of 200):")
        for name, v in (("to the carrying node", direct), ("forwarded over NATS", forwarded)):
            print(f"  {name}: p50 {pct(v, 50):.2f} ms, p99 {pct(v, 99):.2f} ms")
        print(f"  added: p50 {pct(forwarded, 50) - pct(direct, 50):.2f} ms, "
              f"p99 {pct(forwarded, 99) - pct(direct, 99):.2f} ms")

    echo_across_nodes(base, receiver)

    # Without the bus, dials stay on the node they reach: B's calls are B's.
    url = fresh_schema(base)
    with cluster(1, url, nats=False) as (a,):
        connection = api(a, "POST", "/call_control_applications", hook)["data"]["id"]
        times = []
        for kill in range(10):
            with tempfile.TemporaryDirectory() as d:
                b = Bond(d, node_env(1, url, nats=False))
                b.start()
                calls = {dial(b, connection) for _ in range(5)}
                time.sleep(1.5)  # a renewal or two
                b.proc.kill()
                killed = time.perf_counter()
                b.proc.wait()
                while True:
                    with receiver.lock:
                        ended = {json.loads(body)["data"]["payload"]["call_control_id"] for _, body in receiver.received
                                 if json.loads(body)["data"]["event_type"] == "call.hangup"}
                    if calls <= ended:
                        break
                    if time.perf_counter() - killed > 30:
                        raise SystemExit(f"kill {kill + 1}: calls not reported ended in 30 s")
                    time.sleep(0.02)
                times.append(time.perf_counter() - killed)
                print(f"  kill {kill + 1}: {times[-1]:.2f} s")
        print(f"failover, kill to last call.hangup received (10 kills): "
              f"median {statistics.median(times):.2f} s, min {min(times):.2f} s, max {max(times):.2f} s")
    receiver.close()


if __name__ == "__main__":
    main()
