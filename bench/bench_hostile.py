"""Time each hostile mail of tests/test_hostile_mail.py through parse_message and the classifier.

    .venv/bin/python bench/bench_hostile.py [--timeout 60] [--json OUT] [CASE ...]

Each case runs in its own child process (a regex cannot be interrupted, and one case must not
hold up the next): parse and classify wall time, their CPU time together (what counts on a
shared machine), peak memory (ru_maxrss of the child) and what became of the mail. A case
still running after --timeout seconds is killed and shown as "> timeout". Run it before and
after a change to compare.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from test_hostile_mail import HOSTILE  # noqa: E402


def _measure(name: str, conn) -> None:
    from triage_daemon.errors import ParseError
    from triage_daemon.parse.message import parse_message
    from triage_daemon.triage.classify import Classifier

    classifier = Classifier.load(ROOT / "models")
    raw = HOSTILE[name]()
    result = {"bytes": len(raw)}
    conn.send(dict(result))
    start, cpu = time.perf_counter(), time.process_time()
    try:
        mail = parse_message(raw)
    except ParseError as exc:
        result.update(
            parse_s=time.perf_counter() - start,
            cpu_s=time.process_time() - cpu,
            outcome=f"ParseError: {exc}"[:90],
        )
        conn.send(result | {"rss_mb": _rss_mb()})
        return
    result["parse_s"] = time.perf_counter() - start
    conn.send(dict(result, classify_s=None, outcome="parsed; classifying"))
    start = time.perf_counter()
    try:
        triage = classifier.classify(mail)
        outcome = f"{triage.topic}/{triage.faq}" if triage.technical else "not technical"
    except Exception as exc:  # noqa: BLE001 - reported, not raised: the bench goes on
        outcome = f"{type(exc).__name__}: {exc}"[:90]
    result.update(
        classify_s=time.perf_counter() - start,
        cpu_s=time.process_time() - cpu,
        outcome=outcome,
        rss_mb=_rss_mb(),
    )
    conn.send(result)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_case(name: str, timeout: float) -> dict:
    # A pipe, not a multiprocessing.Queue: a Queue sends from a thread of the child,
    # which a regex holding the GIL never lets run, so a killed child told nothing.
    receiver, sender = multiprocessing.Pipe(duplex=False)
    child = multiprocessing.Process(target=_measure, args=(name, sender))
    child.start()
    sender.close()
    last: dict = {}
    deadline = time.monotonic() + timeout
    while child.is_alive() or receiver.poll():
        if receiver.poll(max(0.0, min(0.5, deadline - time.monotonic()))):
            try:
                last = receiver.recv()
            except EOFError:
                break
        elif time.monotonic() >= deadline:
            child.kill()
            last = dict(last, timed_out=True)
            break
    child.join()
    return last


def _seconds(value, timed_out: bool) -> str:
    if value is None:
        return "> timeout" if timed_out else "-"
    return f"{value:9.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("cases", nargs="*", help="case names (default: all)")
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    names = args.cases or list(HOSTILE)
    print(
        f"{'case':24} {'bytes':>10} {'parse s':>10} {'classify s':>10} {'CPU s':>7} "
        f"{'MB':>6}  outcome"
    )
    figures = {}
    for name in names:
        r = run_case(name, args.timeout)
        timed_out = r.get("timed_out", False)
        parse_s = r.get("parse_s")
        classify_s = r.get("classify_s") if parse_s is not None else None
        print(
            f"{name:24} {r.get('bytes', 0):>10} {_seconds(parse_s, timed_out):>10} "
            f"{_seconds(classify_s, timed_out and parse_s is not None):>10} "
            f"{r.get('cpu_s', float('nan')):7.3f} "
            f"{r.get('rss_mb', 0):6.0f}  {r.get('outcome', '')}",
            flush=True,
        )
        figures[name] = r
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()
