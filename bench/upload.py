"""Questions while an upload is indexed: one pipeline over the bundled articles (real MiniLM),
a ~1 MB article indexed in a background thread, and questions asked meanwhile, one every
``--pace`` seconds. Prints the questions' latency alone (the baseline, same run) and during the
upload, and how long the upload took. ``--compare`` repeats the upload with the readers' lock
held around it, as ``index_paths`` did before: then a question waits for the whole upload.

    python bench/upload.py [--mb 1.0] [--pace 0.5] [--compare]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from contextlib import nullcontext
from pathlib import Path

from common import BUNDLED, QA, load_avg

PARA = ("The Zubrovka ferry company ordered a new vessel for the northern route on Friday, "
        "and the harbour master said the route would reopen in spring. ")


def upload_phase(p, folder: Path, mb: float, qs: list[str], pace: float, hold_readers_lock: bool):
    folder.mkdir()
    f = folder / f"{folder.name}.txt"
    # a title of its own: the same text under another name would be skipped as a duplicate
    f.write_text(f"Ferry order in Zubrovka ({folder.name})\n\n" + PARA * int(mb * 1e6 / len(PARA)) + "\n")

    def index() -> None:
        with p._lock if hold_readers_lock else nullcontext():
            p.index_paths([folder])

    t0 = time.perf_counter()
    t = threading.Thread(target=index)
    t.start()
    during: list[float] = []
    while t.is_alive():
        q0 = time.perf_counter()
        p.ask(qs[len(during) % len(qs)])
        during.append(time.perf_counter() - q0)
        time.sleep(pace)
    t.join()
    return f.stat().st_size, time.perf_counter() - t0, sorted(during)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=float, default=1.0, help="size of the uploaded article")
    ap.add_argument("--pace", type=float, default=0.5, help="seconds between questions during the upload")
    ap.add_argument("--compare", action="store_true", help="also upload with the readers' lock held (the former way)")
    args = ap.parse_args()
    from rag.pipeline import RagPipeline

    qs = [json.loads(line)["question"] for line in QA.read_text(encoding="utf-8").splitlines() if line.strip()][:10]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-upload-") as d:
        d = Path(d)
        p = RagPipeline(index_dir=d / "index")
        p.index_paths([BUNDLED])
        p.warm_up()
        for q in qs:
            p.ask(q)  # warm
        alone = []
        for q in qs:
            t0 = time.perf_counter()
            p.ask(q)
            alone.append(time.perf_counter() - t0)
        alone.sort()
        rows.append(("now: readers' lock only for the swap", *upload_phase(p, d / "upload1", args.mb, qs, args.pace, False)))
        if args.compare:
            rows.append(("before: readers' lock held throughout", *upload_phase(p, d / "upload2", args.mb, qs, args.pace, True)))
    a50 = alone[len(alone) // 2]
    print(f"# questions while a {rows[0][1] / 1e6:.2f} MB article is indexed (one every {args.pace} s); "
          f"load average {load_avg()}")
    print(f"questions alone: n {len(alone)}, p50 {a50:.2f} s, max {alone[-1]:.2f} s")
    print("| indexing | upload s | questions during it | p50 s | max s | max / alone p50 |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, _, upload_s, during in rows:
        print(f"| {name} | {upload_s:.1f} | {len(during)} | {during[len(during) // 2]:.2f} | {during[-1]:.2f} | "
              f"{during[-1] / a50:.0f}x |")


if __name__ == "__main__":
    main()
