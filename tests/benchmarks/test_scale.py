"""The benchmark's own arithmetic and its memory sampler (its figures are printed, not tested)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from benchmarks.scale import MemorySampler, fewest_queries


def test_fewest_queries_take_the_larger_of_batches_and_pages() -> None:
    record = {"coverage": {"queries": [
        {"name": "jobs", "batches": 4, "subscriptions": 400, "management_groups": 0,
         "rows": 20_000},  # pages decide: 20
        {"name": "environments", "batches": 4, "subscriptions": 400, "management_groups": 0,
         "rows": 800},  # batches decide: 4
        {"name": "subscriptions", "batches": 1, "subscriptions": 0, "management_groups": 0,
         "rows": 400},  # the tenant-wide listing: 1
        {"name": "executions-log-analytics", "rows": 703_391},  # not Resource Graph
    ]}}
    assert fewest_queries(record) == 25


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_sampler_finds_the_peak_of_a_process_and_its_children() -> None:
    # A parent holding 100 MiB forks a child that holds 200 MiB more of its own.
    program = ("import os, time\n"
               "held = bytearray(100 * 2**20)\n"
               "if os.fork() == 0:\n"
               "    mine = bytearray(200 * 2**20); time.sleep(3); os._exit(0)\n"
               "os.wait()\n")
    process = subprocess.Popen([sys.executable, "-c", program])
    sampler = MemorySampler(process.pid, interval=0.05, pss_interval=0.2)
    sampler.start()
    process.wait(timeout=60)
    peak_mib = sampler.stop()

    assert 290 <= peak_mib <= 400  # both allocations, each counted once
    assert sampler.peak_processes == 2
