"""``serverless-ml batch INPUT --workers N``: the fan-out of core/batch/fanout.py on one machine,
with N local processes in the place of a cloud's workflow engine, so that the same plan, parts
and merge run end to end anywhere.

    survey          this process: one look at the input
    scan_grain      the N processes, one grain after another
    cut             this process, and its locate_entry on the N processes
    run_part        the N processes, one part after another (each loads the model once)
    merge           this process (server-side on S3, GCS and Azure; a copy for local files)

The file is cut into about two parts per process (parts of at most BATCH_FANOUT_PART_BYTES), so a
process that finishes early (the machine is shared, a part is slower) takes another; never into
parts under :data:`LOCAL_FLOOR_BYTES`, unless BATCH_FANOUT_PART_BYTES is set smaller. A file that
would be one part, a gzip or a ``.json`` file, and ``--workers 1`` run in this process as
without fan-out. The processes are started fresh (``spawn``), never forked from a process that
may hold SDK threads and connections.
"""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from typing import Any

from core.batch import fanout
from core.batch.engine import BatchResult, Progress, run_batch
from core.settings import Settings
from core.storage import StorageURI

LOCAL_FLOOR_BYTES = 1024 * 1024

_holder: Any = None
_settings: Settings | None = None


class LocalWorkers:
    """``workers`` processes for fanned-out runs, started on the first file that needs them and
    kept for the next (each loads the model once); ``settings`` are theirs for good."""

    def __init__(self, settings: Settings, workers: int) -> None:
        if workers < 1:
            raise ValueError(f"workers must be 1 or more; got {workers}")
        self.settings = settings
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def run(self, input_uri: StorageURI, *, model_holder: Any = None, output_prefix: StorageURI | None = None,
            progress: Progress | None = None) -> tuple[BatchResult, dict[str, Any]]:
        """Predict ``input_uri``; the result as run_batch gives it, and how the work went: parts,
        workers, and the seconds of planning, running the parts and merging. ``model_holder``:
        this process's, for a file that runs here whole."""
        settings, workers = self.settings, self.workers
        started = time.perf_counter()
        surveyed = None if workers == 1 else fanout.survey(
            input_uri, settings, output_prefix=output_prefix, at_least=2 * workers, floor_bytes=LOCAL_FLOOR_BYTES)
        if surveyed is None or surveyed["whole"] or surveyed["skipped"]:
            why = "one worker" if surveyed is None else surveyed["whole"] or surveyed["skipped"]
            return _whole(input_uri, settings, model_holder, output_prefix, progress, started, why)
        pool = self._started()
        grains = surveyed["grains"]
        scans = list(pool.map(fanout.scan_grain, grains, chunksize=max(1, len(grains) // (8 * workers))))
        plan = fanout.cut(surveyed, scans, locate=pool.map)
        planned = time.perf_counter()
        if len(plan["parts"]) == 1:  # no place to cut (one quoted field that never ends, say)
            return _whole(input_uri, settings, model_holder, output_prefix, progress, started,
                          "no place to cut was found")
        results = _run_parts(pool, plan, settings, progress)
        ran = time.perf_counter()
        merged = fanout.merge(plan, results, settings)
        done = time.perf_counter()
        return BatchResult(**merged), {
            "workers": workers, "parts": len(plan["parts"]), "plan_seconds": round(planned - started, 3),
            "parts_seconds": round(ran - planned, 3), "merge_seconds": round(done - ran, 3),
            "seconds": round(done - started, 3),
        }

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def __enter__(self) -> LocalWorkers:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def _started(self) -> ProcessPoolExecutor:
        if self._pool is None:
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(self.workers, mp_context=context, initializer=_start_worker,
                                             initargs=(self.settings,))
        return self._pool


def run_with_workers(
    input_uri: StorageURI, settings: Settings, workers: int, *, model_holder: Any = None,
    output_prefix: StorageURI | None = None, progress: Progress | None = None,
) -> tuple[BatchResult, dict[str, Any]]:
    """One file with ``workers`` processes (see LocalWorkers.run), which end with it."""
    with LocalWorkers(settings, workers) as local:
        return local.run(input_uri, model_holder=model_holder, output_prefix=output_prefix, progress=progress)


def _run_parts(pool: ProcessPoolExecutor, plan: dict[str, Any], settings: Settings,
               progress: Progress | None) -> list[dict[str, Any]]:
    """Every part on the pool; the first failure stops the others and removes what was written."""
    futures = {pool.submit(_run_part, part): part for part in plan["parts"]}
    results: list[dict[str, Any]] = []
    pending = set(futures)
    rows = done_bytes = 0
    while pending:
        finished, pending = wait(pending, return_when=FIRST_EXCEPTION)
        for future in finished:
            failure = future.exception()
            if failure is not None:
                for other in pending:
                    other.cancel()
                wait(pending)
                fanout.remove_parts(plan, settings)
                raise failure
            results.append(future.result())
            part = futures[future]
            rows += results[-1]["rows_read"]
            done_bytes += part["end"] - part["start"]
            if progress is not None:
                progress(rows, done_bytes)
    return results


def _whole(input_uri: StorageURI, settings: Settings, model_holder: Any, output_prefix: StorageURI | None,
           progress: Progress | None, started: float, why: str) -> tuple[BatchResult, dict[str, Any]]:
    if model_holder is None:
        from core.model import ModelHolder

        model_holder = ModelHolder(settings)
    result = run_batch(input_uri, model_holder, settings, output_prefix=output_prefix, progress=progress)
    return result, {"workers": 1, "parts": 1, "whole": why, "seconds": round(time.perf_counter() - started, 3)}


# --- in each worker process ----------------------------------------------------------------------


def _start_worker(settings: Settings) -> None:
    global _holder, _settings
    from core.logs import configure
    from core.model import ModelHolder

    configure(settings.log_level)
    _settings = settings
    _holder = ModelHolder(settings)  # loaded on the first part this process runs


def _run_part(part: dict[str, Any]) -> dict[str, Any]:
    assert _settings is not None, "the worker was started by _start_worker"
    return fanout.run_part(part, _holder, _settings)


__all__ = ["LOCAL_FLOOR_BYTES", "LocalWorkers", "run_with_workers"]
