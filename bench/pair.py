#!/usr/bin/env python3
"""Compares the CPU of two commands run alternately; prints the ratio B/A of their medians.

usage: bench/pair.py ROUNDS COMMAND_A COMMAND_B

Each command runs ROUNDS times through `sh -c`, A and B taking turns (the first of each
pair alternates), its CPU (user + sys of it and its children) read from
getrusage(RUSAGE_CHILDREN). Prints both medians, the ratio of the medians with a 90%
interval from 5,000 bootstrap resamples, and the median of the per-pair ratios. On a
shared machine one run of each says little; thirty alternating ones say more.
Output of the commands goes to a temporary file, never to /dev/null.
"""
import random
import resource
import statistics
import subprocess
import sys
import tempfile


def cpu_seconds(command, sink):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, shell=True, stdout=sink, stderr=subprocess.STDOUT, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__.split("\n\n")[1])
    rounds, first, second = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    a, b = [], []
    with tempfile.TemporaryFile() as sink:
        for n in range(rounds):
            order = [(first, a), (second, b)]
            for command, times in order if n % 2 == 0 else reversed(order):
                times.append(cpu_seconds(command, sink))
                sink.seek(0)
                sink.truncate()
    median_a, median_b = statistics.median(a), statistics.median(b)
    resampled = sorted(
        statistics.median(random.choices(b, k=rounds))
        / statistics.median(random.choices(a, k=rounds))
        for _ in range(5000))
    paired = statistics.median(y / x for x, y in zip(a, b))
    print(f"A median {median_a * 1000:.0f} ms, B median {median_b * 1000:.0f} ms, "
          f"B/A {median_b / median_a:.3f} (90% interval {resampled[250]:.3f}-"
          f"{resampled[4750]:.3f}), median of paired ratios {paired:.3f}, {rounds} rounds")


if __name__ == "__main__":
    main()
