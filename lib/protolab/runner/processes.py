"""Child processes of a run: started into a log, every process they start ended together, stopping signals.

A notebook runs as ``python -m papermill`` in its own session (:func:`launch_logged`); papermill starts the
kernel in yet another session, and the kernel starts loky workers, their resource tracker, DataLoader workers…
Killing one process group reaches none of those. :class:`ProcessTree` therefore walks the process table (parent
ids) every :data:`POLL_S` seconds while the child runs and keeps a handle on every descendant it ever saw, even
after it has been re-parented to init. :meth:`ProcessTree.stop` freezes them all (SIGSTOP, so none starts
another), records once more, then SIGKILLs every one and reaps the child.

:func:`stopped_by_signals` turns SIGINT, SIGTERM and SIGHUP (a closed terminal, a dropped ssh session) into
``KeyboardInterrupt`` (the command line around a run, a SLURM job around its notebook) and :func:`signals_ignored`
keeps them from cutting a clean-up short. A runner killed outright (SIGKILL, the OOM killer) runs no handler: on
Linux its papermill child and that child's kernel are then ended by the kernel's parent-death signal
(:func:`die_with_parent`), which :func:`launch_logged` and the kernels' IPython start-up file ask for, and the
grid's workers by :func:`exit_when_orphaned`. Worker processes that a notebook's own code starts end as their
library makes them (loky's when their running task returns).
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Any

import psutil

POLL_S = 0.2
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
PR_SET_PDEATHSIG = 1  # prctl option, linux/prctl.h


def _find_prctl() -> Callable[..., int] | None:
    """libc's ``prctl`` on Linux (resolved once, in the parent: nothing may be loaded between fork and exec)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _find_prctl()


def die_with_parent(signum: int = signal.SIGKILL) -> bool:
    """Have Linux send ``signum`` to this process when the thread that started it ends (``PR_SET_PDEATHSIG``),
    so that a process whose parent was killed outright does not run on unowned. False where that cannot be
    asked (not Linux, or the call failed). A parent already gone before the call goes unnoticed by it: callers
    that know their parent compare :func:`os.getppid` afterwards."""
    return _PRCTL is not None and _PRCTL(PR_SET_PDEATHSIG, int(signum), 0, 0, 0) == 0


def end_with_parent(parent: int | None = None) -> None:
    """:func:`die_with_parent`, then exit at once when the parent ended before the request took effect: when
    this process's parent is no longer ``parent`` or, for a process that cannot name its parent (a notebook's
    kernel, from its IPython start-up file: :func:`protolab.runner.environment.write_kernel_startup`), when it
    was re-parented to init. Also :func:`launch_logged`'s ``preexec_fn``, between fork and exec."""
    if not die_with_parent():
        return
    orphaned = os.getppid() == 1 if parent is None else os.getppid() != parent
    if orphaned:
        os._exit(1)


_orphan_watch: threading.Thread | None = None


def exit_when_orphaned(poll_s: float = 1.0) -> None:
    """End this process (exit code 1) within ``poll_s`` seconds of its parent's end: a daemon thread, started
    once per process, compares :func:`os.getppid` with the parent it had at the first call. For worker processes
    (the grid's loky workers) whose parent may be killed outright while they compute: the parent-death signal
    would follow the thread that forked them, which a worker cannot name."""
    global _orphan_watch
    if _orphan_watch is not None:
        return
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        os._exit(1)

    _orphan_watch = threading.Thread(target=watch, name="exit-when-orphaned", daemon=True)
    _orphan_watch.start()


