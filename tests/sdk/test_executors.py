"""Executors (docs/flows.md): the same flows give the same results on every executor; the
specifics of LocalDaskExecutor and DaskExecutor; temporary Dask clusters are closed however a run
ends.

Tasks are defined at module level because the "processes" scheduler pickles them into worker
processes. Parallelism is shown with a rendezvous (marker files), never with timings. Every Dask
cluster is in-process (``processes=False``): no worker processes, HTTP on loopback only.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import dask
import distributed
import pytest
from distributed import LocalCluster
from distributed.core import Status

from flowrelay import Flow, Parameter, task, unmapped
from flowrelay.sdk.executors import DaskExecutor, Executor, LocalDaskExecutor, LocalExecutor
from flowrelay.sdk.states import Failed, Mapped, State, Success, TriggerFailed

IN_PROCESS: dict[str, Any] = {"processes": False, "n_workers": 1, "threads_per_worker": 4}


# --- tasks (module level: picklable into worker processes) ----------------------------------


@task
def inc(x):
    return x + 1


@task
def double(x):
    return 2 * x


@task
def add(x, y):
    return x + y


@task
def total(xs):
    return sum(xs)


@task
def divide(x, y):
    return x / y


@task
def invert(x):
    return 1 / x


@task
def touch(directory, name, value=None):
    """Append a line to marker file ``name``: proof that (and how often) the task ran."""
    with Path(directory, name).open("a") as marker:
        marker.write("ran\n")
    return name


@task
def listed_once(directory, n):
    with Path(directory, "listed").open("a") as marker:
        marker.write("ran\n")
    return list(range(n))


@task
def rendezvous(index, directory, expected, wait_seconds=10.0):
    """Arrive, then wait until ``expected`` children have arrived: succeeds only when that many
    run at the same time (in threads or processes)."""
    Path(directory, f"arrived-{index}").touch()
    deadline = time.monotonic() + wait_seconds
    while (arrived := len(list(Path(directory).glob("arrived-*")))) < expected:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {arrived} of {expected} children arrived")
        time.sleep(0.01)
    return {"index": index, "pid": os.getpid(), "thread": threading.current_thread().name}


@task
def config_value(key):
    return dask.config.get(key, None)


@task
def scheduler_address():
    """The address of the scheduler of the Dask worker running this task."""
    return distributed.get_worker().scheduler.address


@task(tags=["dask-resource:GPU=1"])
def gpu_resource(item=None):
    state = distributed.get_worker().state
    return {"available": state.available_resources["GPU"], "total": state.total_resources["GPU"]}


@task
def untagged_resource():
    state = distributed.get_worker().state
    return {"available": state.available_resources["GPU"], "total": state.total_resources["GPU"]}


def results(state: State) -> dict[Any, State]:
    assert isinstance(state.result, dict)
    return state.result


# --- the same flows on every executor -------------------------------------------------------

EXECUTORS: dict[str, Callable[[], Executor]] = {
    "local": LocalExecutor,
    "dask-threads": lambda: LocalDaskExecutor("threads"),
    "dask-processes": lambda: LocalDaskExecutor("processes", num_workers=2),
    "dask-synchronous": lambda: LocalDaskExecutor("synchronous"),
    "distributed": lambda: DaskExecutor(cluster_kwargs=IN_PROCESS),
}


@pytest.fixture(params=list(EXECUTORS))
def executor(request: pytest.FixtureRequest) -> Executor:
    return EXECUTORS[request.param]()


def test_chain(executor):
    with Flow("chain", executor=executor) as flow:
        x = Parameter("x", default=1)
        one = inc(x)
        two = double(one)
        three = add(two, y=x)

    state = flow.run(x=3)  # flow.executor is used when run() is given none

    assert state.is_successful(), state.message
    assert [results(state)[t].result for t in (x, one, two, three)] == [3, 4, 8, 11]
    assert all(isinstance(results(state)[t], Success) for t in (one, two, three))


def test_map_and_reduce(executor, tmp_path):
    with Flow("map-reduce") as flow:
        numbers = Parameter("numbers")
        incremented = inc.map(numbers)
        doubled = double.map(incremented)
        summed = total(doubled)
        shifted = add.map(incremented, unmapped(100))
        listed = listed_once(str(tmp_path), 3)
        from_upstream = inc.map(listed)  # the engine waits for `listed` to count its children
        listed_total = total(listed)  # uses `listed` after that wait
        empty = inc.map([])
        empty_total = total(empty)

    state = flow.run(parameters={"numbers": [1, 2, 3, 4]}, executor=executor)

    assert state.is_successful(), state.message
    got = results(state)
    assert isinstance(got[doubled], Mapped)
    assert got[incremented].result == [2, 3, 4, 5]
    assert got[doubled].result == [4, 6, 8, 10]
    assert got[summed].result == 28
    assert got[shifted].result == [102, 103, 104, 105]
    assert got[from_upstream].result == [1, 2, 3]
    assert got[listed_total].result == 3
    assert got[empty].result == []
    assert got[empty_total].result == 0
    child_states = got[doubled].map_states
    assert child_states is not None
    assert [child.result for child in child_states] == [4, 6, 8, 10]
    # Waiting on part of the flow must not make any task run twice.
    assert (tmp_path / "listed").read_text() == "ran\n"


def test_failure(executor, tmp_path):
    directory = str(tmp_path)
    with Flow("failure") as flow:
        quotient = divide(1, 0)
        after = touch(directory, "after-divide", quotient)
        inverted = invert.map([1, 0, 4])
        doubled = double.map(inverted)
        marked = touch.map(unmapped(directory), ["child-0", "child-1", "child-2"], inverted)
        summed = total(doubled)
        independent = inc(41)

    state = flow.run(executor=executor)

    assert state.is_failed()
    assert state.message == (
        "Task 'divide' failed: ZeroDivisionError: division by zero (also failed: 'invert')"
    )
    got = results(state)
    assert type(got[quotient]) is Failed
    assert isinstance(got[quotient].result, ZeroDivisionError)
    assert type(got[after]) is TriggerFailed
    assert got[after].message == "Did not run: upstream task 'divide' did not succeed"
    assert not (tmp_path / "after-divide").exists()

    inverted_children = got[inverted].map_states
    assert inverted_children is not None
    assert [type(child) for child in inverted_children] == [Success, Failed, Success]
    assert inverted_children[1].message == "ZeroDivisionError: division by zero"
    # A failed child's place holds its exception, as in the seeds' engine (FilterTask drops it).
    first, error, last = got[inverted].result
    assert (first, last) == (1.0, 0.25)
    assert isinstance(error, ZeroDivisionError)
    assert "invert[1]" in (got[inverted].message or "")

    doubled_children = got[doubled].map_states
    assert doubled_children is not None
    assert [type(child) for child in doubled_children] == [Success, TriggerFailed, Success]
    assert doubled_children[1].message == "Did not run: upstream task 'invert[1]' did not succeed"
    assert type(got[doubled]) is Failed
    assert "double[1]" in (got[doubled].message or "")
    assert got[marked].result == ["child-0", None, "child-2"]
    assert sorted(path.name for path in tmp_path.glob("child-*")) == ["child-0", "child-2"]

    assert type(got[summed]) is TriggerFailed
    assert got[independent].result == 42


# --- parallelism ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make_executor",
    [
        pytest.param(lambda: LocalDaskExecutor("threads", num_workers=4), id="dask-threads"),
        pytest.param(lambda: DaskExecutor(cluster_kwargs=IN_PROCESS), id="distributed"),
    ],
)
def test_mapped_children_run_in_parallel(make_executor, tmp_path):
    with Flow("parallel") as flow:
        met = rendezvous.map(range(4), unmapped(str(tmp_path)), unmapped(4))

    state = flow.run(executor=make_executor())

    assert state.is_successful(), state.message
    children = results(state)[met].result
    assert [child["index"] for child in children] == [0, 1, 2, 3]
    assert len({child["thread"] for child in children}) == 4


@pytest.mark.parametrize(
    "make_executor",
    [
        pytest.param(LocalExecutor, id="local"),
        pytest.param(lambda: LocalDaskExecutor("synchronous"), id="dask-synchronous"),
    ],
)
def test_the_rendezvous_fails_when_children_run_one_at_a_time(make_executor, tmp_path):
    # The control for the test above: sequential executors cannot pass the rendezvous.
    with Flow("sequential") as flow:
        met = rendezvous.map(range(2), unmapped(str(tmp_path)), unmapped(2), unmapped(0.2))

    state = flow.run(executor=make_executor())

    children = results(state)[met].map_states
    assert children is not None
    # Whichever child runs first waits in vain; the second finds the first one's marker.
    assert sorted(type(child).__name__ for child in children) == ["Failed", "Success"]
    failed = next(child for child in children if child.is_failed())
    assert failed.message == "TimeoutError: only 1 of 2 children arrived"


def test_thread_pool_has_num_workers_threads(tmp_path):
    with Flow("pool") as flow:
        met = rendezvous.map(range(6), unmapped(str(tmp_path)), unmapped(3))

    state = flow.run(executor=LocalDaskExecutor("threads", num_workers=3))

    assert state.is_successful(), state.message
    threads = {child["thread"] for child in results(state)[met].result}
    assert len(threads) == 3
    assert all(name.startswith("flowrelay-task") for name in threads)


@pytest.mark.slow
def test_process_pool_has_num_workers_processes(tmp_path):
    with Flow("pool") as flow:
        met = rendezvous.map(range(5), unmapped(str(tmp_path)), unmapped(3))

    state = flow.run(executor=LocalDaskExecutor("processes", num_workers=3))

    assert state.is_successful(), state.message
    pids = {child["pid"] for child in results(state)[met].result}
    assert len(pids) == 3
    assert os.getpid() not in pids


# --- LocalDaskExecutor ----------------------------------------------------------------------


def test_unknown_scheduler_is_rejected():
    with pytest.raises(ValueError, match=r"unknown scheduler 'gpu'.*'threads'"):
        LocalDaskExecutor("gpu")


@pytest.mark.parametrize("num_workers", [0, -1, 1.5, "2"])
def test_invalid_num_workers_is_rejected(num_workers):
    with pytest.raises(ValueError, match="num_workers must be an int >= 1"):
        LocalDaskExecutor("threads", num_workers=num_workers)


@pytest.mark.parametrize(
    ("alias", "scheduler"),
    [("threading", "threads"), ("multiprocessing", "processes"), ("sync", "synchronous")],
)
def test_scheduler_aliases(alias, scheduler):
    executor = LocalDaskExecutor(alias, num_workers=2)
    assert executor.scheduler == scheduler
    assert executor.num_workers == 2
    assert executor.dask_config == {}


@pytest.mark.parametrize("scheduler", ["threads", "synchronous", "processes"])
def test_dask_config_kwargs_are_visible_inside_tasks(scheduler):
    key = "flowrelay-test.answer"
    assert dask.config.get(key, None) is None
    executor = LocalDaskExecutor(scheduler, num_workers=1, **{key: 42})
    assert executor.dask_config == {key: 42}
    with Flow("config") as flow:
        seen = config_value(key)
        seen_by_children = config_value.map([key, key])

    state = flow.run(executor=executor)

    assert state.is_successful(), state.message
    assert results(state)[seen].result == 42
    assert results(state)[seen_by_children].result == [42, 42]
    assert dask.config.get(key, None) is None  # only while the run computes


def test_a_local_dask_executor_can_run_twice():
    executor = LocalDaskExecutor("threads", num_workers=2)
    with Flow("twice") as flow:
        doubled = double.map(inc.map(Parameter("numbers")))
    assert results(flow.run(numbers=[1], executor=executor))[doubled].result == [4]
    assert results(flow.run(numbers=[2, 3], executor=executor))[doubled].result == [6, 8]


# --- DaskExecutor ---------------------------------------------------------------------------


class RecordingCluster(LocalCluster):
    """A LocalCluster that records its instances, adapt() calls and close() calls."""

    instances: ClassVar[list[RecordingCluster]] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.adapt_calls: list[dict[str, Any]] = []
        self.close_calls = 0
        super().__init__(*args, **kwargs)
        self.address_at_start = self.scheduler_address
        RecordingCluster.instances.append(self)

    def adapt(self, *args: Any, **kwargs: Any) -> Any:
        self.adapt_calls.append(kwargs)
        return super().adapt(*args, **kwargs)

    def close(self, *args: Any, **kwargs: Any) -> Any:
        self.close_calls += 1
        return super().close(*args, **kwargs)


@pytest.fixture
def recorded() -> Iterator[list[RecordingCluster]]:
    RecordingCluster.instances.clear()
    yield RecordingCluster.instances
    for cluster in RecordingCluster.instances:
        if cluster.status != Status.closed:
            cluster.close()
    RecordingCluster.instances.clear()


def where_flow() -> tuple[Flow, Any, Any]:
    with Flow("where") as flow:
        address = scheduler_address()
        result = double(inc(1))
    return flow, address, result


def test_temporary_cluster_is_closed_after_a_successful_run(recorded):
    executor = DaskExecutor(cluster_class=RecordingCluster, cluster_kwargs=IN_PROCESS)
    flow, address, result = where_flow()

    state = flow.run(executor=executor)

    assert state.is_successful(), state.message
    assert len(recorded) == 1
    cluster = recorded[0]
    assert results(state)[address].result == cluster.address_at_start
    assert results(state)[result].result == 4
    assert cluster.close_calls >= 1
    assert cluster.status == Status.closed
    assert cluster.adapt_calls == []
    assert executor.cluster is None
    assert executor.client is None
    # The scheduler's HTTP server (health, metrics) listens on loopback only.
    assert cluster.scheduler.http_server.address == "127.0.0.1"


def test_temporary_cluster_is_closed_after_a_failed_run(recorded):
    executor = DaskExecutor(cluster_class=RecordingCluster, cluster_kwargs=IN_PROCESS)
    with Flow("failing") as flow:
        quotient = divide(1, 0)
        inc(quotient)

    state = flow.run(executor=executor)

    assert state.message == "Task 'divide' failed: ZeroDivisionError: division by zero"
    assert len(recorded) == 1
    assert recorded[0].close_calls >= 1
    assert recorded[0].status == Status.closed


def test_adapt_is_called_only_with_adapt_kwargs(recorded):
    flow, _, result = where_flow()
    executor = DaskExecutor(
        cluster_class=RecordingCluster,
        cluster_kwargs=IN_PROCESS,
        adapt_kwargs={"minimum": 1, "maximum": 2},
    )

    state = flow.run(executor=executor)

    assert results(state)[result].result == 4
    assert len(recorded) == 1
    assert recorded[0].adapt_calls == [{"minimum": 1, "maximum": 2}]
    assert recorded[0].status == Status.closed


def test_cluster_class_as_an_import_string():
    executor = DaskExecutor(cluster_class="distributed.LocalCluster", cluster_kwargs=IN_PROCESS)
    assert executor.resolve_cluster_class() is LocalCluster
    flow, address, result = where_flow()

    state = flow.run(executor=executor)

    assert state.is_successful(), state.message
    assert results(state)[address].result.startswith("inproc://")  # a distributed worker ran it
    assert results(state)[result].result == 4


def test_cluster_class_as_a_module_colon_name_string(recorded):
    executor = DaskExecutor(cluster_class=f"{__name__}:RecordingCluster", cluster_kwargs=IN_PROCESS)
    flow, address, _ = where_flow()

    state = flow.run(executor=executor)

    assert len(recorded) == 1
    assert results(state)[address].result == recorded[0].address_at_start
    assert recorded[0].status == Status.closed


def test_address_connects_to_an_existing_cluster_and_leaves_it_running(recorded):
    cluster = RecordingCluster(
        processes=False, n_workers=1, threads_per_worker=2, dashboard_address="127.0.0.1:0"
    )
    try:
        executor = DaskExecutor(address=cluster.scheduler_address)
        flow, address, result = where_flow()

        state = flow.run(executor=executor)

        assert state.is_successful(), state.message
        assert results(state)[address].result == cluster.scheduler_address
        assert results(state)[result].result == 4
        assert recorded == [cluster]  # no temporary cluster was created
        assert cluster.close_calls == 0
        assert cluster.status == Status.running
        with distributed.Client(cluster) as client:
            assert client.submit(sum, [1, 2]).result() == 3
    finally:
        cluster.close()


@pytest.mark.parametrize(
    "options",
    [
        {"cluster_kwargs": {"n_workers": 1}},
        {"cluster_class": LocalCluster},
        {"adapt_kwargs": {"maximum": 2}},
    ],
    ids=["cluster_kwargs", "cluster_class", "adapt_kwargs"],
)
def test_address_with_cluster_options_is_rejected(options):
    with pytest.raises(ValueError, match=r"either address .* not both"):
        DaskExecutor(address="tcp://127.0.0.1:8786", **options)


def test_cluster_class_must_be_a_class_or_a_string():
    with pytest.raises(TypeError, match="cluster_class must be a class or an import string"):
        DaskExecutor(cluster_class=42)  # type: ignore[arg-type]


def test_submit_outside_start_is_an_error():
    with pytest.raises(RuntimeError, match=r"outside executor.start\(\)"):
        DaskExecutor().submit(sum, [1, 2])


def test_dask_resource_tags_hold_worker_resources():
    executor = DaskExecutor(
        cluster_kwargs={
            "processes": False,
            "n_workers": 1,
            "threads_per_worker": 2,
            "resources": {"GPU": 1},
        }
    )
    with Flow("gpu") as flow:
        held = gpu_resource()
        held_by_children = gpu_resource.map([1, 2, 3])
        free = untagged_resource(upstream_tasks=[held, held_by_children])

    state = flow.run(executor=executor)

    assert state.is_successful(), state.message
    # While a tagged task runs, it holds the worker's only GPU...
    assert results(state)[held].result == {"available": 0, "total": 1}
    assert results(state)[held_by_children].result == [{"available": 0, "total": 1}] * 3
    # ... which an untagged task does not.
    assert results(state)[free].result == {"available": 1, "total": 1}


INTERRUPTED_FLOW = textwrap.dedent(
    """
    import signal
    import sys
    import time
    from pathlib import Path

    from distributed import LocalCluster

    from flowrelay import Flow, task
    from flowrelay.sdk.executors import DaskExecutor

    MARKERS = Path(sys.argv[1])


    class MarkingCluster(LocalCluster):
        def close(self, *args, **kwargs):
            result = super().close(*args, **kwargs)
            (MARKERS / "closed").write_text("closed")
            return result


    @task
    def sleepy():
        (MARKERS / "started").write_text("started")
        time.sleep(60)


    if __name__ == "__main__":
        # Ctrl-C raises KeyboardInterrupt even if this process inherited an ignored SIGINT.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        with Flow("interrupted") as flow:
            sleepy()
        executor = DaskExecutor(
            cluster_class=MarkingCluster, cluster_kwargs={"processes": False, "n_workers": 1}
        )
        flow.run(executor=executor)
    """
)


@pytest.mark.slow
def test_an_interrupted_run_closes_its_temporary_cluster(tmp_path):
    script = tmp_path / "interrupted_flow.py"
    script.write_text(INTERRUPTED_FLOW)
    markers = tmp_path / "markers"
    markers.mkdir()
    log_path = tmp_path / "output.log"

    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, str(script), str(markers)],
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while not (markers / "started").exists():
                assert process.poll() is None, f"exited early:\n{log_path.read_text()}"
                assert time.monotonic() < deadline, f"task never started:\n{log_path.read_text()}"
                time.sleep(0.05)
            process.send_signal(signal.SIGINT)
            try:
                returncode = process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pytest.fail(f"still running 30 s after SIGINT:\n{log_path.read_text()}")
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()

    assert returncode != 0
    assert "KeyboardInterrupt" in log_path.read_text()
    assert (markers / "closed").read_text() == "closed", log_path.read_text()
