"""How SIGINT and SIGTERM stop training: checkpoint, mark interrupted, exit with the signal's status.

- ``Interrupt``: while the training loop runs, a signal sets a flag the loop checks between updates (its runs
  checkpoint and are marked interrupted); a handler installed before it (a sweep driver's) is told too, once.
- ``DriverSignals``: while a sweep runs, the driver's first signal sets a stop event its workers' loops check;
  a second stops waiting for them.
- ``StopFlags``: in a worker process, whether to stop: the driver's stop event is set, or the driver is gone
  (``watch_driver``: a worker orphaned by a SIGKILLed driver checkpoints, then exits).
- ``SweepInterrupted``: what a stopped sweep raises once its runs are safe (the CLI exits 130 / 143).
"""

from __future__ import annotations

import os
import signal
import threading
import time

ORPHAN_GRACE_S = 30.0  # what an orphaned worker gets to checkpoint before it exits regardless


class SignalTrap:
    """While entered, SIGINT and SIGTERM call ``_handle(signum, frame)`` (main thread only; elsewhere nothing is
    installed); the handlers before are put back on exit. Subclasses say what a signal does."""

    def __init__(self):
        self.hit = False
        self.old = {}

    def __enter__(self):
        try:
            for s in (signal.SIGINT, signal.SIGTERM):
                self.old[s] = signal.signal(s, self._handle)
        except ValueError:  # not the main thread: no handlers
            self.old = {}
        return self

    def _handle(self, signum, frame):
        self.hit = True

    def __exit__(self, *exc):
        for s, h in self.old.items():
            signal.signal(s, h)


class Interrupt(SignalTrap):
    """A flag the training loop checks between updates. A handler that was installed before (a sweep driver's,
    which stops the rest of the sweep) is told too, once."""

    def _handle(self, signum, frame):
        first = not self.hit
        self.hit = True
        before = self.old.get(signum)
        if first and callable(before) and before is not signal.default_int_handler:
            before(signum, frame)


class DriverSignals(SignalTrap):
    """In the driver, while a sweep runs: the first SIGINT / SIGTERM asks every worker to checkpoint and stop
    (``stop`` is set) and is remembered in ``signum``; a second one stops waiting (``KeyboardInterrupt``)."""

    def __init__(self, stop):
        super().__init__()
        self.stop, self.signum = stop, None

    def _handle(self, signum, frame):
        if self.signum is not None:
            raise KeyboardInterrupt  # a second signal: do not wait for the workers any longer
        self.signum = signum
        self.stop.set()


class SweepInterrupted(KeyboardInterrupt):
    """A sweep stopped by SIGINT or SIGTERM after its runs checkpointed (``signum``: which)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


class StopFlags:
    """Whether a process training a sweep's runs should stop (call it): the driver's ``stop`` event is set (one
    Ctrl-C or SIGTERM to the driver), or ``driver_gone`` (the driver died)."""

    def __init__(self, stop=None):
        self.stop = stop
        self.driver_gone = threading.Event()

    def __call__(self) -> bool:
        return self.driver_gone.is_set() or (self.stop is not None and self.stop.is_set())


def watch_driver(driver_pid: int, flags: StopFlags, poll_s: float = 0.5) -> None:
    """A thread that notices the driver's death (this process is re-parented) and then stops the worker: its
    loop interrupts the runs at the next update; after ``ORPHAN_GRACE_S`` the process exits regardless, so
    that a SIGKILLed sweep leaves no process behind."""
    def watch():
        while os.getppid() == driver_pid:
            time.sleep(poll_s)
        flags.driver_gone.set()
        time.sleep(ORPHAN_GRACE_S)
        os._exit(1)

    threading.Thread(target=watch, name="groklab-driver-watch", daemon=True).start()
