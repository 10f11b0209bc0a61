#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# A fake journal for the e2e tests: a datagram socket bound at SOCKET; every
# entry (journald's native protocol: KEY=VALUE lines, or KEY, '\n', a 64-bit
# little-endian length, the value, '\n') goes to LOG as one JSON object.
# usage: journal-receiver.py SOCKET LOG
import json
import socket
import struct
import sys

SOCK, LOG = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(SOCK)
while True:
    data = s.recv(1 << 20)
    entry, i = {}, 0
    while i < len(data):
        nl = data.index(b"\n", i)
        line = data[i:nl]
        if b"=" in line:
            k, v = line.split(b"=", 1)
            i = nl + 1
        else:
            k = line
            (n,) = struct.unpack("<Q", data[nl + 1:nl + 9])
            v = data[nl + 9:nl + 9 + n]
            i = nl + 9 + n + 1
        entry[k.decode()] = v.decode("utf-8", "replace")
    with open(LOG, "a") as f:
        f.write(json.dumps(entry) + "\n")
