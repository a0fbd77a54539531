"""The same workloads on cluster, IPython Parallel and Dask, side by side.

cluster's figures come from `cluster bench -n N --json`; this script runs the same
measurements on an IPython Parallel cluster and a Dask LocalCluster with N engines
(workers: one process, one thread each). Their functions are plain Python, as their users
write them; pi has a second line with numpy. It prints a table: workload, cluster,
ipyparallel, Dask, and the ratio (how many times better cluster is; below 1, worse).

A second table, "shared objects", measures a named queue and a named event: a client's
put + get round trip, items/s through one queue drained by N consumers, and how long after
one engine sets a flag the others' polling loops see it, on cluster (keys of `cluster bench
--json`; "-" where absent), on a multiprocessing Manager serving a queue and an event to N
processes, and on Dask's distributed.Queue / distributed.Event. `--only-shared` runs only
that table; `--skip-cluster` or `--cluster-json PATH` avoid running `cluster bench`.

Run it through run.sh, which makes the virtualenv:  bench/compare/run.sh [-n ENGINES]
"""

import argparse
import json
import multiprocessing
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from multiprocessing.managers import BaseManager, EventProxy

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
        self.remote = DaskRemote()

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

    # Shared objects: distributed.Queue and distributed.Event by name; every call is a
    # request to the scheduler.

    def queue(self, name):
        from distributed import Queue

        return Queue(name, client=self.client)

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
# Shared objects: a named queue and a named event, on cluster (its figures come from
# `cluster bench --json`), on a multiprocessing Manager and on Dask. The functions below run
# on the engines; each gets a "remote" that opens the framework's queue or event by name.

SHARED_ROUND_TRIPS = 200
SHARED_ITEMS = 10_000
SHARED_FLAG_TRIALS = 20
SHARED_CHECKS = 2_000  # is_set() calls per sample (cluster's bench makes 10^6 local reads)
SHARED_TIMEOUT_S = 120  # no step of a run waits longer than this for another process


class DaskRemote:
    """Opens distributed.Queue / distributed.Event by name inside a Dask task."""

    @staticmethod
    def queue(name):
        from distributed import Queue

        return Queue(name)

    @staticmethod
    def event(name):
        from distributed import Event

        return Event(name)


# The multiprocessing Manager, as in the managers articles: a BaseManager subclass serves
# named queues and events from its own server process over TCP on 127.0.0.1 (with an
# authkey), and worker processes connect to it by address, like clients on other hosts.

_SERVED = {}


def _served_queue(name):
    """Runs in the manager's server process: the queue called name (created on first use)."""
    import queue

    return _SERVED.setdefault(("queue", name), queue.Queue())


def _served_event(name):
    """Runs in the manager's server process: the event called name (created on first use)."""
    import threading

    return _SERVED.setdefault(("event", name), threading.Event())


class SharedManager(BaseManager):
    pass


SharedManager.register("queue", callable=_served_queue)
SharedManager.register("event", callable=_served_event, proxytype=EventProxy)

_CONNECTED = {}  # address -> this process's connected SharedManager


class ManagerRemote:
    """Opens the Manager's queue or event by name; connects once per process."""

    def __init__(self, address, authkey):
        self.address = address
        self.authkey = authkey

    def connect(self):
        m = _CONNECTED.get(self.address)
        if m is None:
            m = SharedManager(address=self.address, authkey=self.authkey)
            m.connect()
            _CONNECTED[self.address] = m
        return m

    def queue(self, name):
        return self.connect().queue(name)

    def event(self, name):
        return self.connect().event(name)


class Manager:
    """A SharedManager server process and a pool of N worker processes connected to it.

    submit(k, ...) does not choose the process: a pool worker runs one task at a time, and
    every task here blocks until all N have started (they wait for each other through the
    manager), so N tasks always run on N different processes, as pinned tasks do on Dask."""

    name = "Manager"

    def __init__(self, n):
        t = time.perf_counter()
        authkey = os.urandom(16)
        # spawn, not fork: this process may already run threads (a Dask client's loop).
        ctx = multiprocessing.get_context("spawn")
        self.manager = SharedManager(address=("127.0.0.1", 0), authkey=authkey, ctx=ctx)
        self.manager.start()
        self.remote = ManagerRemote(self.manager.address, authkey)
        self.pool = ctx.Pool(n, initializer=self.remote.connect)
        self.startup = time.perf_counter() - t
        self.n = n

    def queue(self, name):
        return self.remote.queue(name)

    def submit(self, k, f, *args):
        return self.pool.apply_async(f, args)

    @staticmethod
    def result(h):
        return h.get(timeout=SHARED_TIMEOUT_S)

    def close(self):
        self.pool.terminate()
        self.pool.join()
        self.manager.shutdown()


