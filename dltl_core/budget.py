"""One memory budget for the whole app, read from the machine it runs on.

A Streamlit server runs every visitor in one process; heavy work runs in job processes
beside it (``dltl_core.job_runner``). When the server and its jobs together go over the
machine's memory limit, the platform restarts the app and every visitor loses their
page. So every heavy action is measured against one budget:

* the **limit**: ``DLTL_MEMORY_MB`` when the operator states it (e.g. to rehearse a
  2.7 GB Community Cloud machine on a big one), else the cgroup's limit (v2
  ``memory.max``, v1 ``memory.limit_in_bytes``), else the machine's ``MemTotal``
  (``/proc/meminfo``), whichever is smallest;
* minus what the **server** process holds now (its resident memory, shared libraries
  included), a **reserve** for the server's own growth (a rerun, a decoded upload), and
  what the **running jobs** may still take (each job's cap, reserved while it runs);
* gives the memory **free** for a new job.

A job's cost is its private memory (``RssAnon + RssShmem`` in ``/proc/PID/status``): the
shared libraries it maps (torch's ~420 MB) are the same file pages the server already
holds, counted once by the kernel's cgroup accounting and once here, in the server's RSS.

From the budget come the defaults of the job runner: how many jobs run at once
(``DLTL_MAX_JOBS``) and the memory cap of one job (``DLTL_JOB_MEMORY_MB``; the cap counts
the job's own imports). An operator's setting always wins over the derived value.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

MB = 2**20

MEMORY_ENV = "DLTL_MEMORY_MB"  # the machine's limit as the operator states it
JOB_MEMORY_ENV = "DLTL_JOB_MEMORY_MB"  # the memory cap of one job (imports included)
MAX_JOBS_ENV = "DLTL_MAX_JOBS"  # jobs running at once
RESERVE_ENV = "DLTL_RESERVE_MB"  # headroom kept for the server's own growth

# Headroom for the server process itself: a rerun's transient tensors, a decoded upload
# (bounded by the upload code), Streamlit's own caches. Measured: one page rerun adds
# < 100 MB; a 40 MP photo decoded within its budget about 160 MB.
DEFAULT_RESERVE_MB = 300.0
# The private memory of a job process right after its imports (torch 2.14.1, CUDA build,
# on a CPU: 279 MB RssAnon; with the transfer backbone 429 MB). A job cap below this
# cannot run anything, so it also bounds how many jobs fit at once.
JOB_BASE_MB = 300.0
# A job that may not even hold its imports plus this much is pointless: not offered.
SMALLEST_JOB_MB = JOB_BASE_MB + 100.0
_UNLIMITED = 2**60  # cgroup v1 writes 9223372036854771712 for "no limit"

# Where the limits are read (tests point these at fake files).
PROC_CGROUP = Path("/proc/self/cgroup")
CGROUP_ROOT = Path("/sys/fs/cgroup")
MEMINFO = Path("/proc/meminfo")


def env_number(name: str) -> float | None:
    """A positive number from the environment, or None when unset or not a positive number."""
    try:
        value = float(os.environ.get(name, ""))
    except ValueError:
        return None
    return value if value > 0 and math.isfinite(value) else None


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    if text == "max":
        return None  # cgroup v2: no limit
    try:
        value = int(text)
    except ValueError:
        return None
    return value if 0 < value < _UNLIMITED else None


def _cgroup_paths() -> tuple[list[Path], list[Path]]:
    """(cgroup v2 ``memory.max`` files, cgroup v1 ``memory.limit_in_bytes`` files) to read,
    this process's own group first, then the mount's root (a container sees its own group
    there)."""
    v2, v1 = [], []
    try:
        lines = PROC_CGROUP.read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, group = parts
        group = group.lstrip("/")
        if controllers == "":  # v2 unified hierarchy: "0::/path"
            v2 += [CGROUP_ROOT / group / "memory.max", CGROUP_ROOT / "memory.max"]
        elif "memory" in controllers.split(","):
            v1 += [CGROUP_ROOT / "memory" / group / "memory.limit_in_bytes",
                   CGROUP_ROOT / "memory" / "memory.limit_in_bytes"]
    return v2, v1


def cgroup_limit_bytes() -> tuple[int, str] | None:
    """The cgroup memory limit of this process and where it came from, or None (no limit)."""
    v2, v1 = _cgroup_paths()
    for paths, what in ((v2, "cgroup v2 memory.max"), (v1, "cgroup v1 memory.limit_in_bytes")):
        for path in paths:
            value = _read_int(path)
            if value is not None:
                return value, what
    return None


def meminfo_mb() -> dict[str, float]:
    """``/proc/meminfo`` in MB (``MemTotal``, ``MemAvailable``...), empty where unreadable."""
    out: dict[str, float] = {}
    try:
        lines = MEMINFO.read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        key, _, rest = line.partition(":")
        fields = rest.split()
        if fields and fields[0].isdigit():
            out[key] = int(fields[0]) * 1024 / MB  # the file counts kB
    return out


def machine_limit() -> tuple[float, str]:
    """(the memory limit in MB, where it came from): ``DLTL_MEMORY_MB``, else the smallest
    of the cgroup limit and ``MemTotal``."""
    stated = env_number(MEMORY_ENV)
    if stated is not None:
        return stated, MEMORY_ENV
    candidates: list[tuple[float, str]] = []
    cg = cgroup_limit_bytes()
    if cg is not None:
        candidates.append((cg[0] / MB, cg[1]))
    total = meminfo_mb().get("MemTotal")
    if total:
        candidates.append((total, "/proc/meminfo MemTotal"))
    return min(candidates) if candidates else (float("inf"), "unknown")


@dataclass(frozen=True)
class ProcessMemory:
    """Memory of one process in MB (``/proc/PID/status``; zeros where unknown).

    Attributes:
        rss: resident memory, shared libraries included.
        private: ``RssAnon + RssShmem``: what this process adds to the machine's use.
        peak_rss: the most ``rss`` ever was (``VmHWM``).
    """

    rss: float = 0.0
    private: float = 0.0
    peak_rss: float = 0.0


def process_memory(pid: int | str = "self") -> ProcessMemory:
    """``ProcessMemory`` of a process (Linux ``/proc``), zeros when it is gone or unknown."""
    fields: dict[str, float] = {}
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "RssAnon", "RssShmem", "VmHWM"):
                    fields[key] = int(rest.split()[0]) * 1024 / MB
    except (OSError, ValueError, IndexError):
        return ProcessMemory()
    return ProcessMemory(fields.get("VmRSS", 0.0), fields.get("RssAnon", 0.0) + fields.get("RssShmem", 0.0),
                         fields.get("VmHWM", 0.0))


def reserve_mb() -> float:
    """Headroom kept for the server's own growth (``DLTL_RESERVE_MB``, default 300)."""
    return env_number(RESERVE_ENV) or DEFAULT_RESERVE_MB


