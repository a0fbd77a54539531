"""The same workloads on cluster, IPython Parallel and Dask, side by side.

cluster's figures come from `cluster bench -n N --json`; this script runs the same
measurements on an IPython Parallel cluster and a Dask LocalCluster with N engines
(workers: one process, one thread each). Their functions are plain Python, as their users
write them; pi has a second line with numpy. It prints one table: workload, cluster,
ipyparallel, Dask, and the ratio (how many times better cluster is; below 1, worse).

Run it through run.sh, which makes the virtualenv:  bench/compare/run.sh [-n ENGINES]
"""

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time

TASKS = 10_000
TRANSFER_BYTES = 50 << 20
PRIMALITY = [
    (112272535095295, 5),
    (100109100129100369, 95362951),
    (100109100129101027, 171656941),
    (100109100129100151, None),
    (100109100129162907, None),
]
METHODS = ["serial", "naive_split", "less_naive", "early_exit"]


# ------------------------------------------------------------------------------------
# The workloads, as a user of either framework writes them (plain Python).


def noop():
    return None


def echo(x):
    return x


def echo_chunk(xs):
    return [echo(x) for x in xs]


def pi_plain(n):
    import random

    hits = 0
    for _ in range(n):
        x = random.random()
        y = random.random()
        if x * x + y * y <= 1.0:
            hits += 1
    return hits


def pi_numpy(n):
    import numpy as np

    rng = np.random.default_rng()
    hits = 0
    left = n
    while left > 0:
        m = min(left, 5_000_000)
        x = rng.random(m)
        y = rng.random(m)
        hits += int(np.count_nonzero(x * x + y * y <= 1.0))
        left -= m
    return hits


def check_prime_in_range(n, from_i, to_i):
    """True if no odd i in [from_i, to_i), 3 <= i < n, divides n."""
    if n % 2 == 0:
        return False
    for i in range(max(from_i, 3) | 1, min(to_i, n), 2):
        if n % i == 0:
            return False
    return True


def factor_range(n):
    import math

    return 3, math.isqrt(n) + 1


def split_range(lo, hi, k):
    size = (hi - lo) // k + 1
    return [(min(lo + j * size, hi) | 1, min(lo + (j + 1) * size, hi)) for j in range(k)]


# ------------------------------------------------------------------------------------
# One adapter per framework: submit to engine k, load-balanced submit, wait, cancel.


class IPyParallel:
    name = "ipyparallel"

    def __init__(self, n):
        import ipyparallel as ipp

        t = time.perf_counter()
        self.cluster = ipp.Cluster(n=n, log_level=40)
        self.rc = self.cluster.start_and_connect_sync()
        self.rc.wait_for_engines(n, timeout=120)
        self.startup = time.perf_counter() - t
        self.n = n
        self.views = [self.rc[i] for i in self.rc.ids[:n]]
        self.dview = self.rc[self.rc.ids[:n]]
        self.lview = self.rc.load_balanced_view()

    def submit(self, k, f, *args):
        return self.views[k].apply_async(f, *args)

    def lb_submit(self, f, *args):
        return self.lview.apply_async(f, *args)

    @staticmethod
    def result(h):
        return h.get()

    @staticmethod
    def ready(h):
        return h.ready()

    def lb_map(self, f, items):
        return self.lview.map_sync(f, items)

    def direct_map(self, f, items):
        return self.dview.map_sync(f, items)

    def push(self, arr):
        self.dview.push({"bench_data": arr}, block=True)

    def pull(self):
        return self.dview.pull("bench_data", block=True)

    def stop_running(self, handles):
        """Cancels queued tasks and interrupts running ones; waits until all have ended."""
        self.rc.abort(handles)
        self.rc.send_signal(signal.SIGINT, block=True)
        for h in handles:
            try:
                h.get(timeout=60)
            except Exception:
                pass

    def close(self):
        self.rc.close()
        self.cluster.stop_cluster_sync()


