"""``bench.report``: result files with and without ``figures`` become rows of one table."""

from __future__ import annotations

import json

import pytest

from bench import report
from common.errors import UserError

MACHINE = {"cpu": "Test CPU", "cores": 2, "gpu": None, "load_avg_1min_at_start": 3.21}


def write(path, data: dict):
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_figures_become_rows_with_peer_ratio_machine_and_date(tmp_path):
    path = write(tmp_path / "crawl.json", {
        "name": "crawl", "date": "2026-11-23T12:30:05+00:00", "machine": MACHINE,
        "figures": [{"figure": "pages/s", "value": 154.8, "unit": "pages/s", "peer": "no-op",
                     "peer_value": 191.8, "ratio": 0.807, "device": "CPU"},
                    {"figure": "render", "value": 0.2, "unit": "s/page", "peer": "fetch",
                     "peer_value": 0.0014, "ratio": 142.86}]})
    first, second = report.rows(path)
    assert first == ["crawl", "CPU", "pages/s", "155 pages/s", "no-op", "192 pages/s", "0.807",
                     "Test CPU, 2 cores, GPU none, load 3.2 at start", "2026-11-23 12:30 UTC"]
    assert second[3:7] == ["0.2 s/page", "fetch", "0.0014 s/page", "142.9"]


def test_gpu_machine_and_file_without_figures(tmp_path):
    path = write(tmp_path / "old.json", {"date": "2026-11-23 12:04 UTC",
                                         "machine": {"cpu": "X", "cores": 8, "gpu": "NVIDIA H100"},
                                         "median": {"ratio": 0.5}, "runs": [{"ratio": 9.0}]})
    (row,) = report.rows(path)
    assert row[1] == "GPU" and row[6] == "0.500" and "no `figures` list" in row[2]
    assert row[7:] == ["X, 8 cores, GPU NVIDIA H100", "2026-11-23 12:04 UTC"]


def test_render_has_one_table_and_the_note(tmp_path):
    a = write(tmp_path / "a.json", {"machine": MACHINE, "figures": [
        {"figure": "f|g", "value": 1, "peer": "p", "peer_value": 2, "ratio": 0.5}]})
    text = report.render([a], note="shared machine")
    assert "**Note:** shared machine" in text
    table = [line for line in text.splitlines() if line.startswith("|")]
    assert len(table) == 3 and "f\\|g" in table[2]


def test_unreadable_result_is_a_user_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(UserError, match="bad.json"):
        report.rows(bad)
