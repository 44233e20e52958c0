"""What %%interaction costs, measured side by side in one run against one real gateway.

1. Overhead: `%%interaction --model echo` in a real IPython shell against the same streamed
   `client.interactions.create(model="echo", stream=True)` through the SDK directly, p50 over
   interleaved runs (target: under 10 ms added).
2. Kernel responsiveness: a trivial cell in a real kernel, alone and while 20 background jobs
   stream from the `slow` test model (target: under 1.2x); as a control, the same while 20
   jobs stream into another process, which shows what machine load alone costs (2 cores
   shared with the gateway).

3. Widgets: the same 20 background jobs shown as run views. Followed by the page (as in
   JupyterLab with the server extension), the kernel does nothing per event: the streams are
   read by another process standing in for the browser, as its EventSource and the view's
   JSON.parse do (targets: kernel CPU under 2% of a core, a trivial cell under 1.05x).
   Followed by the kernel (no page access), it reads the streams and pushes coalesced events
   to the views (target under 1.2x). Beside them, the control: the 20 jobs stream into
   another process (what machine load alone costs). The page's stand-in starts following
   each view as it shows, as a page does (handed all 20 ids at once after the last job
   started, it read their backlogs during the measured cells).

   These rows measure the kernel, not the machine. On 2 shared cores the gateway's streams,
   the page and the kernel compete, and other work comes and goes, so:
   - the two sides of each ratio are interleaved rounds (cells with no jobs, then cells
     while the jobs stream; ten rounds per row, rows in turn) and each ratio is the median
     of all loaded cells over the median of all idle ones; the spread printed beside it is
     the p25-p75 of the ten rounds' own ratios, and each side's cell p50 [p25-p75];
   - they run twice: pinned, the kernel under test (and this driver, whose cells alternate
     with it) on CPU 0 and everything the kernel is not responsible for (the gateway, the
     page's stand-in, the control's process) on CPU 1 (sched_setaffinity on every thread):
     the targets are read on these; and unpinned, every process on every CPU: what a user
     on a 2-core laptop feels. The control is in both;
   - the kernel's CPU is utime+stime of its process (all its threads) from /proc, over 2 s
     with no cell running while the jobs stream; beside it, the kernel's CPU a trivial cell,
     loaded vs idle (what the kernel itself spent on the cells, which other work on the
     machine changes far less than their wall time).
   The load average is printed at the start and the end, and around each placement.

Run: .venv/bin/python benchmarks/magic.py [--runs N] [--widgets-only]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def start_gateway(root: Path):
    """The test suite's gateway launcher (it adds the `slow` model used here)."""
    sys.path.insert(0, str(ROOT))
    from tests.conftest import start_gateway as start

    return start(root / "gateway")


@contextlib.contextmanager
def benchmark_gateway(prefix: str) -> Iterator[Any]:
    """The test suite's gateway in a new temporary directory (Jupyter's runtime directory
    there too), stopped after; the load average is printed first."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ["JUPYTER_RUNTIME_DIR"] = str(root / "runtime")
    print(f"load average at the start: {load_average()}")
    gateway = start_gateway(root)
    try:
        yield gateway
    finally:
        gateway.stop()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def p50(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def overhead(gateway, runs: int) -> tuple[float, float]:
    from google import genai
    from IPython.core.displaypub import CapturingDisplayPublisher
    from IPython.core.interactiveshell import InteractiveShell

    os.environ.update(
        JUPYTER_INTERACTIONS_URL=gateway.url,
        JUPYTER_INTERACTIONS_TOKEN=gateway.token,
        JPY_SESSION_NAME="benchmark.ipynb",
    )
    shell = InteractiveShell.instance()
    shell.display_pub = CapturingDisplayPublisher()
    shell.run_cell("%load_ext jupyter_interactions")
    client = genai.Client(api_key=gateway.token, http_options={"base_url": gateway.url})
    cell = "%%interaction --model echo --new\nhello there, how are you today?"

    def magic() -> None:
        result = shell.run_cell(cell)
        assert result.error_in_exec is None, result.error_in_exec
        shell.display_pub.outputs.clear()

    def direct() -> None:
        with client.interactions.create(
            model="echo", input="hello there, how are you today?", stream=True
        ) as events:
            for _ in events:
                pass

    for _ in range(5):  # warm both paths (connections, imports)
        magic()
        direct()
    with_magic: list[float] = []
    with_sdk: list[float] = []
    for _ in range(runs):
        for fn, samples in ((magic, with_magic), (direct, with_sdk)):
            started = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - started)
    client.close()
    shell.run_cell("%unload_ext jupyter_interactions")
    return p50(with_magic), p50(with_sdk)


ROUNDS = 3
WIDGET_ROUNDS = 10  # idle, loaded, idle, loaded...: the shared machine's drift cancels
CONTROL = """
import sys
from jupyter_interactions.session import Session
session = Session("benchmark-control.ipynb")
jobs = [session.start(sys.argv[1], model="slow", thread=f"c{i}") for i in range(int(sys.argv[2]))]
print("streaming", flush=True)
sys.stdin.read()  # until the benchmark is done measuring
for job in jobs:
    job.cancel()
