"""``bench.harness``: a measured command's process tree, and the result file ``bench.report`` reads."""

from __future__ import annotations

import json
import sys

from bench import harness, report

MB = 2**20
# each process holds ``size`` MB, touched, for long enough to be read a few times
HOLD = ("import sys, time\nb = bytearray(int(sys.argv[1]) * 2**20)\nb[::4096] = b'x' * len(b[::4096])\n"
        "time.sleep(2.0)\n")
POOL = ("import subprocess, sys\n"
        "procs = [subprocess.Popen([sys.executable, '-c', sys.argv[1], '60']) for _ in range(2)]\n"
        "sys.exit(max(p.wait() for p in procs))\n")


def test_grandchildren_count_in_the_tree_peak_and_cpu(tmp_path):
    m = harness.measure([sys.executable, "-c", POOL, HOLD], tmp_path / "log")
    assert m["returncode"] == 0 and m["processes"] == 3
    assert 60 < m["max_process_rss_mb"] < 100  # one worker's own peak
    assert m["peak_rss_mb"] > 120  # both workers at once, beside their parent
    assert m["cpu_s"] > 0 and m["seconds"] > 0


def test_the_forking_parents_memory_is_not_the_childs(tmp_path):
    held = bytearray(300 * MB)
    held[::4096] = b"x" * len(held[::4096])  # this process is large when it starts the command
    m = harness.measure([sys.executable, "-c", HOLD, "10"], tmp_path / "log")
    assert m["returncode"] == 0 and m["processes"] == 1
    assert 10 < m["peak_rss_mb"] < 100 and len(held) == 300 * MB


def test_a_failing_command_gives_its_code_and_output(tmp_path):
    m = harness.measure([sys.executable, "-c", "import sys; print('no luck'); sys.exit(3)"],
                        tmp_path / "log")
    assert m["returncode"] == 3 and (tmp_path / "log").read_text().strip() == "no luck"


def test_a_run_writes_its_machine_beside_the_figures(tmp_path):
    run = harness.Run()
    figure = {"figure": "x per s", "value": 2.0, "unit": "x/s", "peer": "y", "peer_value": 4.0,
              "ratio": 0.5}
    path = run.write(tmp_path / "results" / "demo.json", "demo", [figure], runs=[1, 2])
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["name"] == "demo" and data["runs"] == [1, 2] and data["figures"] == [figure]
    assert {"cpu", "cores", "gpu", "python", "load_avg_1min_at_start"} <= set(data["machine"])
    (row,) = report.rows(path)
    assert row[2:7] == ["x per s", "2 x/s", "y", "4 x/s", "0.500"]
    assert f"{data['machine']['cores']} cores" in row[7] and "load" in row[7]