class ProcessTree:
    """``process`` (started with ``start_new_session=True``) and every process it started."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.process = process
        self._lock = threading.Lock()
        self._recorded: dict[int, psutil.Process] = {}
        try:
            self._recorded[process.pid] = psutil.Process(process.pid)
        except psutil.NoSuchProcess:
            pass
        self._finished = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name=f"watch-{process.pid}", daemon=True)
        self._watcher.start()

    @property
    def pids(self) -> list[int]:
        """Process ids of the child and of every descendant recorded so far."""
        with self._lock:
            return sorted(self._recorded)

    def record(self) -> None:
        """Add every current descendant of a recorded process (one pass over the process table)."""
        children: dict[int, list[int]] = {}
        for process in psutil.process_iter(["ppid"]):
            children.setdefault(process.info["ppid"], []).append(process.pid)
        with self._lock:
            frontier = [pid for pid, process in self._recorded.items() if _running(process)]
            while frontier:
                for child in children.get(frontier.pop(), []):
                    if child not in self._recorded:
                        try:
                            self._recorded[child] = psutil.Process(child)
                        except psutil.NoSuchProcess:
                            continue
                        frontier.append(child)

    def stop(self) -> list[int]:
        """End the child and every recorded descendant still running; return the ids of those ended."""
        self._signal_session(signal.SIGSTOP)
        self.record()
        alive = self._alive()
        for process in alive:
            _send(process, signal.SIGSTOP)
        self.record()
        alive = self._alive()
        self._signal_session(signal.SIGKILL)
        for process in alive:
            _send(process, signal.SIGKILL)
        self.process.wait()
        self._finished.set()
        deadline = time.monotonic() + 5
        while any(_running(process) for process in alive) and time.monotonic() < deadline:
            time.sleep(0.05)  # SIGKILL is delivered asynchronously; a zombie counts as ended
        return sorted(process.pid for process in alive)

    def wait(self, timeout: float | None) -> int | None:
        """The child's exit code, or None if it is still running after ``timeout`` seconds."""
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def _watch(self) -> None:
        while not self._finished.is_set() and self.process.poll() is None:
            self.record()
            self._finished.wait(POLL_S)

    def _alive(self) -> list[psutil.Process]:
        with self._lock:
            return [process for process in self._recorded.values() if _running(process)]

    def _signal_session(self, signum: int) -> None:
        """Signal the child's process group (its session), unless the child is already reaped."""
        if self.process.returncode is None:
            try:
                os.killpg(self.process.pid, signum)
            except (ProcessLookupError, PermissionError):
                pass


def _running(process: psutil.Process) -> bool:
    """True while ``process`` (not another one that reused its id) exists and is not a zombie."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _send(process: psutil.Process, signum: int) -> None:
    try:
        process.send_signal(signum)
    except psutil.NoSuchProcess:
        pass


def launch_logged(command: Sequence[str], log: Path | str, env: Mapping[str, str]) -> ProcessTree:
    """Start ``command`` with environment ``env`` in its own session, without stdin, its stdout and stderr
    written to the file ``log``; the :class:`ProcessTree` that records every process it starts.

    On Linux the child is SIGKILLed when the calling thread ends (:func:`die_with_parent`): call this from a
    thread that outlives the child (it waits for it), as the executors do."""
    with open(log, "w") as handle:
        return ProcessTree(subprocess.Popen(list(command), start_new_session=True, stdin=subprocess.DEVNULL,
                                            stdout=handle, stderr=subprocess.STDOUT, env=dict(env),
                                            preexec_fn=partial(end_with_parent, os.getpid()) if _PRCTL else None))


@contextmanager
def signals_handled(handler: Callable[[int, FrameType | None], Any] | signal.Handlers,
                    signals: Sequence[signal.Signals] = STOP_SIGNALS) -> Iterator[None]:
    """``signals`` (default SIGINT, SIGTERM and SIGHUP) go to ``handler`` in the block, the previous handlers after it
    (only on the main thread, the one Python delivers signals to; elsewhere the block runs unchanged)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, handler) for signum in signals}
    try:
        yield
    finally:
        for signum, earlier in previous.items():
            signal.signal(signum, earlier)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """Every stopping signal stops the same way, naming the signal."""
    raise KeyboardInterrupt(signal.Signals(signum).name)


def stopped_by_signals(signals: Sequence[signal.Signals] = STOP_SIGNALS) -> AbstractContextManager[None]:
    """Within the block, ``signals`` (default SIGINT, SIGTERM and SIGHUP) raise ``KeyboardInterrupt`` naming the signal,
    so that :func:`protolab.runner.execute.run_notebooks` ends every process it started (the command line and
    scripts that call it use this) and a SLURM job ends its notebook."""
    return signals_handled(_interrupt, signals)


def signals_ignored(signals: Sequence[signal.Signals] = STOP_SIGNALS) -> AbstractContextManager[None]:
    """Ignore ``signals`` (default SIGINT, SIGTERM and SIGHUP) in the block, so that a clean-up is not cut short."""
    return signals_handled(signal.SIG_IGN, signals)