def consume(remote, name):
    """A consumer: takes items until the sentinel None; returns the items it took."""
    q = remote.queue(name)
    got = []
    while True:
        x = q.get()
        if x is None:
            return got
        got.append(x)


def check_cost(remote, name, calls):
    """The cost of one is_set() on an engine, in ns: the mean over `calls` calls."""
    ev = remote.event(name)
    ev.is_set()  # the first request opens the connection
    t = time.perf_counter()
    for _ in range(calls):
        ev.is_set()
    return (time.perf_counter() - t) * 1e9 / calls


def poll_flag(remote, name, ready):
    """A poller: says it is ready, then calls is_set() in a loop until it is true. Returns
    the wall-clock time at which it first saw the flag, and how many polls that took."""
    ev = remote.event(name)
    ev.is_set()  # the first request opens the connection; not part of the loop
    rq = remote.queue(ready)
    rq.put(1)  # rq stays referenced: dropping a Manager proxy is a request of its own
    polls = 0
    while not ev.is_set():
        polls += 1
    return time.time(), polls


def set_flag(remote, name, ready, pollers):
    """The setter: waits until every poller is polling, then sets the flag. Returns the
    wall-clock time just before set()."""
    ev = remote.event(name)
    rq = remote.queue(ready)
    for _ in range(pollers):
        rq.get(timeout=SHARED_TIMEOUT_S)
    t = time.time()
    ev.set()
    return t


def measure_shared(fw, repeats, log):
    """The three shared-object figures, under the same keys as `cluster bench --json`."""
    n = fw.n
    r = {"shared_queue_consumers": n}
    run = f"{os.getpid()}-{time.time_ns()}"  # fresh names: nothing left over from a run before

    log(f"queue put+get round trip ({SHARED_ROUND_TRIPS} per sample)")
    q = fw.queue(f"rtt-{run}")

    def roundtrip():
        t = time.perf_counter()
        for i in range(SHARED_ROUND_TRIPS):
            q.put(i)
            got = q.get(timeout=SHARED_TIMEOUT_S)
            assert got == i, (fw.name, "round trip", i, got)
        return (time.perf_counter() - t) * 1e6 / SHARED_ROUND_TRIPS

    r["shared_queue_rtt_us"] = median_of(repeats, roundtrip)

    # As `cluster bench` does: the client fills the queue (not timed), then the clock runs
    # from starting one consumer per engine until every consumer's answer is back.
    def throughput(items, tag):
        name = f"items-{run}-{tag}"
        q = fw.queue(name)
        for i in range(items):
            q.put(i)
        for _ in range(n):
            q.put(None)
        t = time.perf_counter()
        outs = [fw.result(h) for h in [fw.submit(k, consume, fw.remote, name) for k in range(n)]]
        seconds = time.perf_counter() - t
        taken = sorted(x for got in outs for x in got)
        assert taken == list(range(items)), (fw.name, "not every item consumed exactly once")
        return items / seconds, [len(got) for got in outs]

    log(f"{SHARED_ITEMS:,} items through one queue, {n} consumers (median of {repeats} runs)")
    throughput(200, "warmup")
    runs = [throughput(SHARED_ITEMS, k) for k in range(repeats)]
    r["shared_queue_items_per_s"] = statistics.median(rate for rate, _ in runs)
    log("  items per consumer: " + "; ".join(str(split) for _, split in runs))

    log(f"one is_set() on an engine ({SHARED_CHECKS:,} per sample)")
    r["shared_check_ns"] = median_of(
        repeats, lambda: fw.result(fw.submit(0, check_cost, fw.remote, f"check-{run}", SHARED_CHECKS))
    )

    if n < 2:
        log("flag propagation needs 2 engines or more: skipped")
        r["shared_flag_propagation_us"] = None
        return r
    log(f"flag propagation ({SHARED_FLAG_TRIALS} trials, {n - 1} pollers each)")

    def flag_trial(tag):
        name, ready = f"flag-{run}-{tag}", f"flag-ready-{run}-{tag}"
        pollers = [fw.submit(k, poll_flag, fw.remote, name, ready) for k in range(1, n)]
        setter = fw.submit(0, set_flag, fw.remote, name, ready, n - 1)
        t_set = fw.result(setter)
        return [(seen - t_set) * 1e6 for seen, _ in map(fw.result, pollers)]

    flag_trial("warmup")
    samples = [x for k in range(SHARED_FLAG_TRIALS) for x in flag_trial(k)]
    r["shared_flag_propagation_us"] = statistics.median(samples)
    r["shared_flag_samples"] = len(samples)
    r["shared_flag_propagation_max_us"] = max(samples)
    return r


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
    c, i, d = results.get("cluster", {}), results.get("ipyparallel", {}), results.get("Dask", {})
    # cluster's pi is its native built-in on both lines.
    c = dict(c)
    c["pi_numpy_samples_per_s_1"] = c.get("pi_samples_per_s_1")
    c["pi_numpy_samples_per_s_n"] = c.get("pi_samples_per_s_n")
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
    # The primality rows follow whichever column has them (cluster's, unless it was skipped).
    rows = c.get("primality") or i.get("primality") or d.get("primality") or []
    for k, row in enumerate(rows):
        for m in METHODS:
            key = m + "_s"
            ours = c["primality"][k][key] if k < len(c.get("primality") or []) else None
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


