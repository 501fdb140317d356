"""A bounded runner for heavy work: one spawned process per job, a queue, limits, real cancel.

A Streamlit server runs every visitor in one Python process. Training in that
process cannot be stopped mid-step, shares torch's global random generator with
every other visitor and can exhaust the server's memory. Here each heavy piece
of work runs in its own process (``multiprocessing`` with the *spawn* context):

* at most ``DLTL_MAX_JOBS`` jobs run at once (default from ``dltl_core.budget``: 1 on
  a 1-2 core machine, else 2, fewer when the memory holds fewer); the others wait in a
  first-come queue whose position can be read;
* one unfinished (queued or running) job per ``owner`` (a visitor): a second
  ``submit`` raises ``Busy`` naming the first;
* each job gets a time limit (``DLTL_JOB_SECONDS``, default 600) and a memory cap
  (``DLTL_JOB_MEMORY_MB``, else derived from the machine's memory budget). The cap
  counts the job's whole private memory, its imports included: ``RLIMIT_AS`` in the
  child lets it add no more address space than the cap minus what its imports hold,
  and the parent ends a job whose private memory (``RssAnon + RssShmem``) passes the
  cap (the only check where ``RLIMIT_AS`` cannot be used, e.g. with CUDA);
* a job starts only when its cap fits into the budget's free memory (the server's own
  memory and the running jobs' caps counted); until then it waits in the queue, and one
  that cannot fit even alone fails at once with the figures;
* cancel terminates the process (SIGTERM, then SIGKILL after 2 s);
* a job whose owner stopped sending heartbeats (a closed browser tab) is
  cancelled after ``heartbeat_timeout`` seconds;
* each job seeds its own process (``seed_everything``), so two runs side by side
  give exactly the results each gives alone;
* a job ends with its result or one clear message (timeout, out of memory,
  cancelled, or the exception's message), never a traceback.

A job is a **top-level, importable function** ``fn(config, report)`` (defined in
a module, not in a page script, because the spawned process imports it by name)
whose ``config`` and return value are picklable. ``report(phase, done, total,
payload=None)`` sends progress back; ``payload`` (a small picklable dict, e.g.
one epoch's row of a learning curve) is kept in order as a partial result.

Example:
    >>> from dltl_core.job_runner import get_runner
    >>> runner = get_runner()
    >>> job = runner.submit(train_job, {"epochs": 3}, seed=0)   # doctest: +SKIP
    >>> runner.poll(job).phase, runner.wait(job).result           # doctest: +SKIP
"""

from __future__ import annotations

import atexit
import itertools
import logging
import multiprocessing as mp
import multiprocessing.util  # noqa: F401 - registers its exit hook before ours (see _shutdown_runner)
import os
import pickle
import sys
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from dltl_core import budget as mem

log = logging.getLogger(__name__)

ReportFn = Callable[..., None]  # report(phase: str, done: int, total: int, payload: dict | None = None)
JobFn = Callable[[Any, ReportFn], Any]

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
FINISHED = (DONE, FAILED, CANCELLED)
_ALL_RUNNERS: "weakref.WeakSet[JobRunner]" = weakref.WeakSet()
_KILL_GRACE = 2.0  # seconds between SIGTERM and SIGKILL
_TICK = 0.05  # supervisor period (seconds)
OUT_OF_MEMORY = "the job ran out of memory (choose a smaller setting)"


def _env_number(name: str, default: float) -> float:
    value = mem.env_number(name)
    return default if value is None else value


def default_max_jobs() -> int:
    """``DLTL_MAX_JOBS``, else derived from the cores and the memory budget (``budget.max_jobs``)."""
    return mem.max_jobs()


def declare_need(estimate: Callable[[Any], float]) -> Callable[[JobFn], JobFn]:
    """Decorator: a job function states its memory need, ``estimate(config)`` in MB (imports
    included; see ``dltl_core.needs``), so a page can refuse it before it starts."""

    def mark(fn: JobFn) -> JobFn:
        fn.memory_need = estimate  # type: ignore[attr-defined]
        return fn
    return mark


def memory_need(fn: JobFn, config: Any) -> float | None:
    """The memory ``fn(config)`` declared it needs (``declare_need``), or None."""
    estimate = getattr(fn, "memory_need", None)
    if estimate is None:
        return None
    try:
        return float(estimate(config))
    except Exception:  # noqa: BLE001 - a bad estimate must not block the page; the cap still holds
        log.exception("memory need of %s", getattr(fn, "__qualname__", fn))
        return None


