"""Batch prediction: a ``.csv``, ``.jsonl`` or ``.json`` object (optionally ``.gz``) in, predictions out.

One engine for every trigger: a provider adapter (or the ``serverless-ml batch`` command) turns
its event into an input URI and calls :func:`run_batch`. Importing this package loads neither
NumPy nor a cloud SDK; the first run pays for them.

    engine.py     run_batch(): read in chunks, predict, write, publish; the BatchResult
    steps.py      the steps runs share: the pinned read, the reader, chunks predicted into outputs
    formats.py    which object names are inputs (.csv, .jsonl, optionally .gz), and why not
    lines.py      a byte stream -> chunks of numbered text lines, bounded memory
    readers.py    numbered lines -> rows of floats in feature order + per-line failures
    outputs.py    the predictions and errors files: their format and temp files
    publish.py    publishing them: only while the input is still the version read, on conditions
    triggered.py  run_for_created_object(): what every storage trigger does with one object
    deadline.py   a run stopped cleanly before its invocation's time limit (BatchTimeLimit)
    fanout.py     a file too large for one run: plan (row-aligned byte ranges), run_part, merge;
                  the JSON contract an orchestrator (Step Functions, Durable Functions, Workflows) calls
    boundaries.py the plan's pass over the bytes: line ends and CSV quote states, range by range
    workers.py    the same fan-out with N local processes (serverless-ml batch --workers N)
    compare.py    two models over one file: the agreement figures (serverless-ml compare)
    shadow.py     a run's candidate in shadow mode: its predictions and the comparison's summary

Where the outputs go, and which objects are never inputs, is core.storage.locations: the
settings check the output prefix against the same rules at start.

This file imports nothing, on purpose: the predictions writer is a child process that imports
core.batch.output_writer, and so runs this file first; importing the engine here would load the
settings, storage, request parsing, logging and gzip into a process that needs none of them.
Import from the modules: ``core.batch.engine.run_batch``, ``core.batch.triggered.run_for_created_object``.
"""
