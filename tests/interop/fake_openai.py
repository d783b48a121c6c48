"""A stand-in for an OpenAI-compatible chat-completions server, written from
OpenAI's published API reference (POST /v1/chat/completions; with
`"stream": true` the answer comes as server-sent events, one
`chat.completion.chunk` object per `data:` line, the text in
`choices[0].delta.content`, `finish_reason` on the last choice chunk, a final
chunk with empty `choices` and `usage` when `stream_options.include_usage` is
set, then `data: [DONE]`; errors are a JSON body `{"error": {...}}` with an
HTTP error status). Nothing of Bond's is used.

Answers are scripted: `answers` is called with the request's messages and
returns the text to stream, a `ToolCall` (streamed as `delta.tool_calls`
pieces, its arguments split across chunks, ending with `finish_reason:
"tool_calls"`), or a `Failure`, so a test decides what the "model" says on
each turn. Every request is kept in `requests`.
"""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Failure:
    """Answer with this HTTP status and error message instead of text."""

    def __init__(self, status, message):
        self.status, self.message = status, message


class ToolCall:
    """Call the function `name` with `arguments` (a dict), after saying `text` (if any)."""

    def __init__(self, name, arguments, text=""):
        self.name, self.arguments, self.text = name, arguments, text


class FakeChat:
    def __init__(self, answers, first_token_delay=0.0, words_per_chunk=2, chunk_delay=0.02):
        self.answers = answers
        self.first_token_delay = first_token_delay
        self.words_per_chunk = words_per_chunk
        self.chunk_delay = chunk_delay
        self.requests = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                if self.path.rstrip("/") != "/v1/chat/completions":
                    return self.error(404, f"no route {self.path}")
                fake.requests.append({"auth": self.headers.get("Authorization"), **body})
                answer = fake.answers(body.get("messages", []))
                if isinstance(answer, Failure):
                    return self.error(answer.status, answer.message)
                if not body.get("stream"):
                    return self.error(400, "this stand-in only streams")
                fake.stream(self, body, answer)

            def error(self, status, message):
                data = json.dumps({"error": {"message": message, "type": "server_error", "code": None}}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def stream(self, handler, body, text):
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Cache-Control", "no-cache")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        created = int(time.time())

        def chunk(choices, **extra):
            event = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": created,
                     "model": body.get("model", "fake"), "choices": choices, **extra}
            send(f"data: {json.dumps(event)}\n\n")

        def send(text):
            data = text.encode()
            handler.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            handler.wfile.flush()

        try:
            time.sleep(self.first_token_delay)
            chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
            call = text if isinstance(text, ToolCall) else None
            text = call.text if call else text
            words = text.split(" ") if text else []
            for i in range(0, len(words), self.words_per_chunk):
                piece = " ".join(words[i:i + self.words_per_chunk])
                piece = piece + " " if i + self.words_per_chunk < len(words) else piece
                chunk([{"index": 0, "delta": {"content": piece}, "finish_reason": None}])
                time.sleep(self.chunk_delay)
            if call:
                arguments = json.dumps(call.arguments)
                half = len(arguments) // 2
                first = {"index": 0, "id": "call_fake1", "type": "function",
                         "function": {"name": call.name, "arguments": arguments[:half]}}
                chunk([{"index": 0, "delta": {"tool_calls": [first]}, "finish_reason": None}])
                rest = {"index": 0, "function": {"arguments": arguments[half:]}}
                chunk([{"index": 0, "delta": {"tool_calls": [rest]}, "finish_reason": None}])
            chunk([{"index": 0, "delta": {}, "finish_reason": "tool_calls" if call else "stop"}])
            if body.get("stream_options", {}).get("include_usage"):
                prompt = sum(len((m.get("content") or "").split()) for m in body.get("messages", []))
                chunk([], usage={"prompt_tokens": prompt, "completion_tokens": len(words), "total_tokens": prompt + len(words)})
            send("data: [DONE]\n\n")
            handler.wfile.write(b"0\r\n\r\n")
            handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading (a newer turn replaced this answer)

    def close(self):
        self.server.shutdown()
        self.server.server_close()
