"""Session fixtures that take minutes, started in background threads as soon as pytest has
collected the run, in the order its tests will need them.

Little of their time is this process's work: a Terraform apply into moto mostly waits (the AWS
provider reads a bucket's lifecycle configuration back for about a minute before it believes it),
an `sls package` deflates its zip in node on the other core. Started at collection, that time
passes while the tests before them run, instead of in the setup of the first test that needs them:
the suite has a time budget (README, "Development"), and these were a third of it.

Declare one with :func:`session_build` in place of ``@pytest.fixture(scope="session")``::

    @session_build(lane=PACKAGING)
    def packaged(tmp_path_factory):
        return package_service(tmp_path_factory.mktemp("sls-package"))

The function takes ``tmp_path_factory`` and nothing else (it may run before any fixture exists), and
may be a generator: what follows its ``yield`` runs at the end of the session. It may ask for
another build with :func:`result`. It starts when a collected test needs the fixture (directly,
through other fixtures, or by naming it in its parameters for ``request.getfixturevalue``), and
never otherwise. A lane runs one build at a time, in the order of the tests; a test that needs a
build its lane has not reached takes it out of the queue and runs it in its own thread. Failures,
skips included, reach the tests that use the fixture, as from any fixture.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from types import GeneratorType
from typing import Any

import pytest

# Lanes: packaging is CPU (pip, zip deflating), so one at a time beside the tests; applies and
# deploys into moto mostly wait on the provider's polls, so a few go at once.
PACKAGING = "packaging"
MOTO = "moto"
_WORKERS = {PACKAGING: 1, MOTO: 3}


@dataclass
class _Build:
    function: Callable[[Any], Any]
    lane: str
    future: concurrent.futures.Future | None = None
    teardown: Iterator[Any] | None = None


_builds: dict[str, _Build] = {}
_lanes: dict[str, concurrent.futures.ThreadPoolExecutor] = {}
_lock = threading.Lock()
_factory: pytest.TempPathFactory | None = None


def session_build(lane: str) -> Callable[[Callable[[Any], Any]], Any]:
    """A session fixture of the function's name whose value is built in the background."""
    if lane not in _WORKERS:
        raise ValueError(f"lane must be one of {sorted(_WORKERS)}, got {lane!r}")

    def declare(function: Callable[[Any], Any]) -> Any:
        name = function.__name__
        _builds[name] = _Build(function, lane)

        @pytest.fixture(scope="session", name=name)
        def fixture(tmp_path_factory: pytest.TempPathFactory) -> Any:
            return result(name, tmp_path_factory)

        fixture.__doc__ = function.__doc__
        return fixture

    return declare


def result(name: str, tmp_path_factory: pytest.TempPathFactory | None = None) -> Any:
    """The value of build ``name``: waited for if it runs, run here if it has not started."""
    build = _builds[name]
    with _lock:
        if build.future is None or build.future.cancel():
            build.future = concurrent.futures.Future()
            build.future.set_running_or_notify_cancel()  # so that no other caller cancels it
            run_here = True
        else:
            run_here = False
    if run_here:
        factory = tmp_path_factory or _factory
        assert factory is not None, f"{name} was asked for outside a pytest session"
        _run(build, factory, build.future)
    return build.future.result()


def start(items: Iterable[pytest.Item], tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Queue the builds the collected ``items`` need, in the order they need them; their names."""
    global _factory
    _factory = tmp_path_factory
    # made lazily, and two threads that make it at once make two: the tests' own and a build's
    tmp_path_factory.getbasetemp()
    started = []
    for item in items:
        wanted = set(getattr(item, "fixturenames", ()))
        callspec = getattr(item, "callspec", None)
        if callspec is not None:
            wanted.update(value for value in callspec.params.values() if isinstance(value, str))
        for name in sorted(wanted & _builds.keys() - set(started), key=_order_in(item)):
            build = _builds[name]
            with _lock:
                if build.future is not None:
                    continue
                lane = _lanes.get(build.lane)
                if lane is None:
                    lane = _lanes[build.lane] = concurrent.futures.ThreadPoolExecutor(
                        _WORKERS[build.lane], thread_name_prefix=f"build-{build.lane}")
                outcome: concurrent.futures.Future = concurrent.futures.Future()
                build.future = lane.submit(_run, build, tmp_path_factory, outcome)
                # the caller waits on ``outcome`` (what the build gave), the lane's own future
                # only says whether the build started, so that cancel() can take it back
                build.future.add_done_callback(_forward_to(outcome))
                build.future = _Pending(build.future, outcome)
            started.append(name)
    return started


def finish() -> None:
    """Stop what has not started, wait for what has, and run the builds' teardowns."""
    for lane in _lanes.values():
        lane.shutdown(wait=True, cancel_futures=True)
    _lanes.clear()
    for build in reversed(list(_builds.values())):
        if build.teardown is not None:
            for _ in build.teardown:
                pass
            build.teardown = None
        build.future = None


def _order_in(item: pytest.Item) -> Callable[[str], int]:
    names = list(getattr(item, "fixturenames", ()))
    return lambda name: names.index(name) if name in names else len(names)


def _run(build: _Build, factory: pytest.TempPathFactory, outcome: concurrent.futures.Future) -> None:
    try:
        value = build.function(factory)
        if isinstance(value, GeneratorType):
            build.teardown = value
            value = next(value)
    except BaseException as error:  # noqa: BLE001 - a skip or failure is the fixture's outcome
        outcome.set_exception(error)
    else:
        outcome.set_result(value)


def _forward_to(outcome: concurrent.futures.Future) -> Callable[[concurrent.futures.Future], None]:
    def forward(started: concurrent.futures.Future) -> None:
        if started.cancelled() and not outcome.done():
            outcome.cancel()
    return forward


class _Pending:
    """A queued build: cancel() takes it out of its lane if it has not started; result() is what
    the build gave."""

    def __init__(self, queued: concurrent.futures.Future, outcome: concurrent.futures.Future) -> None:
        self._queued = queued
        self._outcome = outcome

    def cancel(self) -> bool:
        return self._queued.cancel()

    def result(self) -> Any:
        return self._outcome.result()
