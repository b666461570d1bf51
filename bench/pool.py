#!/usr/bin/env python3
"""Pools the rounds of several runs of bench/bench.py (their --json files).

    python3 bench/pool.py bench/runs/*.json [--only build,outside]

A goal within a few percent needs more rounds than one run gives on a
noisy machine: this puts the rounds of every file together and prints, for
each workload and implementation, what one run prints for the build and
`outside`: the median of the rounds' own ratios to native (each round runs
every implementation in turn, so a pair shares the machine's moment) with
its 95% interval, and the ratio of the pooled medians. Pool runs of one
machine and one version only: the files say which machine ran them.
"""

import argparse
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True
from bench import median_interval  # noqa: E402


def load(paths):
    """workload -> implementation -> [(time, native time of its round)], and the machines."""
    pairs, machines = {}, set()
    for path in paths:
        with open(path) as f:
            run = json.load(f)
        m = run.get("machine", {})
        machines.add(f"{m.get('cpu', '?')}, {m.get('nproc', '?')} cores, Linux {m.get('kernel', '?')}")
        for name, w in run["workloads"].items():
            impls = w["impls"]
            native = impls.get("native", {}).get("times_s") or []
            for impl, cell in impls.items():
                times = cell.get("times_s") or []
                if impl == "native" or cell.get("error") or len(times) != len(native):
                    continue
                pairs.setdefault(name, {}).setdefault(impl, []).extend(zip(times, native))
    return pairs, machines


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+", help="JSON files written by bench.py --json")
    ap.add_argument("--only", help="comma-separated workload names (default: all)")
    args = ap.parse_args()
    pairs, machines = load(args.files)
    print(f"{len(args.files)} runs on: " + "; ".join(sorted(machines)))
    wanted = set(args.only.split(",")) if args.only else None
    for name, impls in pairs.items():
        if wanted and name not in wanted:
            continue
        for impl, rounds in impls.items():
            ratios = [t / n for t, n in rounds]
            interval = median_interval(ratios)
            shown = f"{interval[0]:.3f}-{interval[1]:.3f}" if interval else "-"
            pooled = statistics.median(t for t, _ in rounds) / statistics.median(n for _, n in rounds)
            print(f"{name:15} {impl:15} {len(rounds):5} rounds: median ratio {statistics.median(ratios):.4f} "
                  f"(95% {shown}), ratio of pooled medians {pooled:.4f}")


if __name__ == "__main__":
    main()
