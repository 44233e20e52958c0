"""Local model benchmark: generating threads, quiet and beside CPU-bound processes, and slots
for concurrent turns, each measured side by side (alternating) in the same run.

    .venv/bin/python benchmarks/local_model.py [--rounds N] [--busy N] [--tokens N]

1. Decode threads: tokens/s and CPU-milliseconds per token for `decode_threads` 1 and 2 (the
   default is one less than the CPUs, at most 2): alone; beside `--busy` CPU-bound processes
   (an agent's code); and in two processes generating at once (two gateways, a second test
   run: each side's llama.cpp threads spin while they wait for each other, and the two
   processes' spinning collides).
2. Slots: four concurrent turns with `parallel` 1 (one runs, the rest wait in line) and 2 (two
   decode together): total time and the median time to each turn's first token.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from jupyter_interactions.gateway.models.base import Message, ModelRequest, TextDelta, Usage
from jupyter_interactions.gateway.models.llamacpp import LlamaCppModel

PROMPT = "Write a long essay about the history of Rome."


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def request(tokens: int, salt: int = 0) -> ModelRequest:
    text = PROMPT if not salt else f"{PROMPT} ({salt})"
    return ModelRequest(
        (Message("user", text),), generation={"temperature": 0, "max_output_tokens": tokens}
    )


async def decode(model: LlamaCppModel, tokens: int) -> tuple[float, float]:
    """Tokens per second and CPU-seconds per token for one turn (after its first token)."""
    first = cpu = 0.0
    produced = 0
    async for event in model.stream(request(tokens)):
        if isinstance(event, TextDelta) and not first:
            first, cpu = time.perf_counter(), cpu_seconds()
        if isinstance(event, Usage):
            produced = event.output_tokens
    elapsed, used = time.perf_counter() - first, cpu_seconds() - cpu
    return (produced - 1) / elapsed, used / max(1, produced - 1)


async def concurrent_turns(model: LlamaCppModel, turns: int, tokens: int) -> tuple[float, float]:
    """Total seconds for `turns` turns started together, and the median first token."""
    started = time.perf_counter()
    firsts: list[float] = []

    async def whole(salt: int) -> None:
        seen = False
        async for event in model.stream(request(tokens, salt)):
            if isinstance(event, TextDelta) and not seen:
                seen = True
                firsts.append(time.perf_counter() - started)

    await asyncio.gather(*(whole(i + 1) for i in range(turns)))
    return time.perf_counter() - started, statistics.median(firsts)


async def child(decode_threads: int, tokens: int) -> None:
    """One side of the two-process case: load, generate, print the figures as JSON."""
    model = LlamaCppModel("child", decode_threads=decode_threads, parallel=1)
    await model.load()
    print(json.dumps(await decode(model, tokens)), flush=True)
    await model.aclose()


def two_processes(decode_threads: int, tokens: int) -> list[tuple[float, float]]:
    command = [sys.executable, str(Path(__file__)), "--child", str(decode_threads)]
    command += ["--tokens", str(tokens)]
    children = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    return [tuple(json.loads(c.communicate()[0])) for c in children]  # type: ignore[misc]


async def threads_section(rounds: int, busy: int, tokens: int) -> None:
    models = {n: LlamaCppModel(f"decode{n}", decode_threads=n, parallel=1) for n in (1, 2)}
    for model in models.values():
        await model.load()
    for label, hogs in (("alone", 0), (f"beside {busy} busy processes", busy)):
        burners = [
            subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(hogs)
        ]
        try:
            results: dict[int, list[tuple[float, float]]] = {1: [], 2: []}
            for _ in range(rounds):
                for n, model in models.items():
                    results[n].append(await decode(model, tokens))
        finally:
            for burner in burners:
                burner.kill()
                burner.wait()
        for n, runs in results.items():
            rate = statistics.median(r[0] for r in runs)
            cpu = statistics.median(r[1] for r in runs) * 1000
            print(f"decode_threads={n}, {label}: {rate:.1f} tokens/s, {cpu:.1f} CPU-ms/token")
    for model in models.values():
        await model.aclose()
    pairs: dict[int, list[tuple[float, float]]] = {1: [], 2: []}
    for _ in range(rounds):
        for n in pairs:
            pairs[n].extend(two_processes(n, tokens))
    for n, runs in pairs.items():
        rate = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs) * 1000
        label = f"decode_threads={n}, two processes at once"
        print(f"{label}: {rate:.1f} tokens/s each, {cpu:.1f} CPU-ms/token")


async def slots_section(rounds: int) -> None:
    models = {n: LlamaCppModel(f"slots{n}", parallel=n) for n in (1, 2)}
    for model in models.values():
        await model.load()
    results: dict[int, list[tuple[float, float]]] = {1: [], 2: []}
    for _ in range(rounds):
        for n, model in models.items():
            results[n].append(await concurrent_turns(model, 4, 80))
    for n, runs in results.items():
        total = statistics.median(r[0] for r in runs)
        first = statistics.median(r[1] for r in runs)
        print(
            f"parallel={n}: 4 turns of 80 tokens in {total:.1f} s, median first token {first:.1f} s"
        )
    for model in models.values():
        await model.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--busy", type=int, default=4, help="CPU-bound processes beside it")
    parser.add_argument("--tokens", type=int, default=60, help="tokens per turn for threads")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        asyncio.run(child(args.child, args.tokens))
        return
    asyncio.run(threads_section(args.rounds, args.busy, args.tokens))
    asyncio.run(slots_section(args.rounds))


if __name__ == "__main__":
    main()
