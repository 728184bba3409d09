"""The cost of the Python layer: a call from Python against the same library call timed inside
Rust, for the score and the exact likelihood of 10 000 points of the paper's 2-D mixture.

Interleaved repeats (Python, then Rust, per round), the median of each and the ratio − 1 as the
overhead, with the spread (the 10th and 90th percentiles of the per-round ratios).

    pip install . && python scripts/python_overhead.py [--repeats 30] [--out FILE.csv]
"""

import argparse
import os
import time

import numpy as np

import scorelab as sl
from scorelab import _scorelab as _n


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--points", type=int, default=10_000)
    ap.add_argument("--out", help="also write the table as CSV here")
    args = ap.parse_args()
    p = sl.targets.paper_mixture()
    x = p.sample(args.points, seed=0)
    calls = {
        "score": (lambda: p.score(x), args.repeats),
        "likelihood": (lambda: sl.likelihood(x, target=p), max(3, args.repeats // 6)),
    }
    rows = []
    for what, (call, repeats) in calls.items():
        call()  # warm
        py, rs = [], []
        for _ in range(repeats):
            t = time.perf_counter()
            call()
            py.append(time.perf_counter() - t)
            rs.append(_n._time_library(what, p, x, 1)[0])
        py, rs = np.array(py), np.array(rs)
        ratio = py / rs
        rows.append((what, len(x), repeats, np.median(py), np.median(rs), np.median(py) / np.median(rs) - 1,
                     np.percentile(ratio, 10) - 1, np.percentile(ratio, 90) - 1))
    header = "call,points,repeats,python_s,rust_s,overhead,overhead_p10,overhead_p90"
    lines = [header] + [f"{r[0]},{r[1]},{r[2]},{r[3]:.6g},{r[4]:.6g},{r[5]:.4f},{r[6]:.4f},{r[7]:.4f}" for r in rows]
    print("\n".join(lines))
    if args.out:
        tmp = f"{args.out}.tmp{os.getpid()}"
        with open(tmp, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.replace(tmp, args.out)


if __name__ == "__main__":
    main()
