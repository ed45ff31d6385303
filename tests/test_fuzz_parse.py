"""Coverage-guided fuzzing of parse_message with atheris (libFuzzer), for a bounded time.

The test runs this file as a script in a child process: atheris needs the process to
itself (it installs its own signal and exit handlers) and its instrumented imports must
not leak into the rest of the suite. Each input must either parse or raise ParseError,
and no input (at most _MAX_LEN bytes) may take more than _SLOW_SECONDS of CPU time; a
failing input is written to the test's temporary folder and shown, to become a
regression test in test_hostile_mail.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

atheris = pytest.importorskip("atheris", reason="atheris (the dev extra) is not installed")

HERE = Path(__file__).resolve().parent
SEEDS = HERE / "data" / "mail"
# libFuzzer's own limits: run time of the campaign and input size.
_SECONDS = 25
_MAX_LEN = 4096
# "A fraction of a second" for a few KB, under coverage instrumentation (which makes
# the code some 2-3 times slower than it runs in the daemon).
_SLOW_SECONDS = 0.5


def _one_input(data: bytes) -> None:
    from triage_daemon.errors import ParseError
    from triage_daemon.parse.message import parse_message

    start = time.thread_time()
    try:
        mail = parse_message(data)
    except ParseError:
        mail = None
    spent = time.thread_time() - start
    if spent > _SLOW_SECONDS:
        raise AssertionError(f"{len(data)} bytes took {spent:.2f} s of CPU time to parse")
    if mail is not None and not mail.message_id:
        raise AssertionError("parsed without a Message-ID")


def _fuzz(argv: list[str]) -> None:
    with atheris.instrument_imports():
        import triage_daemon.parse.body  # noqa: F401
        import triage_daemon.parse.charsets  # noqa: F401
        import triage_daemon.parse.headers  # noqa: F401
        import triage_daemon.parse.html  # noqa: F401
        import triage_daemon.parse.message  # noqa: F401
        import triage_daemon.parse.quotes  # noqa: F401
    atheris.Setup(argv, _one_input)
    atheris.Fuzz()


def test_fuzzer_finds_no_exception_and_no_slow_input(tmp_path):
    # libFuzzer writes new corpus entries into the first folder: a copy, not the samples.
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for seed in sorted(SEEDS.glob("*.eml")):
        (corpus / seed.name).write_bytes(seed.read_bytes()[:_MAX_LEN])
    command = [
        sys.executable,
        __file__,
        str(corpus),
        f"-max_total_time={_SECONDS}",
        f"-max_len={_MAX_LEN}",
        f"-artifact_prefix={tmp_path}/",
        "-timeout=10",
        "-rss_limit_mb=1024",
        "-print_final_stats=1",
    ]
    run = subprocess.run(
        command,
        capture_output=True,
        text=True,
        # A guard against a hang, not a speed test: a loaded machine starts atheris slowly.
        timeout=_SECONDS + 240,
        env={**os.environ, "PYTHONPATH": str(HERE.parent)},
    )
    found = sorted(p for p in tmp_path.iterdir() if p.is_file())
    inputs = "\n".join(f"{p.name}: {p.read_bytes()[:300]!r}" for p in found)
    assert run.returncode == 0, f"{run.stderr[-3000:]}\nfailing inputs:\n{inputs}"
    # The campaign really ran: libFuzzer reports how many inputs it executed.
    executed = [
        line for line in run.stderr.splitlines() if "stat::number_of_executed_units" in line
    ]
    assert executed and int(executed[0].split(":")[-1]) > 1000, run.stderr[-2000:]


if __name__ == "__main__":
    _fuzz(sys.argv)
