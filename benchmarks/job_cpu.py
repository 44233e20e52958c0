"""What 20 unshown background jobs (`Session.start(..., show=False)`) cost a real kernel: its
CPU (utime+stime of all its threads, /proc) while they stream from the `slow` test model, and
a trivial cell's p50 with and without them, in interleaved rounds. The kernel imports the
jupyter_interactions that `make install` installed (editable: this tree's src/).

Run: .venv/bin/python benchmarks/job_cpu.py [--rounds N] [--jobs N]  (in make bench)
"""

from __future__ import annotations

import argparse
import statistics
import time

from magic import benchmark_gateway, cpu_seconds, kernel_env, load_average, real_kernel

WORDS = " ".join(["word"] * 300)  # `slow`: one word per 50 ms, ~15 s per job


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--cells", type=int, default=40)
    args = parser.parse_args()
    with benchmark_gateway("ji-job-cpu-") as gateway:
        with real_kernel(kernel_env(gateway, "job-cpu.ipynb")) as (pid, run, printed):
            run("import threading\nfrom jupyter_interactions.session import Session")
            run("s = Session('job-cpu.ipynb')")
            idle, busy, cpu, threads = [], [], [], []
            for round_ in range(args.rounds):
                idle += [run("x = 1") for _ in range(args.cells)]
                run(
                    f"jobs = [s.start({WORDS!r}, model='slow', thread='r{round_}_' + str(i)) "
                    f"for i in range({args.jobs})]"
                )
                time.sleep(1.0)  # the jobs are streaming
                before, wall = cpu_seconds(pid), time.monotonic()
                time.sleep(4.0)  # no cell runs: what the kernel spends is the jobs'
                cpu.append((cpu_seconds(pid) - before) / (time.monotonic() - wall))
                busy += [run("x = 1") for _ in range(args.cells)]
                printed.clear()
                run("print(len(threading.enumerate()), sum(not j.done() for j in jobs))")
                threads.append("".join(printed).strip())
                run("for j in jobs: j.cancel()")
                run("for j in jobs:\n    try: j.result(timeout=60)\n    except Exception: pass")
            alone, loaded = statistics.median(idle) * 1000, statistics.median(busy) * 1000
            print(f"trivial cell, no jobs          p50 {alone:7.2f} ms")
            ratio = loaded / alone
            print(f"trivial cell, {args.jobs} jobs unshown  p50 {loaded:7.2f} ms   {ratio:.2f}x")
            print(f"kernel CPU while they stream   {statistics.median(cpu) * 100:7.1f} % of a core")
            print(f"  per round: {', '.join(f'{c * 100:.1f}' for c in cpu)}")
            print(f"kernel threads, jobs running (per round): {threads}")
    print(f"load average at the end: {load_average()}")


if __name__ == "__main__":
    main()
