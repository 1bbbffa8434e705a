"""Scale benchmark: a full live scan of a synthetic estate at Azure's real throttle limits.

    python benchmarks/scale.py                  # the same as python -m benchmarks.scale
    python -m benchmarks.scale                  # 20,000 jobs / 400 subscriptions / 90 days,
                                                # then 2,000 / 40 to show the growth
    python -m benchmarks.scale --quick          # 2,000 / 40 / 30 days, then 200 / 4
    python -m benchmarks.scale --jobs 5000 --subscriptions 100 --days 30 --no-baseline

Run from the repository root with the development install (`pip install -e '.[dev]'`).

Each size runs in fresh processes, so figures do not leak between runs:

- a server process builds the estate (`benchmarks.synthetic`) and serves it over loopback HTTPS
  with `tests.azure_server`: Resource Graph with 1,000-row pages and its per-user quota enforced
  as a sliding window (15 queries per 5 s; 429 beyond it; `x-ms-user-quota-remaining` and
  `-resets-after` on every reply), Log Analytics with its limits (200 requests per 30 s,
  500,000 rows per result) answering the executions query with one row per execution;
- a scan process runs `auditor.cli.main(["scan", "--auth", "cli", ...])` against it through the
  real SDKs, signed in by the test suite's fake `az`, with the stage marks of `run_scan`'s
  progress callback timed, and reports its peak RSS; the benchmark samples the proportional set
  size of the scan and its report worker together (`MemorySampler`).

Printed per size: wall time; the throttle-bound floor (the fewest queries the data needs divided
by the quota rate) and efficiency = floor / collection wall time; queries sent against the
fewest needed; seconds in collect / normalize / evaluate / report; peak memory; output sizes.
See docs/performance.md for the figures and what they mean.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

if not __package__:  # run as `python benchmarks/scale.py`: import from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.synthetic import AS_OF, Spec, build

GRAPH_QUOTA, GRAPH_WINDOW = 15, 5.0  # Resource Graph: queries per window (s) per user
LOGS_QUOTA, LOGS_WINDOW = 200, 30.0  # Log Analytics: requests per window (s) per user
LOGS_MAX_ROWS = 500_000
PAGE_ROWS = 1000
SUBSCRIPTIONS_PER_REQUEST = 100
GRAPH = "/providers/microsoft.resourcegraph/resources"


@dataclass
class Result:
    jobs: int
    subscriptions: int
    days: int
    estate: dict[str, int] = field(default_factory=dict)
    exit_code: int | None = None
    wall: float = 0.0
    stages: dict[str, float] = field(default_factory=dict)
    peak_rss_mib: float = 0.0  # the scan process's own peak resident set
    worker_rss_mib: float = 0.0  # the report worker's, pages shared with the scan included
    peak_pss_mib: float = 0.0  # the memory the two used together at their peak (sampled)
    peak_stage: str = ""  # the stage the peak was sampled in
    peak_processes: int = 0  # the scan and its workers at the peak
    graph_requests: int = 0
    graph_refused: int = 0
    graph_span: float = 0.0
    graph_fewest: int = 0
    logs_requests: int = 0
    logs_fewest: int = 0
    stand_in_cpu: float = 0.0  # CPU seconds the loopback Azure used while the scan ran
    outputs: dict[str, int] = field(default_factory=dict)
    # `speed_probe` seconds just before and just after the scan: this machine's speed varies
    # by a third from hour to hour, and runs are only comparable at equal probes.
    probe_before: float = 0.0
    probe_after: float = 0.0

    @property
    def graph_floor(self) -> float:
        return self.graph_fewest / (GRAPH_QUOTA / GRAPH_WINDOW)

    @property
    def logs_floor(self) -> float:
        return self.logs_fewest / (LOGS_QUOTA / LOGS_WINDOW)

    @property
    def floor(self) -> float:
        return self.graph_floor + self.logs_floor


# --- the server process ------------------------------------------------------------------------

def fewest_queries(record: dict[str, Any]) -> int:
    """The fewest Resource Graph queries the data needs, from the scan's collection record: per
    query the scan ran, at least one request per 100 subscriptions (Azure's advice; one for the
    tenant-wide listing of subscriptions) and at least one per 1,000 rows it returned."""
    fewest = 0
    for query in record["coverage"]["queries"]:
        if "batches" not in query:  # Log Analytics and the executions API
            continue
        scoped = query["subscriptions"] or query["management_groups"]
        batches = math.ceil(scoped / SUBSCRIPTIONS_PER_REQUEST) if scoped else 1
        fewest += max(batches, math.ceil(query["rows"] / PAGE_ROWS))
    return fewest


def _serve(spec: Spec, latency: float, conn: Connection) -> None:
    from tests.azure_server import AzureServer, Reply, SlidingWindowQuota, logs_tables

    estate = build(spec)
    server = AzureServer()
    graph = server.resource_graph
    graph.quota = SlidingWindowQuota(GRAPH_QUOTA, GRAPH_WINDOW)
    graph.cache_selections = True  # the estate is final: pages are served as Azure would
    graph.add("resourcecontainers", *estate.subscription_rows)
    graph.add("resources", *estate.resources)
    graph.add("authorizationresources", *estate.authorization)
    server.log_analytics.rate = SlidingWindowQuota(LOGS_QUOTA, LOGS_WINDOW)
    server.log_analytics.max_rows = LOGS_MAX_ROWS
    spans: list[tuple[float, float]] = []
    answer = graph.handle

    def timed(request: Any) -> Reply:
        started = time.monotonic()
        if latency:
            time.sleep(latency)
        reply = answer(request)
        spans.append((started, time.monotonic()))
        return reply

    server.router._routes = [(m, p, timed if h == answer else h)
                             for m, p, h in server.router._routes]

    def executions(workspace: str) -> Any:
        def reply(query: Any) -> Reply:
            since = query.start.strftime("%Y-%m-%dT%H:%M:%SZ")
            until = query.end.strftime("%Y-%m-%dT%H:%M:%SZ")
            return Reply(200, logs_tables(estate.logs_between(workspace, since, until)))
        return reply

    for workspace in estate.logs:
        server.log_analytics.script(workspace, executions(workspace))
    server.start()
    cpu = time.process_time()
    conn.send((server.url, server.token, estate.counts))
    conn.recv()  # the scan is over
    server.stop()
    logs = sum(1 for r in server.requests if "/v1/workspaces/" in r.path)
    conn.send({"graph_requests": graph.quota.admitted, "graph_refused": graph.quota.refused,
               "graph_span": spans[-1][1] - spans[0][0] if spans else 0.0,
               "logs_requests": logs, "cpu": time.process_time() - cpu})


# --- the scan process --------------------------------------------------------------------------

def _scan(url: str, token: str, work: Path, since: str, profile: str | None,
          conn: Connection) -> None:
    from tests.azure_server import FakeAz, ca_bundle

    az = FakeAz(work / "fake-az-bin", token)
    os.environ.update({
        "PATH": f"{az.folder}{os.pathsep}{os.environ.get('PATH', '')}",
        "AUDITOR_ARM_ENDPOINT": url, "AUDITOR_LOG_ANALYTICS_ENDPOINT": url,
        "REQUESTS_CA_BUNDLE": str(ca_bundle()), "NO_PROXY": "127.0.0.1,localhost",
        "XDG_DATA_HOME": str(work / "xdg-data"), "XDG_CACHE_HOME": str(work / "xdg-cache"),
    })
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        os.environ.pop(name, None)
    import auditor.cli as cli

    marks: list[tuple[str, float]] = []
    cli._progress = lambda: lambda stage: marks.append((stage, time.perf_counter()))
    argv = ["scan", "--auth", "cli", "--as-of", AS_OF.isoformat(), "--since", since,
            "--out", str(work / "out")]
    started = time.perf_counter()
    if profile:  # cProfile the whole scan (slows it down about threefold)
        import cProfile

        profiler = cProfile.Profile()
        code = profiler.runcall(cli.main, argv)
        profiler.dump_stats(profile)
    else:
        code = cli.main(argv)
    ended = time.perf_counter()
    stages = {}
    for (stage, at), (_next, until) in zip(marks, [*marks[1:], ("end", ended)], strict=True):
        stages[stage] = until - at
    conn.send({"exit_code": code, "wall": ended - started, "stages": stages,
               "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
               "worker_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024})


# --- memory ------------------------------------------------------------------------------------

class MemorySampler(threading.Thread):
    """The peak of the proportional set size (PSS) of a process and its children, sampled.

    Peak RSS alone misleads once reports are written by a forked worker: the worker's resident
    set counts every page it shares with the scan. PSS splits shared pages between the
    processes sharing them, so the sum is the memory the scan really holds.

    PSS is costly to read (the kernel walks the process's page tables: 58 ms for a process of
    1 GiB here) and reading it ten times a second took over half of one of the machine's two
    CPUs from the scan it measured. So the resident sets (cheap: /proc/PID/statm) are sampled
    every `interval`, and PSS, which never exceeds them, read only when they add up to more than
    the peak so far, at most once every `pss_interval`.
    """

    def __init__(self, pid: int, interval: float = 0.1, pss_interval: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval, self.pss_interval = pid, interval, pss_interval
        self.peak_kib = self.peak_processes = 0
        self.peak_at = self.stopped_at = 0.0  # seconds since sampling started
        self._done = threading.Event()
        self._began = time.perf_counter()

    def run(self) -> None:
        read_at = -self.pss_interval
        while not self._done.wait(self.interval):
            pids = [self.pid, *_children(self.pid)]
            now = time.perf_counter() - self._began
            if sum(map(_rss_kib, pids)) <= self.peak_kib or now - read_at < self.pss_interval:
                continue
            read_at = now
            pss = sum(map(_pss_kib, pids))
            if pss > self.peak_kib:
                self.peak_kib, self.peak_at, self.peak_processes = pss, now, len(pids)

    def stop(self) -> float:
        self._done.set()
        self.join()
        self.stopped_at = time.perf_counter() - self._began
        return self.peak_kib / 1024

    def stage_of_peak(self, stages: dict[str, float]) -> str:
        """The stage the peak fell in, counting back from the end of the scan (sampling
        starts before the scan process has imported what it runs)."""
        at = self.stopped_at
        for stage, seconds in reversed(stages.items()):
            at -= seconds
            if self.peak_at >= at:
                return stage
        return "start-up"


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


def _rss_kib(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE_KIB
    except (OSError, ValueError, IndexError):
        return 0


_PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def _pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


# --- one size ----------------------------------------------------------------------------------

def run(spec: Spec, *, latency: float, keep: Path | None,
        profile: str | None = None) -> Result:
    from tests.azure_server import ca_bundle

    ca_bundle()  # made once here, so both children trust the same CA
    fork = multiprocessing.get_context("fork")
    work = Path(tempfile.mkdtemp(prefix=f"auditor-scale-{spec.jobs}-"))
    result = Result(spec.jobs, spec.subscriptions, spec.days)
    server_end, here = fork.Pipe()
    server = fork.Process(target=_serve, args=(spec, latency, server_end), daemon=True)
    server.start()
    try:
        url, token, result.estate = here.recv()
        since = (AS_OF - timedelta(days=spec.days)).isoformat()
        scan_end, scan_here = fork.Pipe()
        result.probe_before = speed_probe()
        scan = fork.Process(target=_scan, args=(url, token, work, since, profile, scan_end))
        scan.start()
        assert scan.pid is not None
        memory = MemorySampler(scan.pid)
        memory.start()
        figures = scan_here.recv()
        result.peak_pss_mib = memory.stop()
        scan.join()
        result.probe_after = speed_probe()
        here.send("stop")
        served = here.recv()
        server.join(timeout=30)
    finally:
        if server.is_alive():
            server.kill()
    result.exit_code = figures["exit_code"]
    result.wall, result.stages = figures["wall"], figures["stages"]
    result.peak_stage = memory.stage_of_peak(result.stages)
    result.peak_processes = memory.peak_processes
    result.peak_rss_mib = figures["peak_rss_mib"]
    result.worker_rss_mib = figures["worker_rss_mib"]
    result.graph_requests, result.graph_refused = served["graph_requests"], served["graph_refused"]
    result.graph_span, result.logs_requests = served["graph_span"], served["logs_requests"]
    result.stand_in_cpu = served["cpu"]
    record = json.loads((work / "out" / "snapshot" / "collection.json").read_text())
    result.graph_fewest = fewest_queries(record["auditor_collection"])
    result.logs_fewest = result.estate["workspaces"]
    result.outputs = _sizes(work / "out")
    if keep is not None:
        target = keep / f"{spec.jobs}-jobs"
        shutil.rmtree(target, ignore_errors=True)
        shutil.move(str(work / "out"), target)
    shutil.rmtree(work, ignore_errors=True)
    return result


def _sizes(out: Path) -> dict[str, int]:
    sizes = {p.name: p.stat().st_size for p in sorted(out.iterdir()) if p.is_file()}
    sizes["snapshot/"] = sum(p.stat().st_size for p in (out / "snapshot").rglob("*")
                             if p.is_file())
    return sizes


# --- printing ----------------------------------------------------------------------------------

def _mib(size: float) -> str:
    return f"{size / 2**20:.1f} MiB"


def speed_probe() -> float:
    """Seconds this machine takes for a fixed piece of pure-Python work (about a second)."""
    started = time.perf_counter()
    total = 0
    for number in range(10_000_000):
        total += number & 7
    return time.perf_counter() - started


def report(result: Result) -> str:
    e, s = result.estate, result.stages
    collect = s.get("collect", 0.0)
    offline = sum(v for k, v in s.items() if k != "collect")
    lines = [
        f"== {result.jobs:,} jobs, {result.subscriptions:,} subscriptions, {result.days} days "
        f"(exit code {result.exit_code})",
        f"estate: {e['environments']:,} environments, {e['role_assignments']:,} role assignments"
        f" of service principals, {e['role_definitions']} role definitions, "
        f"{e['workspaces']} workspaces, {e['executions']:,} executions "
        f"({e['log_events']:,} system-log events aggregated by the KQL)",
        f"machine speed probe       {result.probe_before:8.2f} s   (a fixed Python loop just "
        f"before the scan; {result.probe_after:.2f} s after: compare runs at equal probes)",
        f"wall time                 {result.wall:8.1f} s   (the loopback Azure used "
        f"{result.stand_in_cpu:.1f} s of CPU meanwhile, on the same two CPUs)",
        f"Resource Graph queries    {result.graph_requests:8d}   (fewest the data needs: "
        f"{result.graph_fewest}; refused with 429: {result.graph_refused})",
        f"Log Analytics queries     {result.logs_requests:8d}   (fewest: {result.logs_fewest}, "
        f"one per workspace)",
        f"throttle-bound floor      {result.floor:8.1f} s   (Resource Graph {result.graph_fewest}"
        f" / {GRAPH_QUOTA / GRAPH_WINDOW:g} per s = {result.graph_floor:.1f} s; Log Analytics "
        f"{result.logs_fewest} / {LOGS_QUOTA / LOGS_WINDOW:.2f} per s = {result.logs_floor:.1f} s)",
        f"efficiency                {result.floor / collect if collect else 0:8.2f}     "
        f"(floor / collect stage; Resource Graph alone: {result.graph_floor:.1f} s floor / "
        f"{result.graph_span:.1f} s from first to last query = "
        f"{result.graph_floor / result.graph_span if result.graph_span else 0:.2f})",
        *(f"  {stage:<23} {seconds:8.1f} s" for stage, seconds in s.items()),
        f"normalize+evaluate+report {offline:8.1f} s",
        f"peak memory (PSS)         {result.peak_pss_mib:8.0f} MiB   (in {result.peak_stage}, "
        f"{result.peak_processes} processes; "
        f"the scan and its workers together; peak RSS: scan {result.peak_rss_mib:.0f} MiB, largest "
        f"worker "
        f"{result.worker_rss_mib:.0f} MiB counting the pages it shares with the scan)",
        "outputs: " + ", ".join(f"{name} {_mib(size)}" for name, size in result.outputs.items()),
    ]
    return "\n".join(lines)


def growth(small: Result, large: Result) -> str:
    ratio = large.jobs / small.jobs

    def per(value_small: float, value_large: float) -> str:
        return f"{value_large / value_small:5.1f}x" if value_small else "  n/a"

    offline = [sum(v for k, v in r.stages.items() if k != "collect") for r in (small, large)]
    rows = [
        ("executions", small.estate["executions"], large.estate["executions"]),
        ("Resource Graph queries", small.graph_requests, large.graph_requests),
        ("collect (s)", small.stages.get("collect", 0), large.stages.get("collect", 0)),
        ("normalize+evaluate+report (s)", offline[0], offline[1]),
        ("peak memory, PSS (MiB)", small.peak_pss_mib, large.peak_pss_mib),
        ("findings.json (bytes)", small.outputs.get("findings.json", 0),
         large.outputs.get("findings.json", 0)),
        ("report.xlsx (bytes)", small.outputs.get("report.xlsx", 0),
         large.outputs.get("report.xlsx", 0)),
    ]
    lines = [f"== growth from {small.jobs:,} to {large.jobs:,} jobs ({ratio:g}x)"]
    lines += [f"  {name:<30} {a:12,.1f} -> {b:12,.1f}  {per(a, b)}" for name, a, b in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--subscriptions", type=int, default=400)
    parser.add_argument("--days", type=int, default=90,
                        help="days of execution history in the estate, all of them scanned")
    parser.add_argument("--quick", action="store_true",
                        help="2,000 jobs, 40 subscriptions, 30 days (and 200 / 4 to compare)")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the run at a tenth of the size")
    parser.add_argument("--latency-ms", type=float, default=0.0,
                        help="extra latency per Resource Graph request (loopback has none)")
    parser.add_argument("--seed", type=int, default=20_000)
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="keep each scan's report folder under DIR")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures")
    parser.add_argument("--profile", metavar="FILE",
                        help="cProfile the largest scan into FILE (pstats format)")
    args = parser.parse_args(argv)
    if args.quick:
        args.jobs, args.subscriptions, args.days = 2000, 40, 30
    sizes = [(args.jobs, args.subscriptions)]
    if not args.no_baseline:
        sizes.insert(0, (max(1, args.jobs // 10), max(1, args.subscriptions // 10)))
    results = []
    for jobs, subscriptions in sizes:
        spec = Spec(jobs=jobs, subscriptions=subscriptions, days=args.days, seed=args.seed)
        print(f"running {jobs:,} jobs / {subscriptions:,} subscriptions / {args.days} days ...",
              file=sys.stderr, flush=True)
        profile = args.profile if (jobs, subscriptions) == sizes[-1] else None
        results.append(run(spec, latency=args.latency_ms / 1000, keep=args.keep,
                           profile=profile))
        print(report(results[-1]), flush=True)
    if len(results) == 2:
        print(growth(*results), flush=True)
    if args.json:
        args.json.write_text(json.dumps([{**asdict(r), "floor": r.floor} for r in results],
                                        indent=1))
    return 0 if all(r.exit_code in (0, 1) for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
