"""bench_send.py's journal writer: triage_daemon/journal_writer.py with its dots timed.

Run in place of the writer (the same arguments); appends to PATH.timing one line per
dot: Message-ID, and time.perf_counter() (CLOCK_MONOTONIC, the same in every process)
when the dot's send() begins, when the line's write() begins, when its fdatasync ends.
"""

import json
import os
import sys
import time

sys.path.insert(
    0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "triage_daemon")
)

import journal_writer  # noqa: E402

timing = open(sys.argv[1] + ".timing", "a", buffering=1)
current: dict[str, float] = {}
send_all = journal_writer.send_all


def timed_send_all(fd, data):
    current.clear()
    current["dot"] = time.perf_counter()
    send_all(fd, data)


class TimedOs:
    def __getattr__(self, name):
        return getattr(os, name)

    def write(self, fd, data):
        # send_all writes the dot through this too, as a memoryview.
        if bytes(data[:6]) == b'["dot"' and "dot" in current:
            current["line"] = time.perf_counter()
            current["id"] = json.loads(data)[1]
        return os.write(fd, data)

    def fdatasync(self, fd):
        os.fdatasync(fd)
        if "line" in current:
            print(current["id"], current["dot"], current["line"], time.perf_counter(), file=timing)
            current.clear()


journal_writer.send_all = timed_send_all
journal_writer.os = TimedOs()
sys.exit(journal_writer.main())
