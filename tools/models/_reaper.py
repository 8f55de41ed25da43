"""Run the models child and make sure nothing it started outlives it.

Run only as a standalone script (standard library only), never imported by the server::

    python -I -B _reaper.py KILL_AT -- PYTHON -I -B _child.py REQUEST RESULT

User code imported by the child may start processes that leave the child's process group and session
(``subprocess.Popen(..., start_new_session=True)``, ``os.setsid()``, a double fork). A process group kill
cannot reach those. On Linux this script makes itself a *child subreaper* (``prctl(PR_SET_CHILD_SUBREAPER)``):
every process orphaned below it is re-parented to it instead of to init, so it can always find them (in
``/proc``, by parent pid) and kill them. It kills the child at ``KILL_AT`` (a ``time.time()`` value) and,
whether the child finished or was killed, then kills every remaining descendant before it exits.
Elsewhere (no prctl, no /proc) it falls back to killing the child's process group.

Exit status: the child's, 124 when the child was killed for its time limit, 128+N when a signal N ended it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time

PR_SET_CHILD_SUBREAPER = 36
TIMED_OUT = 124


def _become_subreaper() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc; empty where there is none)."""
    found: list[int] = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses, so split after the last ')'
        fields = stat[stat.rfind(b")") + 2:].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            found.append(int(entry))
    return found


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)


def _killpg(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def reap_everything(child_group: int, give_up_at: float) -> None:
    """Kill the child's group and every process re-parented to us, until we have no children left."""
    me = os.getpid()
    while True:
        _killpg(child_group)
        for pid in _children(me):
            _kill(pid)  # a killed process cannot fork again; its orphans come to us and die next round
        try:
            while True:
                pid, _ = os.waitpid(-1, os.WNOHANG)
                if pid == 0:
                    break
        except ChildProcessError:
            return  # nothing left below us
        if time.time() > give_up_at:
            return
        time.sleep(0.02)


def main(argv: list[str]) -> int:
    kill_at = float(argv[1])
    command = argv[argv.index("--") + 1:]
    _become_subreaper()
    stop = []

    def on_term(signum, frame):  # the parent's last word: end everything now
        stop.append(signum)

    signal.signal(signal.SIGTERM, on_term)
    try:
        child = subprocess.Popen(command, start_new_session=True)  # its own group: one kill ends most
    except OSError as exc:
        print(f"cannot start {command[0]}: {exc}", file=sys.stderr)
        return 126
    timed_out = False
    while True:
        try:
            status = child.wait(timeout=0.05)
            break
        except subprocess.TimeoutExpired:
            if stop or time.time() >= kill_at:
                timed_out = True
                _killpg(child.pid)
                _kill(child.pid)
                status = child.wait()
                break
    reap_everything(child.pid, time.time() + 2.0)
    if timed_out:
        return TIMED_OUT
    return status if status >= 0 else 128 - status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
