"""Record/replay benchmark: one session recorded against a stand-in for Google (a gateway on
loopback answering `gemini-test` with the local model and running an agent), then replayed on
fresh gateways without a key, at the default pacing and at none, side by side in one run.

    .venv/bin/python benchmarks/replay.py [--turns N]

The session: a thread of N local-model turns (at most 32 tokens each) and an agent turn that
writes a 1 MiB file twice under two names. Printed: each phase's seconds, replay against
record as a ratio, and the cassette's size (entries, and blobs stored once by content hash).
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' real gateways
from tests.conftest import GatewayProcess, start_gateway
from tests.replay.conftest import agent_run, cassette_route, fence, session_client

QUESTIONS = (
    "In one sentence, what is a Jupyter notebook?",
    "Now say it in at most ten words.",
    "And what is a kernel?",
    "Name one language it runs.",
)
WRITE_FILES = fence(
    "data = bytes(range(256)) * 4096\n"
    "open('one.bin', 'wb').write(data)\n"
    "open('two.bin', 'wb').write(data)\n"
    "print(len(data))"
)


def session(gateway: GatewayProcess, turns: int) -> float:
    """Run the session through the SDK; its seconds."""
    client = session_client(gateway)
    started = time.perf_counter()
    previous = None
    for question in QUESTIONS[:turns]:
        answer = client.interactions.create(
            model="gemini-test",
            input=question,
            previous_interaction_id=previous,
            generation_config={"max_output_tokens": 32},
        )
        assert answer.status in ("completed", "incomplete"), answer  # incomplete: the limit
        previous = answer.id
    agent_run(client, WRITE_FILES)
    elapsed = time.perf_counter() - started
    client.close()
    return elapsed


def size(folder: Path, pattern: str) -> tuple[int, int]:
    files = [p for p in folder.glob(pattern) if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=3, choices=range(1, len(QUESTIONS) + 1))
    args = parser.parse_args()
    warnings.filterwarnings("ignore", "Agents usage is experimental")  # the SDK's notice
    work = Path(tempfile.mkdtemp(prefix="bench-replay-"))
    cassette = work / "notebooks" / "bench.interactions"
    key = "AIza" + secrets.token_urlsafe(30)
    gateways: list[GatewayProcess] = []

    def gateway(name: str, **options: Any) -> GatewayProcess:
        gateways.append(start_gateway(work / name, **options))
        return gateways[-1]

    try:
        stand_in = gateway("google", token=key, models={"gemini-test": {"adapter": "local"}})
        google = stand_in.client()
        google.agents.create(id="antigravity-test", base_agent="local-agent")
        google.close()
        recorder = gateway(
            "recorder",
            env={"GEMINI_API_KEY": key},
            settings={"upstream_url": stand_in.url, "upstream_attempts": 1},
        )
        cassette_route(recorder, mode="record", path=str(cassette))
        recorded = session(recorder, args.turns)
        assert cassette_route(recorder)["problems"] == []
        stand_in.stop()  # replay must not need it
        rows = [("record (stand-in, local model)", recorded)]
        for pacing in (0.1, 0.0):
            replayer = gateway(f"replay-{pacing}", settings={"replay_pacing": pacing})
            cassette_route(replayer, mode="replay", path=str(cassette))
            rows.append((f"replay, pacing {pacing}", session(replayer, args.turns)))
        print(f"{args.turns} model turns and one agent turn writing 2 x 1 MiB (same bytes)")
        for name, seconds in rows:
            print(f"  {name:<32} {seconds:7.2f} s   x{seconds / recorded:.3f} of record")
        entries, entry_bytes = size(cassette, "interactions/*.json")
        blobs, blob_bytes = size(cassette, "blobs/*")
        print(
            f"  cassette: {entries} entries, {entry_bytes:,} bytes;"
            f" {blobs} blobs, {blob_bytes:,} bytes"
        )
    finally:
        for started in gateways:
            started.stop()


if __name__ == "__main__":
    main()
