#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# A webhook receiver for the e2e tests: every POST's path and JSON body go to
# LOG as one JSON line ({"path": ..., "t": wall-clock seconds, "body": ...},
# appended), and
# the answer is the status the file STATUS holds when the request comes
# (200 if it is missing); "hang" holds the request open until the test ends
# the receiver.  With SLOW set to an event name, a POST of that event waits
# 0.3 s before it is logged and answered, so that a sender that does not
# wait for it would be seen sending the next one first.
# usage: webhook-receiver.py PORT LOG STATUS [SLOW]
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, LOG, STATUS = int(sys.argv[1]), sys.argv[2], sys.argv[3]
SLOW = sys.argv[4] if len(sys.argv) > 4 else None
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(n)
        try:
            body = json.loads(raw)
        except ValueError:
            body = {"unparsed": raw.decode("utf-8", "replace")}
        if SLOW and isinstance(body, dict) and body.get("event") == SLOW:
            time.sleep(0.3)
        with lock, open(LOG, "a") as f:
            f.write(json.dumps({"path": self.path, "ctype": self.headers.get("Content-Type"),
                                "t": time.time(), "body": body}) + "\n")
        try:
            with open(STATUS) as f:
                status = f.read().strip() or "200"
        except OSError:
            status = "200"
        if status == "hang":
            time.sleep(3600)  # ended by the test, by PID
            return
        self.send_response(int(status))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
