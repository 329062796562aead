"""Run one example agent as a child of the demo that dies with it: ``python -m agents_examples.demo.child
PARENT_PID MODULE [ARGS...]``.

The demo starts each agent through this wrapper instead of asking ``subprocess`` to run code between fork
and exec (unsafe once the demo's gateway runs threads). The wrapper asks Linux to send it SIGTERM when
its parent dies (kill -9 included), checks that the parent is still the one that started it (it may
have died before the request took effect), and then runs the agent's module as ``__main__`` in this
same process. Elsewhere than Linux it only runs the module.
"""

from __future__ import annotations

import ctypes
import os
import runpy
import signal
import sys

PR_SET_PDEATHSIG = 1


def main(argv: list[str]) -> None:
    """Arm the parent-death signal, then run the module with the remaining arguments."""
    if len(argv) < 2 or not argv[0].isdigit():
        print("usage: python -m agents_examples.demo.child PARENT_PID MODULE [ARGS...]", file=sys.stderr)
        raise SystemExit(2)
    parent, module = int(argv[0]), argv[1]
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the demo died before the request took effect
            raise SystemExit(1)
    sys.argv = [module, *argv[2:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
