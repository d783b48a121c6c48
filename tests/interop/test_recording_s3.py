"""Recordings in a real S3-compatible store: moto's S3 server (PyPI `moto[server]`, an
implementation of Amazon's S3 REST API, not written for Bond), read back with boto3.

A recorded call's WAV lands in the bucket under the configured prefix, its local file
goes, and the signed link from `call.recording.saved` still downloads it. While the
store is down the recording waits on disk; once it is back, it is stored.
"""

import os
import subprocess
import sys
import time
import urllib.request

import boto3
import pytest

from conftest import Receiver, api, bond_with, free_port, share_at, wav_at
from test_sip_trunk import wait_event

BUCKET = "bond-recordings"


class S3Server:
    """moto's S3 server on a port of its own."""

    def __init__(self):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = None

    def start(self):
        server = os.path.join(os.path.dirname(sys.executable), "moto_server")
        self.proc = subprocess.Popen([server, "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                urllib.request.urlopen(self.url, timeout=1)
                break
            except urllib.error.HTTPError:
                break
            except OSError:
                time.sleep(0.1)
        self.client = boto3.client("s3", endpoint_url=self.url, aws_access_key_id="test",
                                   aws_secret_access_key="test", region_name="us-east-1")
        self.client.create_bucket(Bucket=BUCKET)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    def objects(self, prefix, count, timeout=30.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            listed = self.client.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
            if len(listed) >= count:
                return [o["Key"] for o in listed]
            time.sleep(0.2)
        raise AssertionError(f"{count} objects under {prefix} not stored in {timeout} s")


@pytest.fixture
def s3():
    server = S3Server()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def stored_bond(s3):
    env = {
        "BOND_STORAGE_S3_BUCKET": BUCKET,
        "BOND_STORAGE_S3_ENDPOINT": s3.url,
        "BOND_STORAGE_S3_ACCESS_KEY_ID": "test",
        "BOND_STORAGE_S3_SECRET_ACCESS_KEY": "test",
        "BOND_STORAGE_S3_PREFIX": "calls/",
    }
    with bond_with(env) as b:
        yield b


def record_a_tone(bond, receiver, hz):
    """A call saying `hz`, recorded for 600 ms: its `call.recording.saved` payload."""
    body = {"application_name": "s3", "webhook_event_url": receiver.url}
    conn = api(bond, "POST", "/call_control_applications", body)["data"]["id"]
    call = api(bond, "POST", "/calls", {"connection_id": conn, "to": f"loop:tone?hz={hz}", "from": "+15550001111"})
    cid = call["data"]["call_control_id"]
    api(bond, "POST", f"/calls/{cid}/actions/record_start", {"channels": "single", "format": "wav"})
    time.sleep(0.6)
    api(bond, "POST", f"/calls/{cid}/actions/record_stop", {})
    saved = wait_event(receiver, "call.recording.saved", call_control_id=cid)
    api(bond, "POST", f"/calls/{cid}/actions/hangup", {})
    return saved


def local_wavs(bond):
    found = []
    for root, _, files in os.walk(os.path.join(bond.data_dir, "recordings")):
        found += [os.path.join(root, f) for f in files if f.endswith(".wav")]
    return found


def test_a_recording_is_stored_in_the_bucket_and_its_link_still_downloads_it(stored_bond, receiver, s3):
    saved = record_a_tone(stored_bond, receiver, 700)
    key = s3.objects("calls/", 1)[0]
    assert key.endswith(f"/{saved['recording_id']}.wav"), key
    stored = s3.client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    deadline = time.time() + 10
    while local_wavs(stored_bond) and time.time() < deadline:
        time.sleep(0.1)
    assert not local_wavs(stored_bond), "the local file goes once stored"
    with urllib.request.urlopen(saved["recording_urls"]["wav"], timeout=10) as r:
        assert r.read() == stored, "the signed link serves the stored object"
    channels, rate, samples = wav_at(saved["recording_urls"]["wav"])
    assert (channels, rate) == (1, 8000)
    assert len(samples) >= 4000 and share_at(samples[800:], 700, rate) > 0.9


def test_a_recording_waits_while_the_store_is_down_and_is_stored_once_it_is_back(stored_bond, receiver, s3):
    s3.stop()
    saved = record_a_tone(stored_bond, receiver, 1100)
    time.sleep(2)
    assert len(local_wavs(stored_bond)) == 1, "kept on disk while the store is down"
    with urllib.request.urlopen(saved["recording_urls"]["wav"], timeout=10) as r:
        assert r.status == 200, "and downloadable from there"
    s3.start()  # a fresh moto: the same port, an empty bucket
    key = s3.objects("calls/", 1, timeout=90)[0]
    assert key.endswith(f"/{saved['recording_id']}.wav"), key
    _, rate, samples = wav_at(saved["recording_urls"]["wav"])
    assert share_at(samples[800:], 1100, rate) > 0.9
