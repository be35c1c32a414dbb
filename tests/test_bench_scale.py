from __future__ import annotations

import json
import time
from typing import Any

from bench.scale import markdown, throughputs


def _size_result(qps: dict[int, float], cpu: dict[int, float]) -> dict[str, Any]:
    cell = {"p50_ms": 1.0, "p95_ms": 2.0, "cpu_p50_ms": 1.0}
    timings = (
        "numpy_brute_force_dense dense hybrid hybrid_week hybrid_engine_fusion "
        "hybrid_week_engine_fusion search_with_embedding embedding_only"
    ).split()
    result: dict[str, Any] = {name: cell for name in timings}
    result.update(sparse_vectors_s=1.0, write_s=1.0, optimize_s=1.0, passages=1000)
    for key in ("threads_index", "threads_search", "threads_search_uncoalesced"):
        result[f"{key}_qps"], result[f"{key}_cpu_ms"] = qps, cpu
    return result


def test_throughputs_report_queries_per_second_and_cpu_per_query() -> None:
    def busy(i: int) -> None:
        end = time.process_time() + 0.002
        while time.process_time() < end:
            pass

    qps, cpu = throughputs(busy, [1, 2], total=20, rounds=1)
    assert set(qps) == set(cpu) == {1, 2}
    assert all(rate > 0 for rate in qps.values())
    assert all(ms >= 1.5 for ms in cpu.values())  # each call burns 2 CPU ms


def test_the_report_takes_results_in_memory_and_from_results_json() -> None:
    # In memory the searcher counts are ints; results.json has them as strings.
    results = {
        "date": "2026-12-04",
        "args": "--sizes 1000",
        "searchers": [1, 8],
        "machine": {"cores": 2, "machine": "x86_64", "python": "3.11", "load_average": 0.1},
        "sizes": {1000: _size_result({1: 40.0, 8: 70.0}, {1: 30.0, 8: 20.0})},
    }
    results["machine"]["busy"] = False
    for given in (results, json.loads(json.dumps(results))):
        text = markdown(given)
        # 8 vs 1: 70 / 40; at most 2 cores x 1000 / 20 CPU ms = 100 q/s, 2.5x of 40
        row = "| 1,000 | `search` with embedding | 40.0 | 70.0 | 1.75x | 30.0 / 20.0 | 2.50x |"
        assert row in text