@dataclass(frozen=True)
class Budget:
    """One snapshot of the memory budget, in MB.

    Attributes:
        limit: the machine's limit (see ``machine_limit``).
        source: where the limit came from (``DLTL_MEMORY_MB``, ``cgroup v2 memory.max``...).
        server: the server process's resident memory now.
        reserve: headroom kept for the server's growth.
        jobs: memory reserved by the jobs running now (their caps).
    """

    limit: float
    source: str
    server: float
    reserve: float
    jobs: float = 0.0

    @property
    def free(self) -> float:
        """Memory a new job may take now (never negative)."""
        return max(0.0, self.limit - self.server - self.reserve - self.jobs)

    @property
    def for_jobs(self) -> float:
        """Memory all jobs together may take (running ones included)."""
        return max(0.0, self.limit - self.server - self.reserve)

    def as_dict(self) -> dict[str, float | str]:
        """Plain numbers (for JSON and the soak bench)."""
        return {"limit_mb": round(self.limit), "source": self.source, "server_mb": round(self.server),
                "reserve_mb": round(self.reserve), "jobs_mb": round(self.jobs), "free_mb": round(self.free)}


def current(jobs_mb: float = 0.0) -> Budget:
    """The budget now, with ``jobs_mb`` reserved by running jobs (the job runner passes it)."""
    limit, source = machine_limit()
    return Budget(limit, source, process_memory().rss, reserve_mb(), jobs_mb)


def max_jobs(budget: Budget | None = None, cores: int | None = None) -> int:
    """Jobs running at once: ``DLTL_MAX_JOBS``, else one per two cores beyond the first two
    (1 on a 1-2 core machine, else 2), and no more than the smallest job fits into the
    memory for jobs (at least 1: a job that cannot fit is refused by its need, not here)."""
    stated = env_number(MAX_JOBS_ENV)
    if stated is not None:
        return max(1, int(stated))
    by_cores = 1 if (cores or os.cpu_count() or 1) <= 2 else 2
    budget = budget or current()
    by_memory = int(budget.for_jobs // SMALLEST_JOB_MB) if math.isfinite(budget.for_jobs) else by_cores
    return max(1, min(by_cores, by_memory))


def job_cap_mb(budget: Budget | None = None, jobs: int | None = None) -> float:
    """The memory cap of one job, its imports included: ``DLTL_JOB_MEMORY_MB``, else the
    memory for jobs shared by the jobs that may run at once."""
    stated = env_number(JOB_MEMORY_ENV)
    if stated is not None:
        return stated
    budget = budget or current()
    return budget.for_jobs / max(1, jobs or max_jobs(budget))


def gb(mb: float) -> str:
    """``1.1 GB`` / ``640 MB``: how messages name an amount of memory."""
    return f"{mb / 1024:.1f} GB" if mb >= 1000 else f"{max(0.0, mb):.0f} MB"


def refusal(what: str, need_mb: float, budget: Budget | None = None) -> str | None:
    """Why ``what`` (e.g. "Training from scratch") cannot run on this server, or None when it fits.

    It fits when its need is within one job's cap (``job_cap_mb``). A job that fits but
    finds the memory taken by other jobs waits in the queue until theirs is released.
    """
    budget = budget or current()
    cap = job_cap_mb(budget)
    if need_mb <= cap:
        return None
    if env_number(JOB_MEMORY_ENV) is not None:
        return f"{what} needs about {gb(need_mb)}; one job may use at most {gb(cap)} on this server."
    return f"{what} needs about {gb(need_mb)}; this server has {gb(cap)} free."


__all__ = ["Budget", "ProcessMemory", "current", "gb", "job_cap_mb", "machine_limit", "max_jobs",
           "process_memory", "refusal", "reserve_mb"]
