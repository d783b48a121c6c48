"""A stand-in for ElevenLabs' streaming text-to-speech, written from its
published API reference (`POST /v1/text-to-speech/{voice_id}/stream?output_format=pcm_16000`,
the key in `xi-api-key`, a JSON body with `text`, `model_id` and
`language_code`; the answer is raw 16-bit little-endian PCM at 16 kHz, sent as
it is synthesized). Nothing of Bond's is used.

The speech is a 500 Hz tone, 40 ms per character of the text. How it is sent:
- by default, all at once with a `Content-Length`;
- with `hold` (a threading.Event), in HTTP/1.1 chunks: the first 300 ms, then
  nothing until `hold` is set, then the rest 100 ms a chunk, five times faster
  than it plays (a test can tell whether the first part was played before the
  rest was sent);
- with `speed`, as a service synthesizing it would: nothing for `first_ms`,
  then 100 ms chunks at `speed` times the speed it plays; with `whole` also,
  all of it in one piece once the last chunk would have been sent (a client
  that waits for the whole answer hears it then).
Every request is kept in `requests` as (voice id, key, JSON body).
"""

import json
import math
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RATE = 16000
CHUNK = RATE * 2 // 10  # 100 ms of 16-bit samples


class FakeElevenLabs:
    def __init__(self, hold=None, speed=None, first_ms=0, whole=False):
        self.requests = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                parts = self.path.split("?")[0].split("/")
                fake.requests.append((parts[3] if len(parts) > 4 else None, self.headers.get("xi-api-key"), body))
                samples = int(RATE * 0.04 * len(body.get("text", "")))
                pcm = b"".join(struct.pack("<h", int(6000 * math.sin(2 * math.pi * 500 * n / RATE)))
                               for n in range(samples))
                self.send_response(200)
                self.send_header("Content-Type", "audio/pcm")
                if speed is not None and whole:
                    time.sleep(first_ms / 1000 + len(pcm) / (2 * RATE) / speed)
                if (hold is None and speed is None) or whole:
                    self.send_header("Content-Length", str(len(pcm)))
                    self.end_headers()
                    self.wfile.write(pcm)
                    return
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                if hold is not None:
                    first = 3 * CHUNK
                    self.chunk(pcm[:first])
                    hold.wait(30)
                    pace = 0.02
                else:
                    first, pace = 0, 0.1 / speed
                    time.sleep(first_ms / 1000)
                for i in range(first, len(pcm), CHUNK):
                    if i > first or hold is not None:
                        time.sleep(pace)
                    self.chunk(pcm[i:i + CHUNK])
                self.chunk(b"")

            def chunk(self, data):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