class Dask:
    name = "Dask"

    def __init__(self, n):
        import dask
        from dask.distributed import Client, LocalCluster

        # A broadcast push must stay on every worker: the active memory manager would drop
        # the "extra" replicas after a few seconds.
        dask.config.set({"distributed.scheduler.active-memory-manager.start": False})
        t = time.perf_counter()
        self.cluster = LocalCluster(
            n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None
        )
        self.client = Client(self.cluster)
        self.client.wait_for_workers(n)
        self.startup = time.perf_counter() - t
        self.n = n
        self.workers = sorted(self.client.scheduler_info()["workers"])[:n]
        self.key = None

    def submit(self, k, f, *args):
        return self.client.submit(f, *args, workers=[self.workers[k]], pure=False)

    def lb_submit(self, f, *args):
        return self.client.submit(f, *args, pure=False)

    @staticmethod
    def result(h):
        return h.result()

    @staticmethod
    def ready(h):
        return h.done()

    def lb_map(self, f, items):
        return self.client.gather(self.client.map(f, items, pure=False))

    def direct_map(self, f, items):
        # A direct map by hand: one chunk per worker.
        size = -(-len(items) // self.n)
        chunks = [items[j * size : (j + 1) * size] for j in range(self.n)]
        futs = [self.submit(k, echo_chunk, c) for k, c in enumerate(chunks)]
        return [x for part in self.client.gather(futs) for x in part]

    def push(self, arr):
        # A fresh key each time (hash=False): re-scattering the same content under its
        # hashed key races with the release of the previous future.
        fut = self.client.scatter(arr, broadcast=True, hash=False)
        old, self.key = self.key, fut
        if old is not None:
            old.release()

    def pull(self):
        def get(key, dask_worker=None):
            return dask_worker.data[key]

        return list(self.client.run(get, self.key.key).values())

    def stop_running(self, handles):
        """Cancels the futures; Dask cannot interrupt a running task, so this waits for each
        worker to be free (a no-op pinned to it runs after the running task)."""
        self.client.cancel(handles)
        for k in range(self.n):
            self.submit(k, noop).result()

    def close(self):
        self.client.close()
        self.cluster.close()


# ------------------------------------------------------------------------------------
# The measurements, the same for both


def timed(f):
    t = time.perf_counter()
    out = f()
    return time.perf_counter() - t, out


def median_of(repeats, f):
    f()  # warm-up
    return statistics.median(f() for _ in range(repeats))


def measure(fw, repeats, numbers, log):
    r = {"startup_s": fw.startup}
    n = fw.n

    log("round trip")
    trips = 200

    def roundtrip():
        t, _ = timed(lambda: [fw.result(fw.submit(0, noop)) for _ in range(trips)])
        return t * 1e6 / trips

    r["roundtrip_us"] = median_of(repeats, roundtrip)

    log("10,000 load-balanced tasks (one run)")
    t, _ = timed(lambda: [fw.result(h) for h in [fw.lb_submit(noop) for _ in range(TASKS)]])
    r["lb_apply_async_tasks_per_s"] = TASKS / t
    t, out = timed(lambda: fw.lb_map(echo, [None] * TASKS))
    assert len(out) == TASKS
    r["lb_map_sync_tasks_per_s"] = TASKS / t
    log("direct map")

    def direct():
        t, out = timed(lambda: fw.direct_map(echo, [None] * TASKS))
        assert len(out) == TASKS
        return TASKS / t

    r["direct_map_items_per_s"] = median_of(repeats, direct)

    log("push and pull")
    import numpy as np

    arr = np.full(TRANSFER_BYTES, 0x5A, dtype=np.uint8)
    total_mb = TRANSFER_BYTES * n / 1e6
    r["push_mb_per_s"] = median_of(repeats, lambda: total_mb / timed(lambda: fw.push(arr))[0])

    def pull():
        t, got = timed(fw.pull)
        assert [len(x) for x in got] == [TRANSFER_BYTES] * n
        return total_mb / t

    r["pull_mb_per_s"] = median_of(repeats, pull)

    log("pi")
    for key, func, seconds in (("", pi_plain, 0.5), ("numpy_", pi_numpy, 0.3)):
        probe = 200_000 if func is pi_plain else 5_000_000
        t, _ = timed(lambda: fw.result(fw.submit(0, func, probe)))
        m = max(int(probe / t * seconds), 1000)

        def one():
            t, hits = timed(lambda: fw.result(fw.submit(0, func, m)))
            assert abs(4 * hits / m - 3.14159) < 0.05
            return m / t

        def every():
            t, hits = timed(lambda: [fw.result(h) for h in [fw.submit(k, func, m) for k in range(n)]])
            assert abs(4 * sum(hits) / (m * n) - 3.14159) < 0.05
            return m * n / t

        r[f"pi_{key}samples_per_s_1"] = median_of(repeats, one)
        r[f"pi_{key}samples_per_s_n"] = median_of(repeats, every)

    log("primality, plain Python (one run each)")
    rows = []
    for x, factor in PRIMALITY[:numbers]:
        row = {"n": x, "prime": factor is None}
        for method in METHODS:
            prime, t = primality(fw, method, x)
            assert prime == (factor is None), (fw.name, method, x, prime)
            row[method + "_s"] = t
        log(f"  {x}: " + ", ".join(f"{m} {row[m + '_s']:.2f} s" for m in METHODS))
        rows.append(row)
    r["primality"] = rows
    return r


def primality(fw, method, x):
    """Runs one method; returns (is x prime?, seconds from the first submission to the answer)."""
    t0 = time.perf_counter()
    lo, hi = factor_range(x)
    if method == "serial":
        prime = fw.result(fw.submit(0, check_prime_in_range, x, lo, hi))
        return prime, time.perf_counter() - t0
    if method == "less_naive":
        if not fw.result(fw.submit(0, check_prime_in_range, x, 3, 21)):
            return False, time.perf_counter() - t0
        lo = 21
    handles = [
        fw.submit(k, check_prime_in_range, x, a, b) for k, (a, b) in enumerate(split_range(lo, hi, fw.n))
    ]
    if method in ("naive_split", "less_naive"):
        prime = all([fw.result(h) for h in handles])
        return prime, time.perf_counter() - t0
    # Early exit: the first factor found ends the search; the other ranges are stopped
    # after the answer is known (not timed).
    done = set()
    while len(done) < len(handles):
        for k, h in enumerate(handles):
            if k not in done and fw.ready(h):
                done.add(k)
                if not fw.result(h):
                    seconds = time.perf_counter() - t0
                    fw.stop_running([g for j, g in enumerate(handles) if j not in done])
                    return False, seconds
        time.sleep(0.0005)
    return True, time.perf_counter() - t0


# ------------------------------------------------------------------------------------
# The table


ROWS = [
    ("roundtrip_us", "no-op round trip, one engine", "µs", False),
    ("lb_apply_async_tasks_per_s", "10,000 no-op tasks, load-balanced, async + wait", "tasks/s", True),
    ("lb_map_sync_tasks_per_s", "10,000 no-op tasks, load-balanced map", "tasks/s", True),
    ("direct_map_items_per_s", "10,000 items, direct map", "items/s", True),
    ("push_mb_per_s", "push 50 MB to every engine", "MB/s", True),
    ("pull_mb_per_s", "pull 50 MB from every engine", "MB/s", True),
    ("pi_samples_per_s_1", "pi samples, one engine (Python: plain loop)", "M/s", True),
    ("pi_samples_per_s_n", "pi samples, all engines (Python: plain loop)", "M/s", True),
    ("pi_numpy_samples_per_s_1", "pi samples, one engine (Python: numpy)", "M/s", True),
    ("pi_numpy_samples_per_s_n", "pi samples, all engines (Python: numpy)", "M/s", True),
    ("startup_s", "startup until all engines registered", "s", False),
]


def fmt(v, unit):
    if v is None:
        return "-"
    if unit == "M/s":
        v = v / 1e6
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 1:
        return f"{v:.2f}"
    return f"{v:.4f}"


def ratio(ours, theirs, higher):
    if ours is None or theirs is None or ours == 0 or theirs == 0:
        return "-"
    x = ours / theirs if higher else theirs / ours
    return f"{x:,.1f}x" if x >= 10 else f"{x:.2f}x"


def table(n, results):
    c, i, d = results["cluster"], results.get("ipyparallel", {}), results.get("Dask", {})
    # cluster's pi is its native built-in on both lines.
    c = dict(c)
    c["pi_numpy_samples_per_s_1"] = c["pi_samples_per_s_1"]
    c["pi_numpy_samples_per_s_n"] = c["pi_samples_per_s_n"]
    lines = []
    head = f"{'workload (' + str(n) + ' engines)':<50} {'unit':<8} {'cluster':>12} {'ipyparallel':>12} {'Dask':>12}   ratio vs ipp / Dask"
    lines.append(head)
    lines.append("-" * len(head))
    for key, label, unit, higher in ROWS:
        lines.append(
            f"{label:<50} {unit:<8} {fmt(c.get(key), unit):>12} {fmt(i.get(key), unit):>12} "
            f"{fmt(d.get(key), unit):>12}   {ratio(c.get(key), i.get(key), higher)} / {ratio(c.get(key), d.get(key), higher)}"
        )
    names = {"serial": "serial", "naive_split": "naive split", "less_naive": "less-naive", "early_exit": "early exit"}
    for k, row in enumerate(c["primality"]):
        for m in METHODS:
            key = m + "_s"
            ours = row[key]
            ip = i["primality"][k][key] if k < len(i.get("primality", [])) else None
            dk = d["primality"][k][key] if k < len(d.get("primality", [])) else None
            label = f"{row['n']} {names[m]}"
            lines.append(
                f"{label:<50} {'s':<8} {fmt(ours, 's'):>12} {fmt(ip, 's'):>12} {fmt(dk, 's'):>12}   "
                f"{ratio(ours, ip, False)} / {ratio(ours, dk, False)}"
            )
    lines.append("")
    lines.append("cluster's pi is its native calculate_pi on every pi line; primality: wall time in")
    lines.append("seconds per method (cluster: its native check_prime_in_range; others: plain Python).")
    share = c.get("background_cpu_share")
    if share is not None and share >= 0.05:
        lines.append(f"note: other processes used {share:.0%} of the CPUs during cluster's run.")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", "--engines", type=int, default=2)
    p.add_argument("--cluster", default="cluster", help="the cluster executable")
    p.add_argument("--repeats", type=int, default=3, help="runs of the quick measurements")
    p.add_argument("--only", choices=["ipyparallel", "Dask"], help="run one framework only")
    p.add_argument("--json", metavar="PATH", help="also write every figure to PATH")
    p.add_argument("--numbers", type=int, default=len(PRIMALITY), help="primality: the first K numbers only")
    a = p.parse_args()

    def log(msg):
        print(f"  {msg}", file=sys.stderr, flush=True)

    results = {}
    log(f"cluster bench -n {a.engines} --json")
    out = subprocess.run(
        [a.cluster, "bench", "-n", str(a.engines), "--json"], check=True, capture_output=True, text=True
    )
    results["cluster"] = json.loads(out.stdout)

    frameworks = [IPyParallel, Dask]
    if a.only:
        frameworks = [f for f in frameworks if f.name == a.only]
    for cls in frameworks:
        log(f"{cls.name}: starting {a.engines} engines")
        fw = cls(a.engines)
        try:
            results[cls.name] = measure(fw, a.repeats, a.numbers, lambda m, name=cls.name: log(f"{name}: {m}"))
        finally:
            fw.close()

    import dask
    import ipyparallel
    import numpy

    versions = (
        f"ipyparallel {ipyparallel.__version__}, dask {dask.__version__}, numpy {numpy.__version__}, "
        f"Python {platform.python_version()}, cluster {results['cluster'].get('version')}"
    )
    load = open("/proc/loadavg").read().split()[:3] if os.path.exists("/proc/loadavg") else []
    print(f"{a.engines} engines on {results['cluster']['cores']} cores; {versions}; load average at the end {' '.join(load)}")
    print(table(a.engines, results))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