SHARED_ROWS = [
    ("shared_queue_rtt_us", "queue put + get round trip, client", "µs", False),
    ("shared_queue_items_per_s", "items/s through one queue, {consumers} consumers", "items/s", True),
    ("shared_check_ns", "one is_set() on an engine", "ns", False),
    ("shared_flag_propagation_us", "flag set on one engine, seen by the others", "µs", False),
]


def shared_table(n, results):
    c, m, d = results.get("cluster", {}), results.get("Manager", {}), results.get("Dask", {})
    lines = []
    head = f"{'shared objects (' + str(n) + ' engines)':<50} {'unit':<8} {'cluster':>12} {'Manager':>12} {'Dask':>12}   ratio vs Manager / Dask"
    lines.append(head)
    lines.append("-" * len(head))
    for key, label, unit, higher in SHARED_ROWS:
        label = label.format(consumers=m.get("shared_queue_consumers") or d.get("shared_queue_consumers") or n)
        lines.append(
            f"{label:<50} {unit:<8} {fmt(c.get(key), unit):>12} {fmt(m.get(key), unit):>12} "
            f"{fmt(d.get(key), unit):>12}   {ratio(c.get(key), m.get(key), higher)} / {ratio(c.get(key), d.get(key), higher)}"
        )
    lines.append("")
    lines.append(
        f"round trip: median of runs of {SHARED_ROUND_TRIPS:,}; items: {SHARED_ITEMS:,} ints and N sentinels put by the"
    )
    lines.append("client first, then timed from starting one consumer per engine until all have answered,")
    lines.append("each item checked taken exactly once (cluster: counted), median of runs;")
    lines.append(
        f"is_set(): cluster reads its engine's watched copy (10^6 calls), the others ask the server ({SHARED_CHECKS:,} calls);"
    )
    lines.append(
        f"flag: median over {SHARED_FLAG_TRIALS} trials x {max(n - 1, 0)} pollers of (first seen - set), wall clock."
    )
    lines.append("Manager: a BaseManager serving queue.Queue and threading.Event over TCP on 127.0.0.1")
    lines.append("to a pool of N processes; Dask: distributed.Queue and distributed.Event.")
    theirs = c.get("shared_queue_consumers")
    if theirs is not None and theirs != n:
        lines.append(f"note: cluster's items/s figure used {theirs} consumers, the others {n}.")
    if not any(c.get(key) is not None for key, *_ in SHARED_ROWS):
        lines.append("cluster: '-' where `cluster bench --json` does not have the figure (or was skipped).")
    share = c.get("background_cpu_share")
    if share is not None and share >= 0.05:
        lines.append(f"note: other processes used {share:.0%} of the CPUs during cluster's run.")
    return "\n".join(lines)