class Busy(RuntimeError):
    """``submit`` refused: this owner already has a queued or running job.

    Attributes:
        job_id: the owner's unfinished job.
    """

    def __init__(self, job_id: int) -> None:
        super().__init__(f"job {job_id} of this visitor is still queued or running")
        self.job_id = job_id


@dataclass(frozen=True)
class JobStatus:
    """A snapshot of one job (safe to keep: later changes do not alter it).

    Attributes:
        id: the job id (``submit``'s return value).
        state: ``queued``, ``running``, ``done``, ``failed`` or ``cancelled``.
        position: place in the queue (1 = next), 0 once started.
        phase, done, total: the last ``report`` (``total`` 0 = unknown).
        payloads: every payload reported so far, in order.
        result: the function's return value once ``state == "done"``.
        error: one clear sentence once failed or cancelled, else None.
        eta: estimated seconds until ``done`` reaches ``total`` (from the rate since this count
            began), or None.
        pid: the job's process id once started (None before).
        seconds: seconds since the job started (0 while queued).
        cap_mb: the job's memory cap (its imports included), reserved in the budget while it runs.
        memory_mb: the job's private memory now (0 while queued or after it ended).
        peak_mb: the most private memory the job held, as sampled by the runner.
        peak_rss_mb: the most resident memory (shared libraries included) the job's process held.
        waiting_for_memory: queued at the head of the queue until running jobs release memory.
        label: what the job is, as its submitter named it ("Training from scratch").
    """

    id: int
    state: str
    position: int = 0
    phase: str = ""
    done: int = 0
    total: int = 0
    payloads: tuple[dict, ...] = ()
    result: Any = None
    error: str | None = None
    eta: float | None = None
    pid: int | None = None
    seconds: float = 0.0
    cap_mb: float = 0.0
    memory_mb: float = 0.0
    peak_mb: float = 0.0
    peak_rss_mb: float = 0.0
    waiting_for_memory: bool = False
    label: str = ""

    @property
    def finished(self) -> bool:
        """Whether the job ended (done, failed or cancelled)."""
        return self.state in FINISHED

    @property
    def fraction(self) -> float:
        """Progress of the current phase in [0, 1] (0 when the total is unknown)."""
        return min(max(self.done / self.total, 0.0), 1.0) if self.total > 0 else 0.0


@dataclass
class _Job:
    id: int
    fn: JobFn
    config: Any
    seed: int
    seconds: float
    memory_mb: float
    need_mb: float
    heartbeat_timeout: float | None
    alive: Callable[[], bool] | None
    status: JobStatus
    submitted: float = field(default_factory=time.monotonic)
    beat: float = field(default_factory=time.monotonic)
    started: float = 0.0
    phase_started: float = 0.0
    phase_done0: int = 0  # ``done`` at the phase's first report: the rate counts from there
    owner: str | None = None
    process: Any = None
    inbox: Any = None  # the reading end of the job's pipe
    ended: float = 0.0
    forgotten: bool = False


# ----------------------------------------------------------------------------- the child process

def _vm_bytes() -> int:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _cap_address_space(memory_mb: float) -> bool:
    """Limit this process's address space to its current size + ``memory_mb`` (the part of the
    cap its imports do not hold yet); False if unsupported.

    CUDA reserves terabytes of virtual address space, so with CUDA the parent's
    resident-memory check is the cap instead.
    """
    try:
        import resource
    except ImportError:  # Windows
        return False
    if os.environ.get("DLTL_DEVICE", "auto").lower() != "cpu":
        import torch
        if torch.cuda.is_available():
            return False
    base = _vm_bytes()
    if base == 0:
        return False
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = base + int(max(memory_mb, 16) * 2**20)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    return True


def _is_alive(job: _Job) -> bool:
    try:
        return job.alive is None or bool(job.alive())
    except Exception:  # noqa: BLE001 - a broken liveness check must not kill the job
        return True


