#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""qmp.py - a tiny QMP client for the QEMU tests (qemu_test.sh)

  qmp.py SOCK COMMAND [ARGS-JSON]    run one command, print its "return"
                                     as JSON; exit 1 with the error on
                                     stderr if QEMU refused it
  qmp.py SOCK --wait-ready SECS      wait until QEMU answers on SOCK
  qmp.py SOCK --wait-migration SECS  poll query-migrate until completed,
                                     failed or cancelled; print the last
                                     answer; exit 0 only for completed

Exit status 2: no answer (no socket, QEMU gone, time out).
"""
import json
import socket
import sys
import time

DONE = ("completed", "failed", "cancelled")


class Qmp:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.file = self.sock.makefile("rw")
        self.read()                             # the greeting
        self.cmd("qmp_capabilities")

    def read(self):
        while True:
            line = self.file.readline()
            if not line:
                raise ConnectionError("QEMU closed the QMP socket")
            msg = json.loads(line)
            if "event" not in msg:
                return msg

    def cmd(self, name, args=None):
        req = {"execute": name}
        if args:
            req["arguments"] = args
        self.file.write(json.dumps(req) + "\n")
        self.file.flush()
        return self.read()


def connect(path, secs):
    deadline = time.monotonic() + secs
    while True:
        try:
            return Qmp(path)
        except (OSError, ConnectionError, ValueError):
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.2)


def main(argv):
    if len(argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    path, what = argv[1], argv[2]
    try:
        if what == "--wait-ready":
            connect(path, float(argv[3]))
            return 0
        if what == "--wait-migration":
            secs = float(argv[3])
            qmp = connect(path, secs)
            deadline = time.monotonic() + secs
            while True:
                ans = qmp.cmd("query-migrate").get("return", {})
                if ans.get("status") in DONE or time.monotonic() >= deadline:
                    print(json.dumps(ans))
                    return 0 if ans.get("status") == "completed" else 1
                time.sleep(0.5)
        qmp = connect(path, 10)
        ans = qmp.cmd(what, json.loads(argv[3]) if len(argv) > 3 else None)
    except (OSError, ConnectionError, ValueError) as e:
        sys.stderr.write("qmp.py: %s: %s\n" % (path, e))
        return 2
    if "error" in ans:
        sys.stderr.write("qmp.py: %s: %s\n" % (what, ans["error"].get("desc")))
        return 1
    print(json.dumps(ans.get("return")))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
