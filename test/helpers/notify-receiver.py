#!/usr/bin/env python3
"""A NOTIFY_SOCKET for tests: prints one JSON line per sd_notify datagram,
with the sender's pid (SO_PASSCRED) and the KEY=VALUE fields."""
import json, os, socket, struct, sys

path = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind(path)
os.chmod(path, 0o777)
print(json.dumps({"listening": path}), flush=True)
while True:
    data, anc, _, _ = s.recvmsg(65536, socket.CMSG_SPACE(12))
    pid = None
    for level, kind, payload in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid = struct.unpack("iII", payload[:12])[0]
    fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
    print(json.dumps({"pid": pid, "fields": fields}), flush=True)