def _watch_parent(parent: int) -> None:
    """End this job if the server that started it is gone (no orphan keeps training)."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(3)


def _error_message(err: BaseException) -> str:
    text = str(err)
    if isinstance(err, MemoryError) or "can't allocate memory" in text or "out of memory" in text.lower():
        return OUT_OF_MEMORY
    first = text.strip().splitlines()[0] if text.strip() else ""
    if first and isinstance(err, (ValueError, RuntimeError, OSError)):
        return first  # the core's own errors are written for the reader
    return f"{type(err).__name__}: {first}" if first else type(err).__name__


def _few_malloc_arenas(arenas: int = 2) -> None:
    """Let glibc's malloc keep at most ``arenas`` arenas in this process.

    The job's cap is enforced on its address space (``RLIMIT_AS``), and glibc gives each
    thread that meets a busy arena a new one, reserving 64 MB of address space each (up to
    8 per core): in the classroom soak a scratch run that needed about 1 GB of private memory
    stopped with "can't allocate memory" under its 1.3 GB cap. Fewer arenas keep the address
    space close to what the job really uses; elsewhere (not glibc) this does nothing.
    """
    try:
        import ctypes
        import ctypes.util

        name = ctypes.util.find_library("c")
        if name and sys.platform.startswith("linux"):
            ctypes.CDLL(name).mallopt(-8, int(arenas))  # M_ARENA_MAX
    except (OSError, AttributeError):
        pass


def _child_main(fn: JobFn, config: Any, seed: int, memory_mb: float, threads: int,
                parent: int, inbox: Any) -> None:
    """Body of the spawned process: cap memory, seed, run ``fn`` and send back the outcome."""
    _few_malloc_arenas()  # before any thread: each arena reserves 64 MB of address space
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    import torch

    from dltl_core.device import seed_everything

    torch.set_num_threads(max(1, threads))  # jobs side by side share the cores fairly
    inbox.send(("start",))
    # The cap counts the imports: what they hold now is taken off what may still be added.
    _cap_address_space(memory_mb - mem.process_memory().private)
    seed_everything(seed)

    def report(phase: str, done: int, total: int, payload: dict | None = None) -> None:
        inbox.send(("progress", str(phase), int(done), int(total), payload))

    try:
        blob = pickle.dumps(fn(config, report))
    except BaseException as err:  # noqa: BLE001 - every failure becomes one message
        log.exception("job failed")  # the traceback goes to the server log only
        blob = None
        message = _error_message(err)
    if blob is not None and len(blob) > 512 * 2**20:
        blob, message = None, "the job's result is too large to send back (over 512 MB)"
    # send() returns once the message is in the pipe (the parent drains it continuously).
    inbox.send(("result", blob) if blob is not None else ("error", message))
    inbox.close()


# ----------------------------------------------------------------------------- the runner

class JobRunner:
    """Runs jobs in spawned processes, at most ``max_jobs`` at once, the rest queued.

    Thread-safe: every visitor session of a Streamlit server may call it. Use the
    process-wide instance from ``get_runner()`` rather than building one per page.

    Args:
        max_jobs: jobs running at once (default ``default_max_jobs()``).
        seconds: default time limit per job (``DLTL_JOB_SECONDS``, default 600).
        memory_mb: default memory cap per job, imports included (default: ``DLTL_JOB_MEMORY_MB``,
            else ``budget.job_cap_mb()`` when the job is submitted).
        keep_seconds: how long a finished job's outcome stays readable (default 900).
    """

    def __init__(self, max_jobs: int | None = None, seconds: float | None = None,
                 memory_mb: float | None = None, keep_seconds: float = 900.0) -> None:
        self.max_jobs = max(1, int(max_jobs or default_max_jobs()))
        self.seconds = float(seconds or _env_number("DLTL_JOB_SECONDS", 600))
        self.memory_mb = float(memory_mb) if memory_mb else None
        self.keep_seconds = keep_seconds
        self._ctx = mp.get_context("spawn")
        self._lock = threading.RLock()
        self._jobs: dict[int, _Job] = {}
        self._waiting: deque[int] = deque()
        self._running: list[int] = []
        self._ids = itertools.count(1)
        self._thread: threading.Thread | None = None
        self._closed = False
        _ALL_RUNNERS.add(self)

    # -- public API ----------------------------------------------------------------
    def submit(self, fn: JobFn, config: Any, *, seed: int = 0, seconds: float | None = None,
               memory_mb: float | None = None, heartbeat_timeout: float | None = None,
               alive: Callable[[], bool] | None = None, owner: str | None = None, label: str = "",
               need_mb: float | None = None) -> int:
        """Queue ``fn(config, report)``; return the job id at once.

        Args:
            fn: a top-level importable function (see the module docstring).
            config: its picklable argument.
            seed: seeds Python, NumPy and torch in the job's process before ``fn`` runs.
            seconds: time limit from the start of its process, start-up included (default:
                the runner's).
            memory_mb: memory cap, imports included (default: the runner's, else the budget's
                ``job_cap_mb``); reserved in the budget while the job runs.
            heartbeat_timeout: cancel the job when ``poll``/``heartbeat`` was not called
                for this many seconds (a closed tab); None = never.
            alive: called by the runner about once per tick; the job is cancelled as soon
                as it returns False (e.g. "is the visitor's websocket still connected").
            owner: who asks (e.g. a visitor's id); an owner has at most one unfinished job.
            label: what the job is, kept in its status (e.g. to name it to its owner).
            need_mb: the least memory the job needs to start (default: ``memory_mb`` when given,
                else the smallest useful job); at its start its cap is ``memory_mb`` or what is
                free then, whichever is less, and never below ``need_mb``.

        Raises:
            ValueError: ``fn`` is not an importable top-level function.
            Busy: ``owner`` already has a queued or running job.
        """
        name = getattr(fn, "__qualname__", "")
        if not callable(fn) or "<" in name or getattr(fn, "__module__", "__main__") == "__main__":
            raise ValueError("a job must be a top-level function defined in an importable module")
        with self._lock:
            if self._closed:
                raise RuntimeError("the job runner is shut down")
            mine = self.unfinished(owner)
            if mine is not None:
                raise Busy(mine)
            stated = memory_mb or self.memory_mb
            cap = float(stated or mem.job_cap_mb(self.budget(), self.max_jobs))
            need = float(need_mb or (stated or min(cap, mem.SMALLEST_JOB_MB)))
            job_id = next(self._ids)
            self._jobs[job_id] = _Job(job_id, fn, config, int(seed), float(seconds or self.seconds),
                                      max(cap, need), need, heartbeat_timeout, alive,
                                      JobStatus(job_id, QUEUED, cap_mb=max(cap, need), label=label), owner=owner)
            self._waiting.append(job_id)
            self._ensure_supervisor()
            self._start_waiting()
        return job_id

    def status(self, job_id: int) -> JobStatus:
        """The job's current snapshot (``KeyError`` for an unknown or forgotten id)."""
        with self._lock:
            job = self._jobs[job_id]
            return self._snapshot(job)

    def poll(self, job_id: int) -> JobStatus:
        """``heartbeat`` + ``status``: what a page calls on each refresh."""
        self.heartbeat(job_id)
        return self.status(job_id)

    def heartbeat(self, job_id: int) -> None:
        """Tell the runner the job's owner is still watching (see ``heartbeat_timeout``)."""
        with self._lock:
            if job_id in self._jobs:
                self._jobs[job_id].beat = time.monotonic()

    def cancel(self, job_id: int, reason: str = "cancelled") -> None:
        """Stop a job: dequeue it, or terminate its process (killed after 2 s); returns at once."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.status.finished:
                return
            if job_id in self._waiting:
                self._waiting.remove(job_id)
                self._finish(job, CANCELLED, error=reason)
                return
            self._finish(job, CANCELLED, error=reason)
        self._stop_process(job)

    def wait(self, job_id: int, timeout: float | None = None) -> JobStatus:
        """Block until the job finished (or ``timeout`` seconds); return its status."""
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            snap = self.status(job_id)
            if snap.finished or (end is not None and time.monotonic() >= end):
                return snap
            time.sleep(_TICK)

    def forget(self, job_id: int) -> None:
        """Drop a finished job's outcome (cancels it first if it still runs)."""
        self.cancel(job_id)
        with self._lock:
            job = self._jobs.get(job_id)
            if job is not None and job_id in self._running:
                job.forgotten = True  # dropped by the supervisor once its process is reaped
            else:
                self._jobs.pop(job_id, None)

    def position(self, job_id: int) -> int:
        """Place in the queue: 1 = next to start, 0 = started (or finished)."""
        with self._lock:
            return self._waiting.index(job_id) + 1 if job_id in self._waiting else 0

    def unfinished(self, owner: str | None) -> int | None:
        """The id of ``owner``'s queued or running job, or None (always None for no owner)."""
        if owner is None:
            return None
        with self._lock:
            for job in self._jobs.values():
                if job.owner == owner and not job.status.finished:
                    return job.id
        return None

    def budget(self) -> mem.Budget:
        """The memory budget now, the running jobs' caps reserved."""
        with self._lock:
            held = sum(self._jobs[i].memory_mb for i in self._running)
        return mem.current(jobs_mb=held)

    def load(self) -> tuple[int, int]:
        """(jobs running, jobs waiting)."""
        with self._lock:
            return len(self._running), len(self._waiting)

    def shutdown(self) -> None:
        """Cancel every job and stop the supervisor (called at interpreter exit)."""
        with self._lock:
            self._closed = True
            ids = list(self._waiting) + list(self._running)
        for job_id in ids:
            self.cancel(job_id, "the server is shutting down")
        with self._lock:
            jobs = [self._jobs[i] for i in ids if i in self._jobs]
        for job in jobs:
            if job.process is not None:
                job.process.join(_KILL_GRACE + 1)

    # -- internals (called with the lock held unless noted) -------------------------
    def _snapshot(self, job: _Job) -> JobStatus:
        now = time.monotonic()
        snap = job.status
        if snap.state == QUEUED:
            return replace(snap, position=self._waiting.index(job.id) + 1 if job.id in self._waiting else 0)
        eta = None
        if snap.state == RUNNING and snap.total > 0 and job.phase_done0 < snap.done < snap.total:
            eta = (now - job.phase_started) * (snap.total - snap.done) / (snap.done - job.phase_done0)
        end = job.ended or now
        return replace(snap, eta=eta, seconds=end - job.started if job.started else 0.0)

    def _ensure_supervisor(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._supervise, name="dltl-jobs", daemon=True)
            self._thread.start()

    def _start_waiting(self) -> None:
        while self._waiting and len(self._running) < self.max_jobs:
            job = self._jobs[self._waiting[0]]
            budget = self.budget()
            if job.need_mb > budget.free:
                if job.need_mb <= budget.for_jobs and self._running:
                    # It fits once a running job ends: it waits at the head of the queue.
                    job.status = replace(job.status, waiting_for_memory=True)
                    return
                self._waiting.popleft()
                self._finish(job, FAILED, error=f"the job needs about {mem.gb(job.need_mb)}; this server "
                                                f"has {mem.gb(budget.free)} free")
                continue
            # The cap is what it asked for, or what is free now, whichever is less (never below its
            # need): the server and the running jobs keep the rest of the budget.
            job.memory_mb = max(job.need_mb, min(job.memory_mb, budget.free))
            job.status = replace(job.status, cap_mb=job.memory_mb)
            self._start(self._jobs[self._waiting.popleft()])

    def _start(self, job: _Job) -> None:
        threads = max(1, (os.cpu_count() or 1) // self.max_jobs)
        # A plain one-way pipe, not a Queue: once the child's end is closed here, a child that
        # dies (even in the middle of a message) gives EOF instead of a reader blocked forever.
        job.inbox, child_end = self._ctx.Pipe(duplex=False)
        job.process = self._ctx.Process(
            target=_child_main, name=f"dltl-job-{job.id}",
            args=(job.fn, job.config, job.seed, job.memory_mb, threads, os.getpid(), child_end))
        job.started = job.phase_started = job.beat = time.monotonic()
        try:
            job.process.start()
        except (pickle.PicklingError, TypeError, AttributeError, OSError) as err:
            job.process = None
            job.inbox.close()
            self._finish(job, FAILED, error=f"the job could not start: {_error_message(err)}")
            return
        finally:
            child_end.close()  # the child holds its own copy now
        self._running.append(job.id)
        job.status = replace(job.status, state=RUNNING, position=0, pid=job.process.pid,
                             phase="starting", done=0, total=0, waiting_for_memory=False)

    def _finish(self, job: _Job, state: str, *, result: Any = None, error: str | None = None) -> None:
        if not job.status.finished:
            job.ended = time.monotonic()
            job.status = replace(job.status, state=state, result=result, error=error, position=0,
                                 memory_mb=0.0, waiting_for_memory=False)

    def _stop_process(self, job: _Job) -> None:
        """Terminate, then kill after a grace period, in a helper thread (callers never block)."""
        proc = job.process
        if proc is None:
            return

        def stop() -> None:
            if proc.exitcode is None:
                proc.terminate()
                proc.join(_KILL_GRACE)
            if proc.exitcode is None:
                proc.kill()
                proc.join(5)

        threading.Thread(target=stop, name=f"dltl-stop-{job.id}", daemon=True).start()

    def _drain(self, job: _Job) -> None:
        # A stopped job's messages are not wanted, and its last one may be cut in the middle.
        while not job.status.finished:
            try:
                if job.inbox.closed or not job.inbox.poll():
                    return
                msg = job.inbox.recv()
            except (OSError, EOFError, ValueError, pickle.UnpicklingError):
                job.inbox.close()  # EOF: the child is gone; nothing more will come
                return
            self._handle(job, msg)

    def _handle(self, job: _Job, msg: tuple) -> None:
        kind = msg[0]
        if job.status.finished:
            return
        if kind == "start":
            pass  # the process is up; its memory is sampled by ``_check``
        elif kind == "progress":
            _, phase, done, total, payload = msg
            # A new count (another total, or counting again from below) restarts the ETA's rate;
            # a new label on the same count ("training MLP" -> "training CNN") does not.
            if total != job.status.total or done < job.status.done:
                job.phase_started, job.phase_done0 = time.monotonic(), done
            payloads = job.status.payloads + ((payload,) if payload is not None else ())
            job.status = replace(job.status, phase=phase, done=done, total=total, payloads=payloads)
        elif kind == "result":
            try:
                self._finish(job, DONE, result=pickle.loads(msg[1]))
            except Exception as err:  # noqa: BLE001
                self._finish(job, FAILED, error=f"the job's result could not be read: {_error_message(err)}")
        elif kind == "error":
            self._finish(job, FAILED, error=msg[1])

    def _check(self, job: _Job, now: float) -> None:
        """Apply the time limit, the heartbeat and the memory cap to a running job."""
        if job.status.finished:
            return
        reason = None
        if now - job.started > job.seconds:
            reason = (FAILED, f"stopped after the time limit of {job.seconds:.0f} s "
                              "(choose fewer epochs or photos)")
        elif (job.heartbeat_timeout is not None and now - job.beat > job.heartbeat_timeout) \
                or not _is_alive(job):
            reason = (CANCELLED, "cancelled: the page that started it was closed")
        elif self._sample(job) > job.memory_mb:
            reason = (FAILED, f"the job ran out of memory: it used more than its {mem.gb(job.memory_mb)} "
                              "(choose a smaller setting)")
        if reason is not None:
            self._finish(job, reason[0], error=reason[1])
            self._stop_process(job)

    def _sample(self, job: _Job) -> float:
        """Read the job's memory (private and resident), keep the peaks; return the private MB."""
        now = mem.process_memory(job.process.pid)
        snap = job.status
        job.status = replace(snap, memory_mb=now.private, peak_mb=max(snap.peak_mb, now.private),
                             peak_rss_mb=max(snap.peak_rss_mb, now.rss, now.peak_rss))
        return now.private

    def _reap(self, job: _Job) -> bool:
        """Handle a dead process; True when the job can leave the running list."""
        if job.process.exitcode is None:
            return False
        self._drain(job)  # the last messages may arrive after the exit
        if not job.status.finished:
            code = job.process.exitcode
            why = ("the job's process was killed (out of memory?)" if code in (-9, 137)
                   else f"the job's process ended unexpectedly (exit code {code})")
            self._finish(job, FAILED, error=why)
        job.inbox.close()
        return True

    def _tick(self) -> None:
        now = time.monotonic()
        with self._lock:
            for job_id in list(self._running):
                job = self._jobs[job_id]
                self._drain(job)
                self._check(job, now)
                if self._reap(job):
                    self._running.remove(job_id)
            for job_id in list(self._waiting):  # a visitor who left gives up their place
                job = self._jobs[job_id]
                if (job.heartbeat_timeout is not None and now - job.beat > job.heartbeat_timeout) \
                        or not _is_alive(job):
                    self._waiting.remove(job_id)
                    self._finish(job, CANCELLED, error="cancelled: the page that started it was closed")
            self._start_waiting()
            for job_id, job in list(self._jobs.items()):
                if job.status.finished and job_id not in self._running and \
                        (job.forgotten or now - job.ended > self.keep_seconds):
                    del self._jobs[job_id]

    def _supervise(self) -> None:
        while True:
            try:
                self._tick()
            except Exception:  # noqa: BLE001 - the supervisor must outlive any one bad job
                log.exception("job supervisor")
            with self._lock:
                if self._closed and not self._running:
                    return
            time.sleep(_TICK)


_RUNNER: JobRunner | None = None
_RUNNER_LOCK = threading.Lock()


def get_runner() -> JobRunner:
    """The process-wide runner (one per server; limits read from the environment once)."""
    global _RUNNER
    with _RUNNER_LOCK:
        if _RUNNER is None:
            _RUNNER = JobRunner()
        return _RUNNER


@atexit.register
def _shutdown_runner() -> None:
    # Registered after multiprocessing's own exit hook, so it runs first (atexit is last-in,
    # first-out) and no job outlives the server that started it.
    for runner in list(_ALL_RUNNERS):
        runner.shutdown()
