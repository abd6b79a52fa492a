"""`ringward bench`'s arithmetic and report, from hand-made worker results.

No processes and no clocks: the workers' JSON objects are written out here,
so every figure has a known answer.
"""

from __future__ import annotations

import json
import math
from typing import Any

from ringward.cli.bench_cmd import _finite, format_result
from ringward.cli.bench_report import all_delivered_latencies_us, fold, percentile_ms


def _worker(node: int, **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "node": node,
        "sent": 20,
        "delivered_in_window": 60,
        "cpu_s": 0.5,
        "latencies_us": [1000 * node, 2000 * node],
        "undelivered_own": 0,
        "rotations_per_s": 100.0 + node,
        "rss_peak_kib": 40 * 1024 + node * 1024,
    }
    base.update(extra)
    return base


def test_all_delivered_is_the_last_node_and_skips_partial_messages() -> None:
    raw = [
        _worker(1, sends_us=[(7, 1_000), (8, 5_000)], deliveries_us=[(1, 7, 1_300), (1, 8, 5_100)]),
        _worker(2, sends_us=[], deliveries_us=[(1, 7, 1_900), (1, 8, 5_200)]),
        # node3 never reports message 8: it is not delivered everywhere.
        _worker(3, sends_us=[], deliveries_us=[(1, 7, 1_500)]),
    ]
    assert all_delivered_latencies_us(raw) == [900]


def test_fold_flood_figures() -> None:
    raw = [_worker(2, delivered_in_window=90), _worker(1), _worker(3)]
    r = fold(
        raw, size=100, duration=2.0, safe=False, rate=None, idle_s=0.0, uvloop=True, security=True
    )
    assert r.mode == "flood"
    assert [n.node for n in r.per_node] == [1, 2, 3]
    assert r.delivered_msgs_per_s == 30.0  # the lowest node: 60 in 2 s
    assert r.delivered_msgs_per_s_sum == 30.0 + 45.0 + 30.0
    assert r.cpu_pct_per_node == 25.0  # 0.5 s of CPU in a 2 s window
    assert r.cpu_s_per_1000_msgs == 1.5 / 60 * 1000
    assert r.rss_peak_mib_max == 43.0
    assert r.rotations_per_s == 102.0  # the median node
    assert r.latency_samples == 6
    assert r.latency_ms_p50 == 3.0  # nearest rank of 1, 2, 2, 3, 4, 6 ms
    assert math.isnan(r.latency_all_ms_p50)
    assert math.isnan(r.idle_cpu_pct_per_node)
    assert r.security.startswith("on")


def test_fold_idle_figures_and_report() -> None:
    idle = {"seconds": 4.0, "cpu_s": 0.2, "rotations_per_s": 300.0}
    raw = [
        _worker(1, idle=idle, sends_us=[(1, 10)], deliveries_us=[(1, 1, 2_010)]),
        _worker(2, idle={**idle, "cpu_s": 0.4}, deliveries_us=[(1, 1, 3_010)]),
    ]
    r = fold(
        raw, size=100, duration=2.0, safe=False, rate=10.0, idle_s=4.0, uvloop=True, security=False
    )
    assert r.mode == "idle"
    assert math.isclose(r.idle_cpu_pct_per_node, 7.5)
    assert math.isclose(r.idle_cpu_pct_per_node_max, 10.0)
    assert r.idle_rotations_per_s == 300.0
    assert r.latency_all_ms_p50 == 3.0
    text = format_result(r)
    assert "idle ring (4 s, no messages): cpu 7.5% of a core per node (max 10.0%)" in text
    assert "delivered at every node: p50 3.00 ms" in text
    assert "peak resident 42.0 MiB" in text
    assert r.security.startswith("off")


def test_json_has_no_nan() -> None:
    r = fold(
        [_worker(1, latencies_us=[])],
        size=100,
        duration=1.0,
        safe=False,
        rate=None,
        idle_s=0.0,
        uvloop=False,
        security=True,
    )
    doc = json.loads(json.dumps(_finite(r.to_json()), allow_nan=False))
    assert doc["latency_ms_p50"] is None
    assert doc["idle_cpu_pct_per_node"] is None
    assert doc["per_node"][0]["cpu_pct"] == 50.0
    assert "-" in format_result(r)


def test_percentile_nearest_rank() -> None:
    assert percentile_ms([1000, 2000, 3000, 4000], 0.5) == 3.0
    assert percentile_ms([1000, 2000, 3000, 4000], 0.99) == 4.0
    assert math.isnan(percentile_ms([], 0.5))
