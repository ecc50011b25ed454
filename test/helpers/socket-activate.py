#!/usr/bin/env python3
"""Does what systemd does for socket activation, for tests: binds and
listens on 127.0.0.1:0, prints "PORT <n>", puts the socket on fd 3, sets
LISTEN_FDS=1, LISTEN_FDNAMES=<name>, LISTEN_PID=<own pid> and execs argv."""
import os, socket, sys

name, argv = sys.argv[1], sys.argv[2:]
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
s.listen(128)
print(f"PORT {s.getsockname()[1]}", flush=True)
os.dup2(s.fileno(), 3)
os.set_inheritable(3, True)
env = dict(os.environ, LISTEN_FDS="1", LISTEN_FDNAMES=name, LISTEN_PID=str(os.getpid()))
os.execvpe(argv[0], argv, env)
