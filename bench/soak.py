"""Soak figures for issue 7: mixed requests through the console connector, with faults.

Runs `tests/soak.py` (console sessions against one Runtime, a fake LLM and a Qdrant REST
server on 127.0.0.1, both failing on a seeded schedule, digest publishers crashing and
racing) and writes what happened to docs/benchmarks.md. The same run with no faults is the
baseline, so the cost of the faults shows as a ratio.
Run: `python bench/soak.py [--requests 2000]`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import OUT, write_doc  # noqa: E402
from tests.soak import SoakConfig, SoakReport, run_soak  # noqa: E402

BEGIN, END = "<!-- bench:soak:begin -->", "<!-- bench:soak:end -->"


def run(config: SoakConfig) -> tuple[SoakReport, SoakReport]:
    calm = replace(config, llm_fault_rate=0.0, index_outages=0)
    warm_up = replace(calm, requests=200, digest_rounds=0)
    reports = []
    for chosen in (warm_up, calm, config):  # the first loads the model, warms the caches
        with tempfile.TemporaryDirectory() as tmp:
            report = run_soak(chosen, Path(tmp))
        problems = report.problems()
        if problems:
            raise SystemExit("soak failed: " + "; ".join(problems))
        reports.append(report)
    return reports[1], reports[2]


def markdown(calm: dict, faulty: dict, config: SoakConfig, when: str, machine: str) -> str:
    def row(name: str, key: str, unit: str = "") -> str:
        return f"| {name} | {calm[key]}{unit} | {faulty[key]}{unit} |"

    throughput = (
        faulty["requests_per_second"] / calm["requests_per_second"]
        if calm["requests_per_second"]
        else 0.0
    )
    faults = ", ".join(f"{k} {v}" for k, v in sorted(faulty["faults"].items()))
    return "\n".join(
        [
            BEGIN,
            "## Soak: mixed requests with LLM and index faults (issue 7)",
            "",
            f"Measured {when} on {machine} with `python bench/soak.py` "
            f"(`tests/test_soak.py` runs the same with its assertions). {config.sessions} "
            "console sessions in parallel send searches, `/paper ask`, `/paper show`, "
            "`/paper digest` and threaded follow-ups to one Runtime; the LLM is the fake "
            "OpenAI-compatible server and the index a Qdrant REST server over the embedded "
            "engine, both on 127.0.0.1. Meanwhile the week's digest is posted "
            f"{config.digest_rounds} times by a publisher that dies after its 3rd post and "
            "two that then race to finish. The baseline is the same run with no faults.",
            "",
            f"Faults injected: {faults}.",
            "",
            "| | no faults (baseline) | with faults |",
            "|---|---|---|",
            row("requests", "requests"),
            row("answered", "answered"),
            row("refused with a message", "refused"),
            row("unanswered (must be 0)", "unanswered"),
            row("answers that fell back to quotes", "llm_fallbacks"),
            row("refused: index unavailable", "index_unavailable"),
            row("wall time", "seconds", " s"),
            row("requests per second", "requests_per_second"),
            row("latency p50", "p50_ms", " ms"),
            row("latency p95", "p95_ms", " ms"),
            row("latency max", "max_ms", " ms"),
            *(
                f"| latency p50, {kind} | {calm['p50_ms_by_kind'].get(kind, '-')} ms | "
                f"{faulty['p50_ms_by_kind'].get(kind, '-')} ms |"
                for kind in ("search", "ask", "follow_up", "show", "digest")
            ),
            row("conversation threads", "threads"),
            row("conversation turns stored (all expected)", "turns"),
            row("digest messages posted", "digest_posts"),
            row("digest messages, distinct", "digest_unique"),
            row("digest messages recovered after a crash", "digest_recovered"),
            row("resident memory at start", "rss_start_mb", " MB"),
            row("resident memory at end", "rss_end_mb", " MB"),
            row("memory growth after warm-up", "rss_growth_after_warmup_mb", " MB"),
            "",
            f"Throughput with faults is {throughput:.2f}x the baseline's. The medians are "
            "lower with faults: a session waiting out an LLM timeout, or pausing after being "
            f"told the index is unavailable, leaves the {os.cpu_count()} cores to the other "
            f"{config.sessions - 1} sessions, whose requests then run faster; the faults show "
            "in the tail (p95, max). Every request was answered or refused with a message; "
            "every answered question left exactly its two turns; every digest message was "
            "posted exactly once, the crashed publisher's last post recovered instead of "
            "repeated; memory did not grow after warm-up.",
            END,
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    config = SoakConfig(requests=args.requests)
    calm, faulty = (r.summary() for r in run(config))
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "soak.json").write_text(json.dumps({"calm": calm, "faulty": faulty}, indent=2))
    when = time.strftime("%Y-%m-%d")
    machine = f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}"
    write_doc(markdown(calm, faulty, config, when, machine), BEGIN, END)
    print(json.dumps({"calm": calm, "faulty": faulty}, indent=2))


if __name__ == "__main__":
    main()
