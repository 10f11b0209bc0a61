#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# usage: log-flood.py CONTROL_SOCKET N
# N pin / unpin requests for service "web" on the control socket (each makes
# the agent log one line), 20 per connection (the agent's burst per client),
# each reply awaited at most 5 s.  Prints "REQUESTS WORST_REPLY_SECONDS";
# exits 1 on a refused request or a reply that did not come.
import json
import socket
import sys
import time

path, n = sys.argv[1], int(sys.argv[2])
sent, worst = 0, 0.0
while sent < n:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(path)
    f = s.makefile("rwb")
    for _ in range(min(20, n - sent)):
        cidr = "10.9.%d.0/24" % (sent // 2 % 250)
        req = {"cmd": "unpin", "service": "web", "cidr": cidr}
        if sent % 2 == 0:
            req = {"cmd": "pin", "service": "web", "cidr": cidr, "version": 1}
        t = time.monotonic()
        f.write(json.dumps(req).encode() + b"\n")
        f.flush()
        try:
            r = json.loads(f.readline() or b"null")
        except socket.timeout:
            print("no reply within 5 s to request %d" % sent)
            sys.exit(1)
        worst = max(worst, time.monotonic() - t)
        if not r or not r.get("ok"):
            print("request %d refused: %s" % (sent, r))
            sys.exit(1)
        sent += 1
    s.close()
print("%d %.3f" % (sent, worst))
