"""Loopback HTTP services for the tests: the healthy target a probe reads, and a server to run it."""

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def free_port():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


class QuietHandler(BaseHTTPRequestHandler):
    """A handler that logs nothing and replies with one call."""

    def log_message(self, *args):  # pylint: disable=arguments-differ
        pass

    def reply(self, status, body=b"", content_type="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class HealthyHandler(QuietHandler):
    """200 and ``body`` to every GET, after the server's ``delay`` seconds; the server keeps the
    ``X-Chaos-Probe`` header values it was sent in ``probe_headers``."""

    body = b'{"status": "ok"}'

    def do_GET(self):  # noqa: N802 (the http.server name)
        time.sleep(getattr(self.server, "delay", 0.0))
        header = self.headers.get("X-Chaos-Probe")
        if header and hasattr(self.server, "probe_headers"):
            self.server.probe_headers.add(header)
        self.reply(200, self.body)


class Service:
    """A ThreadingHTTPServer on 127.0.0.1 in a daemon thread; a context manager that shuts it down.

    Keyword arguments become attributes of the server, where handlers read them.
    """

    def __init__(self, handler=HealthyHandler, port=0, path="/", **attributes):
        self.server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.server.probe_headers = set()
        for key, value in attributes.items():
            setattr(self.server, key, value)
        self.port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d%s" % (self.port, path)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
