"""The benchmark scripts still run (a few seconds: their --smoke settings, on the CPU)."""

import json
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture
def throughput(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import throughput

    yield throughput
    sys.modules.pop("throughput", None)


def test_throughput_smoke_run_writes_its_table(throughput, tmp_path):
    throughput.main(["--smoke", "--rounds", "1", "--results-dir", str(tmp_path)])
    result = json.loads((tmp_path / "throughput_cpu_smoke.json").read_text())
    (row,) = result["fit"]
    assert row["student"] == "default" and row["batch_size"] == 256
    assert row["fit"]["skdistill"]["steady_rows_per_s"] > 0
    assert row["fit"]["bare, no sync"]["steady_rows_per_s"] > 0
    assert result["meta"]["same_seed"] is True
    assert "| default | 256 |" in (tmp_path / "throughput_cpu_smoke.md").read_text()
