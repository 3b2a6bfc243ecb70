"""How many threads a model's native pools (OpenMP, BLAS) use while batch predicts.

Measured here (2 vCPUs, HistGradientBoosting, 100 trees, 300,000 rows of 20 numbers): predicting
in chunks of 8,192 rows took 2.8 s with OpenMP's default of one thread per core and 1.6 s with
one thread; in chunks of 1,024, 20 s against 2.1 s. With the batch writer process busy on one of
the two cores, OpenMP's threads wait for a core at every barrier and spin meanwhile: the engine
ran 18k rows/s, a quarter of predicting the whole file at once. So while batch runs, the model
gets the cores the writer leaves (BATCH_MODEL_THREADS, 0: one fewer than this process may use).

threadpoolctl sets the limit: scikit-learn depends on it and has imported it already, and it
knows each OpenMP and BLAS runtime's own call. An environment without it (the ONNX-only bundle,
whose onnxruntime has its own ONNX_THREADS) runs unlimited.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from core.installed import is_installed


def model_thread_limit(setting: int) -> contextlib.AbstractContextManager[Any]:
    """A context in which the model's native pools use ``setting`` threads (0: automatic)."""
    if not is_installed("threadpoolctl"):
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=setting or automatic_threads())


def automatic_threads() -> int:
    """One fewer than the CPUs this process may run on (its affinity, which a container's
    cpuset narrows), at least one."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        usable = os.cpu_count() or 1
    return max(1, usable - 1)