def cluster_figures(a, log):
    """cluster's figures: from --cluster-json, or by running `cluster bench -n N --json`,
    or none with --skip-cluster. Exits with one line on an error."""
    if a.skip_cluster:
        return {}
    if a.cluster_json:
        try:
            with open(a.cluster_json) as f:
                return json.load(f)
        except (OSError, ValueError) as e:
            sys.exit(f"compare.py: cannot read cluster's figures from {a.cluster_json}: {e}")
    log(f"cluster bench -n {a.engines} --json")
    try:
        out = subprocess.run(
            [a.cluster, "bench", "-n", str(a.engines), "--json"], check=True, capture_output=True, text=True
        )
        return json.loads(out.stdout)
    except FileNotFoundError:
        sys.exit(f"compare.py: no executable {a.cluster!r}: build cluster and pass --cluster PATH, or --skip-cluster")
    except subprocess.CalledProcessError as e:
        last = (e.stderr or "").strip().splitlines()[-1:] or ["(no message)"]
        sys.exit(f"compare.py: `cluster bench` failed (exit {e.returncode}): {last[0]}")
    except ValueError as e:
        sys.exit(f"compare.py: `cluster bench --json` printed something that is not JSON: {e}")


def versions(cluster):
    parts = []
    for mod in ("ipyparallel", "dask", "numpy"):
        try:
            parts.append(f"{mod} {__import__(mod).__version__}")
        except ImportError:
            pass
    parts.append(f"Python {platform.python_version()}")
    parts.append(f"cluster {cluster.get('version', '-')}")
    return ", ".join(parts)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", "--engines", type=int, default=2)
    p.add_argument("--cluster", default="cluster", help="the cluster executable")
    p.add_argument("--repeats", type=int, default=3, help="runs of the quick measurements")
    p.add_argument(
        "--only", choices=["ipyparallel", "Dask", "Manager"], help="run one framework only (cluster's figures still read)"
    )
    p.add_argument("--only-shared", action="store_true", help="only the shared-object workloads (Manager and Dask)")
    p.add_argument("--skip-cluster", action="store_true", help="do not run `cluster bench`; its column shows '-'")
    p.add_argument("--cluster-json", metavar="PATH", help="read cluster's figures from PATH (saved `cluster bench --json`)")
    p.add_argument("--json", metavar="PATH", help="also write every figure to PATH")
    p.add_argument("--numbers", type=int, default=len(PRIMALITY), help="primality: the first K numbers only")
    a = p.parse_args()
    if a.engines < 1:
        p.error("-n must be 1 or more")
    if a.only_shared and a.only == "ipyparallel":
        p.error("ipyparallel has no shared objects here: drop --only-shared or choose --only Manager or Dask")
    if a.skip_cluster and a.cluster_json:
        p.error("--skip-cluster and --cluster-json exclude each other: choose one")

    def log(msg):
        print(f"  {msg}", file=sys.stderr, flush=True)

    results = {"cluster": cluster_figures(a, log)}
    results["shared_sizes"] = {
        "round_trips": SHARED_ROUND_TRIPS,
        "items": SHARED_ITEMS,
        "consumers": a.engines,
        "flag_trials": SHARED_FLAG_TRIALS,
    }

    old = set() if a.only_shared else {"ipyparallel", "Dask"}
    shared = {"Manager", "Dask"}
    for cls in (IPyParallel, Dask, Manager):
        do_old, do_shared = cls.name in old, cls.name in shared
        if (a.only and cls.name != a.only) or not (do_old or do_shared):
            continue
        log(f"{cls.name}: starting {a.engines} engines")
        fw = cls(a.engines)
        try:
            r = {}

            def flog(m, name=cls.name):
                log(f"{name}: {m}")

            if do_old:
                r.update(measure(fw, a.repeats, a.numbers, flog))
            if do_shared:
                r.update(measure_shared(fw, a.repeats, flog))
            results[cls.name] = r
        finally:
            fw.close()

    load = open("/proc/loadavg").read().split()[:3] if os.path.exists("/proc/loadavg") else []
    cores = results["cluster"].get("cores", os.cpu_count())
    print(f"{a.engines} engines on {cores} cores; {versions(results['cluster'])}; load average at the end {' '.join(load)}")
    if not a.only_shared and a.only != "Manager":
        print(table(a.engines, results))
        print()
    if a.only != "ipyparallel":
        print(shared_table(a.engines, results))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("compare.py: interrupted (the frameworks' processes were stopped)")
    except AssertionError as e:
        sys.exit(f"compare.py: a correctness check failed, so no figures are printed: {e}")
