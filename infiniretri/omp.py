"""How PyTorch's CPU threads wait between operations: passively when the CPU is shared.

PyTorch runs CPU kernels on OpenMP threads. By default an idle OpenMP thread spins for a while
before it sleeps, so that the next operation starts at once. When other processes keep the
cores busy, the spinning threads take the time slices that the working ones need, and each
operation waits for a thread that is not running. Measured on the demo document (2-core Xeon,
2 threads, another job running): 90 s of scan and 200 s of answer with spinning, 17 s and 8 s
with ``OMP_WAIT_POLICY=PASSIVE``. On an idle machine passive waiting costs about a third more
(every operation wakes a sleeping thread). The same threads split the same work either way, so
results are the same, bit for bit; only the time changes.

OpenMP reads the policy once, when torch is loaded. ``import infiniretri`` therefore chooses it
first (:func:`choose_wait_policy`): passive when the CPU is already busy (a load average of at
least :data:`BUSY_LOAD`), the OpenMP default otherwise. Nothing is set when torch is already
loaded or when the user set ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` (theirs wins).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, MutableMapping

BUSY_LOAD = 1.0
"""The 1-minute load average from which the CPU counts as shared (another busy process)."""

USER_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
"""Variables that, when set by the user, leave the waiting as they chose."""


def _load() -> float | None:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):  # not on this platform
        return None


def choose_wait_policy(
    environ: MutableMapping[str, str] = os.environ,
    modules: Mapping[str, object] = sys.modules,
    load: Callable[[], float | None] = _load,
) -> str | None:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` when it can still take effect, the user set no waiting
    of their own and the CPU is busy; returns the policy set, or ``None``."""
    if "torch" in modules or any(name in environ for name in USER_VARIABLES):
        return None
    busy = load()
    if busy is None or busy < BUSY_LOAD:
        return None
    environ["OMP_WAIT_POLICY"] = "PASSIVE"
    return "PASSIVE"


choose_wait_policy()
