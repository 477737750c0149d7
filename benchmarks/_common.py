"""Helpers shared by the benchmark scripts: machine description, docs sections, subprocess handling.

Each benchmark script owns one marked section of ``docs/benchmarks.md``::

    <!-- NAME:begin -->
    ...
    <!-- NAME:end -->

and rewrites only that section, so the scripts never clobber each other's figures.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import platform
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"

_DOC_HEADER = """# Benchmarks

Measured figures and the commands that produced them. Every section below is written by a script in
`benchmarks/` (between its `<!-- name:begin -->` / `<!-- name:end -->` markers); re-running a script rewrites
only its own section. The targets come from `../shared/DESIGN.md`, "Performance targets".

| script | what it measures |
|---|---|
| `benchmarks/ingest.py` | N-Drive → `synced` through the real daemon and the ARS emulator (two processes, \
loopback): throughput, daemon CPU per asset, peak RSS, and one 2 GB file |
| `benchmarks/store.py` | the track store: transitions per second with group commit vs. one awaited call at a time |
| `benchmarks/imaging.py` | the image modules: barcodes and OCR on the real specimens, 54 MP sheets, crop, derivatives |

Benchmarks are never timed tests: they are run by hand (`make bench` runs `benchmarks/ingest.py`) on an
otherwise idle machine, and the figures depend on it (CPU, disk, load) — compare runs on the same machine.
Each figure comes with a *calibration*: milliseconds for a fixed pure-Python loop measured just before and
after the run (lower = faster CPU). On a shared VM it can drift by half from one minute to the next, and the
figures drift with it.
"""


def machine_summary() -> str:
    """One line describing the machine: CPUs, CPU model, memory, kernel, Python."""
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f", {int(line.split()[1]) / 1024 / 1024:.0f} GiB RAM"
                break
    cpus = len(os.sched_getaffinity(0))
    return (
        f"{cpus} CPU(s) (nproc), {model}{memory}, Linux {platform.release()}, "
        f"Python {platform.python_version()} ({platform.python_implementation()})"
    )


def calibrate() -> float:
    """Milliseconds for a fixed pure-Python loop, best of three: how fast this machine is right now.

    Shared virtual machines change speed from minute to minute; printing this next to each figure shows whether
    two runs ran on an equally fast CPU (lower is faster).
    """

    def loop() -> float:
        began = time.perf_counter()
        total = 0
        for i in range(1_000_000):
            total += i * i % 7
        return time.perf_counter() - began

    return 1000 * min(loop() for _ in range(3))


def today() -> str:
    """The current UTC date and time, to the minute."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def command_line() -> str:
    """The command that is running, as one would type it from the project root."""
    script = Path(sys.argv[0]).resolve()
    with contextlib.suppress(ValueError):
        script = script.relative_to(ROOT)
    return shlex.join([".venv/bin/python", str(script), *sys.argv[1:]])


def git_revision() -> str:
    """``commit abc1234`` of the project (``+ uncommitted changes`` when the tree is dirty), or ``unknown``."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "src"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "an unknown revision"
    return f"commit {commit}" + (" + uncommitted changes in src/" if dirty else "")


def write_section(name: str, body: str, *, doc: Path = DOC) -> None:
    """Replace (or append) the section ``name`` of ``doc``; everything outside its markers is kept."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    block = f"{begin}\n{body.strip()}\n{end}"
    text = doc.read_text() if doc.exists() else _DOC_HEADER
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text, count=1)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def text_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain aligned table for the terminal."""
    cells = [list(header), *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(cell.rjust(widths[i]) for i, cell in enumerate(row)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def start_process(argv: Sequence[str], *, log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start ``argv`` with stdout and stderr appended to ``log`` (a file: nothing can block on a full pipe)."""
    with log.open("ab") as out:
        return subprocess.Popen(
            list(argv), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=ROOT
        )


def wait_for_text(process: subprocess.Popen[bytes], log: Path, pattern: str, *, timeout_s: float) -> re.Match[str]:
    """Wait until ``log`` contains ``pattern`` (a regex); raise if the process exits or the time runs out."""
    regex = re.compile(pattern)
    deadline = time.monotonic() + timeout_s
    while True:
        found = regex.search(log.read_text(errors="replace")) if log.exists() else None
        if found:
            return found
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode} before {pattern!r}; see {log}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {pattern!r} in {log} after {timeout_s} s")
        time.sleep(0.005)


def stop_process(process: subprocess.Popen[bytes] | None, *, timeout_s: float = 15.0) -> int | None:
    """SIGTERM the process (by its PID), SIGKILL it after ``timeout_s``; returns its exit code."""
    if process is None:
        return None
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
            process.wait()
    return process.returncode


def proc_status_kib(pid: int, field: str) -> int:
    """A ``kB`` field of ``/proc/PID/status`` (``VmHWM`` = peak RSS, ``VmRSS``), in KiB; 0 if unavailable."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


__all__ = [
    "DOC",
    "ROOT",
    "calibrate",
    "command_line",
    "git_revision",
    "machine_summary",
    "markdown_table",
    "proc_status_kib",
    "start_process",
    "stop_process",
    "text_table",
    "today",
    "wait_for_text",
    "write_section",
]
