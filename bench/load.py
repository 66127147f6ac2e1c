"""Load on the chat: ``rag ui`` on a free 127.0.0.1 port over the bundled index, USERS
simultaneous users (gradio_client) asking QUESTIONS questions each through ``/chat``, one after
another per user. Prints errors, latency percentiles, throughput and the server's resident
memory (before, peak, after). Bounded: loopback only, a timeout per answer and for the run.

    python bench/load.py [--users 50] [--questions 5] [--index-dir bench/out/index-bundled]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import BUNDLED_INDEX, QA, ROOT, load_avg

HOST = "127.0.0.1"  # never another interface
ANSWER_TIMEOUT_S = 120.0
START_TIMEOUT_S = 600.0  # the first start may build the bundled index


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its children, in MB (Linux /proc)."""
    total = 0
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def questions(n: int) -> list[str]:
    rows = [json.loads(line) for line in QA.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r["question"] for r in rows[:n]]


def wait_until_up(url: str, proc: subprocess.Popen) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < START_TIMEOUT_S:
        if proc.poll() is not None:
            raise SystemExit(f"rag ui exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return time.perf_counter() - t0
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"rag ui did not answer at {url} within {START_TIMEOUT_S:.0f} s")


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def run_users(url: str, users: int, per_user: int, qs: list[str]) -> tuple[list[float], list[str], float]:
    """``users`` clients at once, each asking ``per_user`` questions in turn: (latencies, errors, wall s)."""
    from gradio_client import Client

    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def user(i: int) -> None:
        try:
            client = Client(url, verbose=False)
        except Exception as e:  # noqa: BLE001 - a benchmark counts every failure
            with lock:
                errors.append(f"user {i}: connect: {type(e).__name__}: {e}")
            return
        for j in range(per_user):
            q = qs[(i + j) % len(qs)]
            t0 = time.perf_counter()
            try:
                text = client.submit(q, api_name="/chat").result(timeout=ANSWER_TIMEOUT_S)
                with lock:
                    latencies.append(time.perf_counter() - t0)
                    if not (isinstance(text, str) and text.strip()):
                        errors.append(f"user {i} q{j}: empty answer")
            except Exception as e:  # noqa: BLE001
                with lock:
                    errors.append(f"user {i} q{j}: {type(e).__name__}: {str(e)[:120]}")

    t0 = time.perf_counter()
    with ThreadPoolExecutor(users) as ex:
        list(ex.map(user, range(users)))
    return latencies, errors, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=50)
    ap.add_argument("--questions", type=int, default=5, help="questions per user")
    ap.add_argument("--index-dir", type=Path, default=BUNDLED_INDEX)
    args = ap.parse_args()
    from gradio_client import Client

    port = free_port()
    url = f"http://{HOST}:{port}/"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False",
           "PYTHONPATH": str(ROOT)}
    (ROOT / "bench" / "out").mkdir(parents=True, exist_ok=True)
    log = open(ROOT / "bench" / "out" / "load-server.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "rag.cli", "ui", "--host", HOST, "--port", str(port), "--index-dir", str(args.index_dir)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        started = wait_until_up(url, server)
        qs = questions(max(args.questions, 10))
        solo = Client(url, verbose=False)
        solo.predict(qs[0], api_name="/chat")  # the first answer loads the models
        baseline = []  # the same questions from one user alone: the reference for the ratios
        for q in qs[: args.questions]:
            t0 = time.perf_counter()
            solo.predict(q, api_name="/chat")
            baseline.append(time.perf_counter() - t0)
        rss_before = rss_mb(server.pid)
        peak = [rss_before]
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(0.5):
                peak[0] = max(peak[0], rss_mb(server.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        latencies, errors, wall = run_users(url, args.users, args.questions, qs)
        stop.set()
        sampler.join()
        rss_after = rss_mb(server.pid)
        n = args.users * args.questions
        print(f"# load: {args.users} users x {args.questions} questions through /chat, server on {url}")
        print(f"machine: {os.cpu_count()} cores, load average {load_avg()}; server up in {started:.1f} s")
        print(f"answers: {len(latencies)} of {n} in {wall:.1f} s ({len(latencies) / wall:.2f} answers/s); errors {len(errors)}")
        b50 = pct(baseline, 0.5)
        print(f"one user alone: p50 {b50:.2f} s, max {max(baseline):.2f} s over {len(baseline)} questions")
        if latencies:
            p50, p95 = pct(latencies, 0.5), pct(latencies, 0.95)
            print(f"latency: p50 {p50:.2f} s ({p50 / b50:.1f}x alone), p95 {p95:.2f} s ({p95 / b50:.1f}x alone), "
                  f"max {max(latencies):.2f} s (queued behind the other users' questions)")
        print(f"server RSS: {rss_before:.0f} MB before, {peak[0]:.0f} MB peak, {rss_after:.0f} MB after")
        for e in errors[:20]:
            print(f"  error: {e}")
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    main()
