"""bench/privacy_audit.py at a tiny size: planted copies per kind and criterion under both
pixel distances, false flags among the real images, and one timed audit per distance."""

from __future__ import annotations

import json
from pathlib import Path

from bench import privacy_audit


def test_the_bench_reports_recall_false_flags_and_seconds(tmp_path: Path) -> None:
    out = tmp_path / "audit.json"
    privacy_audit.main(
        [
            "--dataset", "digits", "--rounds", "2", "--planted", "0.05", "--threads", "1",
            "--speed-queries", "30", "--speed-rows", "90", "--speed-holdout", "20",
            "--out", str(out),
        ]
    )  # fmt: skip
    report = json.loads(out.read_text())
    assert set(report["planted"]) == {"translation-tolerant", "plain-l2"}
    for result in report["planted"].values():
        assert result["planted"] == {"exact": 6, "noise": 6, "shift": 6}  # 2 × 9, in turn
        assert result["real_images"] == report["test"]
        for criterion in ("ratio", "calibrated", "authenticity"):
            assert result["recall"]["exact"][criterion] == 1.0
            assert 0 <= result["false_flags"][criterion] <= 1
        assert result["round_0"]["counts"]["generated"] == report["test"] // 2 + 9
    for timing in report["speed"].values():
        assert timing["seconds"] > 0 and timing["queries"] == 30 and timing["rows"] == 90
