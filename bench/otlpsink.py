#!/usr/bin/env python3
"""An OTLP/HTTP trace sink for bench/run.sh's sampling run (h): answers every export with 200 and
drops it, so crm pays for making, batching and sending its sampled spans, and nothing else.

Usage: otlpsink.py PORT
"""

import http.server
import sys


class Sink(http.server.BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (the http.server naming)
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Sink).serve_forever()
