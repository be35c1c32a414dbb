"""The soak test: 2,000 mixed requests with LLM and index faults, nothing lost or doubled."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.soak import SoakConfig, run_soak

SOAK_LIMIT_SECONDS = 900  # bounded: a hang anywhere fails the test instead of stalling CI


@pytest.mark.slow
def test_two_thousand_mixed_requests_survive_llm_and_index_faults(tmp_path: Path) -> None:
    config = SoakConfig(requests=2000)
    report = run_soak(config, tmp_path)
    summary = report.summary()

    assert report.problems() == [], summary
    assert summary["requests"] == 2000
    assert summary["unanswered"] == 0
    # the faults really happened and were survived the intended way
    assert report.faults["index_outage"] == config.index_outages
    assert summary["index_unavailable"] > 0  # refused with "index unavailable" meanwhile
    assert summary["llm_fallbacks"] > 0  # failed LLM calls fell back to quotes
    assert summary["answered"] > 0.8 * summary["requests"]
    assert summary["digest_recovered"] >= 1  # the dead publisher's last post was found
    assert report.seconds < SOAK_LIMIT_SECONDS