session.close()
"""


# The page's stand-in reads each stream as soon as its events come, as a browser's EventSource
# does (with the kernel-side follower's reader, unpaced), and decodes each event's data as the
# view's JSON.parse does; not through the SDK, whose per-event models cost about 300 us an
# event (12% of a core for these 400 events a second) that no browser spends.
BROWSER = """
import json, sys, threading
from jupyter_interactions.session import Session
from jupyter_interactions.widgets.calls import stream_request
from jupyter_interactions.widgets.sse import EventStream
connection = Session("benchmark-browser").connection
def follow(job_id):
    for payloads in EventStream(*stream_request(connection, job_id)).bursts(lambda: 0.0):
        for payload in payloads:
            json.loads(payload)
print("ready", flush=True)
for line in sys.stdin:
    threading.Thread(target=follow, args=(line.strip(),), daemon=True).start()
"""
WIDGETS = (
    "from jupyter_interactions.widgets.frontend import FRONT_END\n"
    "FRONT_END.forced = True\n"
    "FRONT_END.forced_follower = {follower!r}"
)


def quartiles(samples: list[float]) -> tuple[float, float, float]:
    q1, q2, q3 = statistics.quantiles(samples, n=4)
    return q1, q2, q3


def threads_of(pid: int) -> list[int]:
    """The thread ids of `pid` and of its child processes, recursively (Linux /proc)."""
    tids: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            tids.append(int(tid))
            children = Path(f"/proc/{pid}/task/{tid}/children").read_text().split()
            for child in children:
                tids += threads_of(int(child))
    except OSError:
        pass  # it ended meanwhile
    return tids


def place(pids: list[int], cpus: set[int]) -> None:
    """Run every thread of `pids` (and their children) on `cpus` only; threads they start
    later inherit it from the thread that starts them."""
    for pid in pids:
        for tid in threads_of(pid):
            with contextlib.suppress(OSError):
                os.sched_setaffinity(tid, cpus)


class Placement:
    """Where the processes run: "pinned" puts the kernel under test (and this driver, whose
    cells alternate with it, never overlap) on one CPU, and everything the kernel is not
    responsible for (the gateway and its `slow` streams, the process standing in for the
    page, the control's process) on the other; "unpinned" lets them all share every CPU, as
    on a 2-core laptop. Other work on the machine may still run anywhere."""

    def __init__(self, name: str, kernel_pid: int, gateway_pid: int) -> None:
        self.name = name
        every = set(range(os.cpu_count() or 1))
        self.kernel_cpus = {0} if name == "pinned" else every
        self.load_cpus = {1} if name == "pinned" else every
        place([os.getpid(), kernel_pid], self.kernel_cpus)
        place([gateway_pid], self.load_cpus)

    def spawn(self, args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
        """A load process (stdin and stdout piped) on the load CPUs."""
        proc = subprocess.Popen(
            args, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        place([proc.pid], self.load_cpus)
        return proc


def stop(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.close()
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
    proc.stdout.close()


SCENARIOS = ("control", "browser", "kernel")


def cells_with_cpu(run, kernel_pid: int, cells: int, cpu: list[float]) -> list[float]:
    """`cells` trivial cells' times; the kernel's CPU seconds a cell over them go to `cpu`
    (what the kernel itself spent, which other work on the machine does not change much)."""
    before = cpu_seconds(kernel_pid)
    times = [run("x = 1") for _ in range(cells)]
    cpu.append((cpu_seconds(kernel_pid) - before) / cells)
    return times


def widget_rows(run, printed, kernel_pid, gateway_pid, env, words, jobs, cells) -> dict:
    """Per placement (pinned, unpinned) and scenario, interleaved rounds of `cells` trivial
    cells with no jobs, then `cells` while `jobs` background jobs stream, then the kernel's
    CPU (utime+stime of all its threads, /proc) over 2 s with nothing run: the scenarios are
    the control (the jobs stream into another process: machine load only), the jobs shown as
    run views followed by the page (a process standing in for it reads the streams) and by
    the kernel (it reads them and pushes coalesced events to the views)."""
    rows: dict = {}
    for name in ("pinned", "unpinned"):
        placement = Placement(name, kernel_pid, gateway_pid)
        rows[f"{name} load"] = load_average()
        page = placement.spawn([sys.executable, "-c", BROWSER], env)
        assert page.stdout is not None and page.stdin is not None
        assert page.stdout.readline().strip() == "ready"
        samples = {
            s: {"idle": [], "loaded": [], "rounds": [], "cpu": [], "cell_cpu": ([], [])}
            for s in SCENARIOS
        }
        for round_ in range(WIDGET_ROUNDS):
            for scenario in SCENARIOS:
                got = samples[scenario]
                idle = cells_with_cpu(run, kernel_pid, cells, got["cell_cpu"][0])
                load = None
                names = [f"{scenario[0]}{name[0]}{round_}_{i}" for i in range(jobs)]
                if scenario == "control":
                    load = placement.spawn([sys.executable, "-c", CONTROL, words, str(jobs)], env)
                    assert load.stdout is not None
                    assert load.stdout.readline().strip() == "streaming"
                else:
                    run(WIDGETS.format(follower=scenario))
                    for job in names:
                        magic = (
                            f"%%interaction --model slow --background --thread {job} --out {job}"
                        )
                        run(f"{magic}\n{words}")
                        if scenario == "browser":  # the page follows a view once it shows
                            printed.clear()
                            run(f"print({job}.id)")
                            page.stdin.write("".join(printed).strip() + "\n")
                            page.stdin.flush()
                loaded = cells_with_cpu(run, kernel_pid, cells, got["cell_cpu"][1])
                cpu, wall = cpu_seconds(kernel_pid), time.monotonic()
                time.sleep(2.0)  # nothing run: only the kernel's followers (if any) use its CPU
                got["cpu"].append((cpu_seconds(kernel_pid) - cpu) / (time.monotonic() - wall))
                if load is not None:
                    stop(load)
                else:
                    run(f"for job in [{', '.join(names)}]: job.cancel()")
                got["idle"] += idle
                got["loaded"] += loaded
                got["rounds"].append(statistics.median(loaded) / statistics.median(idle))
        stop(page)
        rows[name] = samples
        rows[f"{name} load"] += f" -> {load_average()}"
    place([os.getpid(), kernel_pid, gateway_pid], set(range(os.cpu_count() or 1)))
    return rows


def kernel_env(gateway, session_name: str) -> dict[str, str]:
    """A kernel's environment: it finds `gateway`, has no Gemini key (offline), and is the
    notebook `session_name` (its Session's key)."""
    env = {k: v for k, v in os.environ.items() if k not in ("GEMINI_API_KEY", "GOOGLE_API_KEY")}
    env.update(
        JUPYTER_INTERACTIONS_URL=gateway.url,
        JUPYTER_INTERACTIONS_TOKEN=gateway.token,
        JPY_SESSION_NAME=session_name,
    )
    return env


@contextlib.contextmanager
def real_kernel(env: dict[str, str]) -> Iterator[tuple[int, Callable[[str], float], list[str]]]:
    """A real kernel with `env`: its pid, `run(code)` (a cell that must succeed; its wall
    time) and what the cells printed (the caller clears it)."""
    from jupyter_client.manager import KernelManager

    km = KernelManager(kernel_name="python3")
    km.start_kernel(env=env)
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        printed: list[str] = []

        def collect(msg: dict) -> None:
            if msg["msg_type"] == "stream":
                printed.append(msg["content"]["text"])

        def run(code: str) -> float:
            started = time.perf_counter()
            reply = kc.execute_interactive(code, output_hook=collect, timeout=60)
            assert reply["content"]["status"] == "ok", reply["content"]
            return time.perf_counter() - started

        yield km.provisioner.process.pid, run, printed  # type: ignore[union-attr]
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def responsiveness(gateway, runs: int, widgets_only: bool, jobs: int = 20) -> dict:
    """p50 of a trivial cell: alone; while `jobs` background jobs stream into this kernel;
    and, as a control, while the same jobs stream into another process (machine load only)."""
    env = kernel_env(gateway, "benchmark-kernel.ipynb")
    words = " ".join(["word"] * 300)  # `slow` streams one word per 50 ms: ~15 s per job
    with real_kernel(env) as (pid, run, printed):
        run("%load_ext jupyter_interactions")
        for _ in range(5):
            run("x = 1")
        alone: list[float] = []
        loaded: list[float] = []
        busy: list[float] = []
        idle_cpu: list[float] = []
        streaming = jobs
        per_round = max(runs // ROUNDS, 5)
        for round_ in range(0 if widgets_only else ROUNDS):  # interleaved: the load drifts
            alone += [run("x = 1") for _ in range(per_round)]

            control = subprocess.Popen(
                [sys.executable, "-c", CONTROL, words, str(jobs)],
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert control.stdout is not None and control.stdin is not None
            assert control.stdout.readline().strip() == "streaming"
            loaded += [run("x = 1") for _ in range(per_round)]
            control.stdin.close()
            control.wait(60)
            control.stdout.close()

            names = [f"job{round_}_{i}" for i in range(jobs)]
            for i, name in enumerate(names):
                thread = f"bg{round_}_{i}"
                magic = f"%%interaction --model slow --background --thread {thread} --out {name}"
                run(f"{magic}\n{words}")
            cpu, wall = cpu_seconds(pid), time.monotonic()
            busy += [run("x = 1") for _ in range(per_round)]
            time.sleep(1.0)  # idle kernel: only the jobs' followers use its CPU now
            idle_cpu.append((cpu_seconds(pid) - cpu) / (time.monotonic() - wall))
            listed = ", ".join(names)
            printed.clear()
            run(f"print(sum(job.status == 'in_progress' for job in [{listed}]))")
            streaming = min(streaming, int("".join(printed).strip() or -1))
            run(f"for job in [{listed}]: job.cancel()")
        widgets = widget_rows(
            run, printed, pid, gateway.proc.pid, env, words, jobs, max(runs // WIDGET_ROUNDS, 5)
        )
        if widgets_only:
            return {"widgets": widgets}
        return {
            "widgets": widgets,
            "alone": p50(alone),
            "control": p50(loaded),
            "busy": p50(busy),
            "streaming": streaming,
            "kernel_cpu": statistics.median(idle_cpu) * 100,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=240)  # fewer gave p50s 0.1x apart
    parser.add_argument("--widgets-only", action="store_true", help="only the widget rows")
    args = parser.parse_args()
    with benchmark_gateway("ji-bench-") as gateway:
        if not args.widgets_only:
            magic_ms, sdk_ms = overhead(gateway, args.runs)
        cells = responsiveness(gateway, args.runs, args.widgets_only)
    if args.widgets_only:
        print_widget_rows(cells["widgets"])
        print(f"load average at the end: {load_average()}")
        return
    print(f"%%interaction --model echo    p50 {magic_ms:7.2f} ms")
    print(f"SDK create(stream=True)       p50 {sdk_ms:7.2f} ms")
    print(f"  added by the magic              {magic_ms - sdk_ms:7.2f} ms   (target < 10 ms)")
    print(f"trivial cell, no jobs         p50 {cells['alone']:7.2f} ms")
    print(
        f"trivial cell, 20 jobs here    p50 {cells['busy']:7.2f} ms   "
        f"({cells['streaming']} still streaming after)"
    )
    ratio = cells["busy"] / cells["alone"]
    print(f"  ratio                           {ratio:7.2f} x    (target < 1.2x)")
    print(f"control: 20 jobs elsewhere    p50 {cells['control']:7.2f} ms   (machine load alone)")
    print(f"  ratio                           {cells['control'] / cells['alone']:7.2f} x")
    print(
        f"kernel CPU while 20 jobs stream   {cells['kernel_cpu']:7.1f} %    "
        "(of one core; includes the cells measured)"
    )
    print_widget_rows(cells["widgets"])
    print(f"load average at the end: {load_average()}")


def load_average() -> str:
    """1, 5 and 15 minute load averages (Linux /proc): how shared the 2 cores were."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


TARGETS = {"control": "machine load only", "browser": "< 1.05x, CPU < 2%", "kernel": "< 1.2x"}
WHAT = {
    "control": "control: 20 jobs stream elsewhere",
    "browser": "20 views followed by the page",
    "kernel": "20 views followed by the kernel",
}


def print_widget_rows(rows: dict) -> None:
    for name in ("pinned", "unpinned"):
        samples = rows[name]
        where = (
            "kernel on CPU 0; gateway, page stand-in, control on CPU 1: the targets"
            if name == "pinned"
            else "all processes on every CPU: what a 2-core laptop feels"
        )
        print(f"widgets, {name} ({where}; load average {rows[name + ' load']})")
        for scenario in SCENARIOS:
            got = samples[scenario]
            idle, loaded = quartiles(got["idle"]), quartiles(got["loaded"])
            rounds = quartiles(got["rounds"])
            ms = [1000 * v for v in (*idle, *loaded)]
            print(
                f"  {WHAT[scenario]:34s} {loaded[1] / idle[1]:5.2f}x "
                f"(rounds p25-p75 {rounds[0]:4.2f}-{rounds[2]:4.2f})  "
                f"cell p50 {ms[4]:6.2f} ms [p25-p75 {ms[3]:5.2f}-{ms[5]:5.2f}] "
                f"vs {ms[1]:6.2f} [{ms[0]:5.2f}-{ms[2]:5.2f}] with no jobs  "
                f"kernel CPU {100 * statistics.median(got['cpu']):4.1f} %, "
                f"a cell {1000 * statistics.median(got['cell_cpu'][1]):4.2f} ms "
                f"vs {1000 * statistics.median(got['cell_cpu'][0]):4.2f}  "
                f"({TARGETS[scenario]})"
            )


if __name__ == "__main__":
    main()
