"""The one measuring helper every benchmark uses."""
from __future__ import annotations

import subprocess
import sys

from jobs.bench.common import RssSampler, machine_load, timed, write_json


def test_rss_sampler_counts_a_child_process_and_its_pss():
    code = "import time; x = bytearray(300 * 2**20); x[::4096] = b'1' * len(x[::4096]); time.sleep(1.5)"
    with RssSampler(period=0.05, children=True, pss=True) as mem:  # started first: the child's
        proc = subprocess.Popen([sys.executable, "-c", code])     # 300 MB is never in start_mb
        proc.wait()
    assert proc.returncode == 0
    assert mem.peak_mb > mem.start_mb + 250  # the child's 300 MB counted with this process
    assert mem.peak_pss_mb > 250
    assert mem.at(1.0) == mem.samples[-1][1]


def test_rss_sampler_without_children_ignores_them():
    proc = subprocess.Popen([sys.executable, "-c",
                             "x = bytearray(300 * 2**20); x[::4096] = b'1' * len(x[::4096]); "
                             "import time; time.sleep(1)"])
    with RssSampler(period=0.05) as mem:
        proc.wait()
    assert mem.peak_mb < mem.start_mb + 100


def test_timed_and_json(tmp_path):
    seconds, value = timed(sum, [1, 2, 3])
    assert value == 6 and seconds >= 0
    write_json(tmp_path / "a" / "f.json", {"x": tmp_path, "load": machine_load()})
    assert '"cpus"' in (tmp_path / "a" / "f.json").read_text()
