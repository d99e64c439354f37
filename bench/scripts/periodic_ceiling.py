#!/usr/bin/env python3
"""How much of the periodic-scan workload's structure each prefetcher catches, and the
most a successor-based prefetcher could.

`augur gen --kind periodic` is a Zipf background with four batch jobs that read the same
32 keys in the same order at fixed intervals. This script generates that trace, finds the
job keys (a key requested at least 10 times that is always followed, or always preceded,
by the same key: no Zipf key is), and reports:

- the ceiling for successor-based prefetching: an LRU cache plus an oracle that, on each
  job key, prefetches the key the job reads next (replayed here, in Python; without the
  oracle it matches `augur sim`'s `none`). Each run's first key is not in it: only a
  prefetcher that knows the clock could fetch that one;
- per prefetcher, the net hits the jobs bring it beyond what they bring `none`: `augur
  sim`'s hits on the whole trace minus its hits on the same trace with the job requests
  taken out, less the same difference without prefetching. It is a difference of separate
  runs, so it also holds what the jobs change in the background's hits under that
  prefetcher (its cache space, its models' training): a few hundred hits either way, which
  is why a prefetcher can read above the oracle's count or below zero.

Usage: bench/scripts/periodic_ceiling.py AUGUR_BINARY [--requests N] [--keys N]
[--sizes 1%,5%,10%] [--prefetch none,markov,ml]
"""
import argparse
import collections
import json
import os
import struct
import subprocess
import sys
import tempfile


def run(cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


# oracleGeneral records: time (s), object id, size, position of the next request of
# the same object (1-based; -1: none).
RECORD = struct.Struct("<IQIq")


def read_trace(path):
    with open(path, "rb") as f:
        return list(RECORD.iter_unpack(f.read()))


def write_trace(path, records):
    """Writes `records` with their next-request positions recomputed for this order."""
    following = [-1] * len(records)
    seen = {}
    for i in range(len(records) - 1, -1, -1):
        following[i] = seen.get(records[i][1], -1)
        seen[records[i][1]] = i + 1
    with open(path, "wb") as f:
        for (time, key, size, _), nxt in zip(records, following):
            f.write(RECORD.pack(time, key, size, nxt))


def job_keys(keys):
    count = collections.Counter(keys)
    after = collections.defaultdict(set)
    before = collections.defaultdict(set)
    for a, b in zip(keys, keys[1:]):
        after[a].add(b)
        before[b].add(a)
    jobs = {k for k, c in count.items() if c >= 10 and (len(after[k]) == 1 or len(before[k]) == 1)}
    # The key a job reads after k, when k is not a job's last.
    nxt = {k: next(iter(after[k])) for k in jobs if len(after[k]) == 1 and next(iter(after[k])) in jobs}
    return jobs, nxt


def lru_with_oracle(keys, capacity, nxt):
    """Hits of an LRU cache of `capacity` objects when the oracle prefetches `nxt[k]` after k."""
    cache = collections.OrderedDict()

    def admit(k):
        cache[k] = None
        if len(cache) > capacity:
            cache.popitem(last=False)

    hits = 0
    for k in keys:
        if k in cache:
            hits += 1
            cache.move_to_end(k)
        else:
            admit(k)
        following = nxt.get(k)
        if following is not None and following not in cache:
            admit(following)
    return hits


def sim(augur, trace, prefetch, sizes):
    out = run([augur, "sim", "--trace", trace, "--format", "oracleGeneral", "--policy", "lru", "--prefetch", prefetch,
               "--sizes", sizes, "--ignore-obj-size", "--json"])
    return {(r["prefetch"], r["cache_size"]): r for r in json.loads(out)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("augur")
    ap.add_argument("--requests", type=int, default=300_000)
    ap.add_argument("--keys", type=int, default=20_000)
    ap.add_argument("--sizes", default="1%,5%,10%")
    ap.add_argument("--prefetch", default="none,obl,markov,mithril,ml")
    args = ap.parse_args()
    if "none" not in args.prefetch.split(","):
        ap.error("--prefetch must include none (the baseline of every comparison)")
    with tempfile.TemporaryDirectory() as tmp:
        full = os.path.join(tmp, "periodic.oracleGeneral.bin")
        background = os.path.join(tmp, "background.oracleGeneral.bin")
        run([args.augur, "gen", "--kind", "periodic", "--requests", str(args.requests), "--keys", str(args.keys),
             "--seed", "1", "-o", full])
        records = read_trace(full)
        keys = [r[1] for r in records]
        jobs, nxt = job_keys(keys)
        job_requests = sum(k in jobs for k in keys)
        write_trace(background, [r for r in records if r[1] not in jobs])
        on_full = sim(args.augur, full, args.prefetch, args.sizes)
        # The same cache sizes in objects, not a share of the smaller working set.
        sizes = sorted({size for _, size in on_full})
        on_background = sim(args.augur, background, args.prefetch, ",".join(map(str, sizes)))
    print(f"periodic trace: {len(keys)} requests (seed 1, {args.keys} keys), {len(jobs)} job keys, "
          f"{job_requests} job requests ({job_requests / len(keys):.2%})")
    print()
    print("| cache (objects) | prefetcher | hit ratio | gain over none | net hits from the jobs, beyond none | prefetches | accuracy |")
    print("|---|---|---|---|---|---|---|")
    for size in sizes:
        none_hits = lru_with_oracle(keys, size, {})
        oracle_hits = lru_with_oracle(keys, size, nxt)
        base = none_hits / len(keys)
        if ("none", size) in on_full and abs(on_full[("none", size)]["hit_ratio"] - base) > 1e-4:
            print(f"warning: the Python LRU ({base:.4f}) and augur sim ({on_full[('none', size)]['hit_ratio']:.4f}) "
                  f"disagree at {size} objects", file=sys.stderr)
        def job_hits(name):
            r, b = on_full[(name, size)], on_background[(name, size)]
            return round(r["hit_ratio"] * r["requests"] - b["hit_ratio"] * b["requests"])

        for name in args.prefetch.split(","):
            r = on_full[(name, size)]
            added = job_hits(name) - job_hits("none")
            accuracy = "-" if r["prefetches_issued"] == 0 else f"{r['accuracy']:.3f}"
            print(f"| {size} | {name} | {r['hit_ratio']:.4f} | {r['hit_ratio'] / base - 1:+.1%} | {added} | "
                  f"{r['prefetches_issued']} | {accuracy} |")
        print(f"| {size} | oracle (LRU, Python) | {oracle_hits / len(keys):.4f} | "
              f"{oracle_hits / none_hits - 1:+.1%} | {oracle_hits - none_hits} (of {job_requests} job requests) | - | - |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
