"""The seeds' engine's task and flow idioms, each as its documentation describes it: triggers,
signals, state handlers, skips, branches, operators, nout, context, caching, targets and reuse of
given states. Every test runs a real flow on the LocalExecutor (and some on threads)."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import flowrelay
from flowrelay import Flow, Parameter, Task, apply_map, case, context, flatten, task, unmapped
from flowrelay.engine import signals
from flowrelay.engine.cache_validators import all_inputs
from flowrelay.engine.results import LocalResult
from flowrelay.engine.state import (
    Cached,
    Failed,
    Looped,
    Mapped,
    Pending,
    Retrying,
    Running,
    Skipped,
    State,
    Success,
    TriggerFailed,
)
from flowrelay.executors import LocalDaskExecutor
from flowrelay.tasks.control_flow import FilterTask, ifelse, merge, switch
from flowrelay.triggers import (
    all_failed,
    always_run,
    any_failed,
    any_successful,
    manual_only,
    not_all_skipped,
    some_successful,
)
from flowrelay.utilities.tasks import defaults_from_attrs


@task
def one() -> int:
    return 1


@task
def boom() -> None:
    raise ValueError("boom")


@task
def echo(x: Any) -> Any:
    return x


def by_slug(flow: Flow, state: State) -> dict[str, State]:
    return {flow.slug(t): s for t, s in state.result.items()}


# --- triggers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("trigger", "ran"),
    [
        (all_failed, False),  # one upstream succeeded
        (any_failed, True),
        (any_successful, True),
        (always_run, True),
        (some_successful(at_least=1, at_most=1), True),
        (some_successful(at_least=0.9), False),
    ],
)
def test_triggers_decide_from_upstream_states(trigger: Any, ran: bool) -> None:
    @task(trigger=trigger)
    def after(a: Any, b: Any) -> str:
        return "ran"

    with Flow("triggers") as flow:
        result = after(one(), boom())
    state = flow.run().result[result]
    assert state.is_successful() is ran
    if not ran:
        assert isinstance(state, TriggerFailed)
        assert "Trigger was" in str(state.message)


def test_a_trigger_receives_failed_upstream_results_as_inputs() -> None:
    @task(trigger=all_failed)
    def report(error: Any) -> str:
        return f"saw {type(error).__name__}"

    with Flow("cleanup") as flow:
        result = report(boom())
    assert flow.run().result[result].result == "saw ValueError"


def test_reference_tasks_decide_the_run_state() -> None:
    @task(trigger=all_failed)
    def cleanup() -> str:
        return "cleaned"

    with Flow("reference") as flow:
        work = boom()
        done = cleanup(upstream_tasks=[work])
    assert flow.run().is_successful()  # the terminal task (cleanup) succeeded
    flow.set_reference_tasks([work])
    state = flow.run()
    assert state.is_failed()
    assert state.result[done].result == "cleaned"


def test_manual_only_is_refused_with_the_reason() -> None:
    @task(trigger=manual_only)
    def approve(x: int) -> int:
        return x

    with Flow("approval") as flow:
        result = approve(one())
    state = flow.run().result[result]
    assert state.is_failed()
    assert "manual_only" in str(state.message)
    assert "resume" in str(state.message)


# --- signals -----------------------------------------------------------------------------------


def test_signals_end_a_task_in_their_state() -> None:
    @task
    def succeed() -> None:
        raise signals.SUCCESS("fine", result=5)

    @task
    def fail() -> None:
        raise signals.FAIL("no good")

    @task
    def skip() -> None:
        raise signals.SKIP("not today")

    @task
    def end() -> None:
        raise signals.ENDRUN(Success("ended", result="early"))

    with Flow("signals") as flow:
        a, b, c, d = succeed(), fail(), skip(), end()
        after_skip = echo(c)
    got = flow.run().result
    assert (type(got[a]), got[a].result, got[a].message) == (Success, 5, "fine")
    assert type(got[b]) is Failed
    assert got[b].message == "no good"
    assert type(got[c]) is Skipped
    assert got[c].result is None
    assert type(got[after_skip]) is Skipped  # skips propagate
    assert got[d].result == "early"


def test_skip_does_not_propagate_when_the_task_says_so() -> None:
    @task
    def skip() -> None:
        raise signals.SKIP()

    @task(skip_on_upstream_skip=False)
    def regardless(x: Any) -> str:
        return f"got {x}"

    with Flow("no skip") as flow:
        result = regardless(skip())
    assert flow.run().result[result].result == "got None"


def test_loop_runs_the_task_again_with_its_loop_result() -> None:
    @task
    def fibonacci(n: int) -> int:
        a, b, count = context.get("task_loop_result", (0, 1, 0))
        if count >= n:
            return int(a)
        raise signals.LOOP(message=f"step {count}", result=(b, a + b, count + 1))

    seen: list[str] = []

    def watch(task: Task, old: State, new: State) -> None:
        seen.append(new.name)

    with Flow("loop") as flow:
        result = fibonacci(10, task_args={"state_handlers": [watch]})
    assert flow.run().result[result].result == 55
    assert seen.count("Looped") == 10
    assert seen[-1] == "Success"


def test_retry_signal_and_retries_count_in_context() -> None:
    runs: list[int] = []

    @task(max_retries=2, retry_delay=timedelta(0))
    def flaky() -> int:
        runs.append(context.task_run_count)
        if len(runs) < 3:
            raise ValueError("not yet")
        return len(runs)

    @task
    def asks_again() -> str:
        if context.task_run_count == 1:
            raise signals.RETRY("once more")
        return "second time"

    with Flow("retries") as flow:
        a, b = flaky(), asks_again()
    got = flow.run().result
    assert (got[a].result, runs, got[a].attempts) == (3, [1, 2, 3], 3)
    assert got[b].result == "second time"


# --- state handlers ----------------------------------------------------------------------------


def test_state_handlers_see_every_change_and_may_replace_the_state() -> None:
    changes: list[tuple[str, str]] = []

    def record(task: Task, old: State, new: State) -> State | None:
        changes.append((old.name, new.name))
        if new.is_failed():
            return Success("forgiven", result="fallback")
        return None

    @task(state_handlers=[record], max_retries=1, retry_delay=0)
    def failing() -> None:
        raise ValueError("nope")

    with Flow("handlers") as flow:
        result = echo(failing())
    got = flow.run().result
    assert changes == [
        ("Pending", "Running"),
        ("Running", "Retrying"),
        ("Retrying", "Running"),
        ("Running", "Failed"),
    ]
    assert got[result].result == "fallback"


def test_a_state_handler_that_raises_fails_the_task_naming_it() -> None:
    def broken(task: Task, old: State, new: State) -> None:
        raise RuntimeError("handler bug")

    with Flow("bad handler") as flow:
        result = one(task_args={"state_handlers": [broken]})
    state = flow.run().result[result]
    assert state.is_failed()
    assert "'broken' raised RuntimeError: handler bug" in str(state.message)


def test_flow_state_handlers_and_terminal_state_handler() -> None:
    seen: list[str] = []

    def flow_handler(flow: Flow, old: State, new: State) -> None:
        seen.append(f"{old.name}->{new.name}")

    def terminal(flow: Flow, state: State, reference: dict[Task, State]) -> State:
        return Success(f"{len(reference)} reference task(s), forgiven", result=state.result)

    with Flow("flow handlers", state_handlers=[flow_handler]) as flow:
        boom()
    assert flow.run().is_failed()
    assert seen == ["Scheduled->Running", "Running->Failed"]
    flow.terminal_state_handler = terminal
    assert flow.run().message == "1 reference task(s), forgiven"


def test_on_failure_is_called_with_the_failed_state() -> None:
    calls: list[str] = []
    with Flow("on failure") as flow:
        boom(task_args={"on_failure": lambda task, state: calls.append(str(state.message))})
    flow.run()
    assert calls == ["ValueError: boom"]


# --- branches ----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [True, False])
def test_case_and_merge_take_one_branch(value: bool) -> None:
    @task
    def yes() -> str:
        return "yes"

    @task
    def no() -> str:
        return "no"

    with Flow("case") as flow:
        condition = Parameter("condition")
        with case(condition, True):
            first = yes()
            then = echo(first)
        with case(condition, False):
            second = no()
        result = merge(then, second)
    got = flow.run(condition=value).result
    assert got[result].result == ("yes" if value else "no")
    assert isinstance(got[first if not value else second], Skipped)


def test_nested_cases_skip_inner_blocks_of_a_branch_not_taken() -> None:
    with Flow("nested") as flow:
        outer, inner = Parameter("outer"), Parameter("inner")
        with case(outer, True), case(inner, True):
            deep = one()
    assert flow.run(outer=True, inner=True).result[deep].result == 1
    assert isinstance(flow.run(outer=False, inner=True).result[deep], Skipped)


def test_ifelse_and_switch() -> None:
    @task
    def label(name: str) -> str:
        return name

    with Flow("switch") as flow:
        kind = Parameter("kind")
        a, b, c = label("a"), label("b"), label("c")
        switch(kind, {"a": a, "b": b, "c": c})
        positive, negative = label("positive"), label("negative")
        ifelse(Parameter("n") > 0, positive, negative)
    got = by_slug(flow, flow.run(kind="b", n=-3))
    assert [got[s].name for s in ("label", "label-2", "label-3")] == [
        "Skipped",
        "Success",
        "Skipped",
    ]
    assert (got["label-4"].name, got["label-5"].result) == ("Skipped", "negative")


def test_merge_of_only_skipped_branches_is_skipped() -> None:
    @task
    def skip() -> None:
        raise signals.SKIP()

    with Flow("all skipped") as flow:
        result = merge(skip(), skip())
    assert isinstance(flow.run().result[result], Skipped)
    assert merge(flow=flow).trigger is not_all_skipped


# --- shapes: nout, items, operators, Task subclasses, copies -------------------------------------


def test_nout_getitem_and_operators_build_tasks() -> None:
    @task(nout=2)
    def pair() -> tuple[int, int]:
        return 3, 4

    @task
    def record() -> dict[str, list[int]]:
        return {"values": [10, 20]}

    with Flow("shapes") as flow:
        a, b = pair()
        total = a + b * 2 - 1
        ratio = 10 / a
        power = 2**b
        item = record()["values"][1]
        bigger = total > item
        same = a.is_equal(3)
    got = flow.run().result
    assert [got[t].result for t in (total, ratio, power, item, bigger, same)] == [
        10,
        10 / 3,
        16,
        20,
        False,
        True,
    ]


def test_nout_from_a_tuple_annotation_and_a_clear_error_without_it() -> None:
    @task
    def annotated() -> tuple[int, str]:
        return 1, "a"

    with Flow("annotated") as flow:
        _number, letter = annotated()
    assert flow.run().result[letter].result == "a"
    with Flow("plain"), pytest.raises(TypeError, match="nout="):
        _first, _second = one()


def test_task_subclass_with_defaults_from_attrs_copy_and_task_args() -> None:
    class Greet(Task):
        def __init__(self, greeting: str = "hello", **kwargs: Any) -> None:
            self.greeting = greeting
            super().__init__(**kwargs)

        @defaults_from_attrs("greeting")
        def run(self, name: str, greeting: str | None = None) -> str:
            return f"{greeting} {name}"

    greet = Greet(name="greet")
    shout = greet.copy(greeting="HEY")
    with Flow("subclass") as flow:
        a = greet("ann")
        b = shout("bob", task_args={"name": "shout"})
        c = greet("cy", greeting="hi")
    got = flow.run().result
    assert [got[t].result for t in (a, b, c)] == ["hello ann", "HEY bob", "hi cy"]
    assert flow.slug(b) == "shout"


# --- mapping ----------------------------------------------------------------------------------


def test_flatten_and_filter_task() -> None:
    @task
    def nested() -> list[list[int]]:
        return [[1, 2], [], [3]]

    @task
    def check(x: int) -> int:
        if x == 2:
            raise ValueError("two")
        return x * 10

    with Flow("flatten") as flow:
        checked = check.map(flatten(nested()))
        kept = FilterTask()(checked)
        constants = echo.map(flatten([[1], [2, 3]]))
    got = flow.run().result
    assert got[kept].result == [10, 30]
    assert got[constants].result == [1, 2, 3]


def test_apply_map_with_a_case_per_item() -> None:
    @task
    def inc(x: int) -> int:
        return x + 1

    @task
    def negate(x: int) -> int:
        return -x

    def inc_or_negate(x: Any, limit: Any) -> Task:
        with case(x > limit, True):
            big = inc(x)
        with case(x > limit, False):
            small = negate(x)
        return merge(big, small)

    with Flow("apply_map") as flow:
        result = apply_map(inc_or_negate, [1, 7, 3], limit=unmapped(Parameter("limit")))
    state = flow.run(limit=2).result[result]
    assert isinstance(state, Mapped)
    assert state.result == [-1, 8, 4]


# --- context, logs, stdout ---------------------------------------------------------------------


def test_context_values_in_tasks_and_mapped_children(caplog: pytest.LogCaptureFixture) -> None:
    @task
    def describe(x: int) -> dict[str, Any]:
        context.get("logger").info("child %s of %s", context.map_index, context.flow_name)
        return {
            key: context.get(key)
            for key in ("flow_name", "task_name", "map_index", "flow_run_id", "parameters")
        } | {"today": context.today, "run_count": flowrelay.context.task_run_count}

    with Flow("context") as flow:
        described = describe.map(Parameter("xs"))
    with caplog.at_level(logging.INFO):
        state = flow.run(xs=[5, 6], context={"flow_run_id": "run-1"})
    second = state.result[described].result[1]
    assert second["flow_name"] == "context"
    assert second["task_name"] == "describe"
    assert (second["map_index"], second["flow_run_id"], second["run_count"]) == (1, "run-1", 1)
    assert second["parameters"] == {"xs": [5, 6]}
    assert len(second["today"]) == 10
    lines = [(r.name, r.getMessage()) for r in caplog.records]
    assert ("flowrelay.task.describe", "child 1 of context") in lines
    assert context.get("task_name") is None  # nothing left behind after the run


def test_log_stdout_sends_prints_to_the_task_logger(caplog: pytest.LogCaptureFixture) -> None:
    @task(log_stdout=True)
    def chatty() -> None:
        print("hello from print")

    with Flow("stdout") as flow:
        chatty()
    with caplog.at_level(logging.INFO):
        flow.run()
    assert ("flowrelay.task.chatty", "hello from print") in [
        (r.name, r.getMessage()) for r in caplog.records
    ]


def test_context_values_reach_tasks_on_threads() -> None:
    @task
    def which(x: int) -> tuple[Any, Any]:
        return context.map_index, context.flow_run_id

    with Flow("threads") as flow:
        found = which.map([0, 1, 2, 3])
    state = flow.run(executor=LocalDaskExecutor("threads"), context={"flow_run_id": "t"})
    assert state.result[found].result == [(0, "t"), (1, "t"), (2, "t"), (3, "t")]


# --- caching, targets, checkpoints, reuse ------------------------------------------------------


def test_cache_for_reuses_a_result_within_the_process() -> None:
    calls: list[int] = []

    @task(cache_for=timedelta(minutes=5), cache_validator=all_inputs)
    def expensive(x: int) -> int:
        calls.append(x)
        return x * 2

    with Flow("cache") as flow:
        result = expensive(Parameter("x"))
    assert flow.run(x=1).result[result].result == 2
    again = flow.run(x=1).result[result]
    assert isinstance(again, Cached)
    assert again.result == 2
    assert flow.run(x=2).result[result].result == 4
    assert calls == [1, 2]


def test_a_task_whose_target_exists_is_not_run_again(tmp_path: Path) -> None:
    calls: list[str] = []

    @task(target="{task_name}-{day}.json", checkpoint=True)
    def extract(day: str) -> dict[str, str]:
        calls.append(day)
        return {"day": day}

    with Flow("targets", result=LocalResult(dir=str(tmp_path))) as flow:
        result = extract(Parameter("day"))
    first = flow.run(day="mon", context={"checkpointing": True}).result[result]
    assert first.location == str(tmp_path / "extract-mon.json")
    second = flow.run(day="mon", context={"checkpointing": True}).result[result]
    assert isinstance(second, Cached)
    assert second.result == {"day": "mon"}
    assert calls == ["mon"]


def test_checkpointing_is_off_unless_the_run_turns_it_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Flow(
        "checkpoints", result=LocalResult(dir=str(tmp_path), location="{task_slug}.pkl")
    ) as flow:
        result = one()
        nothing = echo(None)
    assert flow.run().result[result].location is None
    monkeypatch.setenv("FLOWRELAY__FLOWS__CHECKPOINTING", "true")
    got = flow.run().result
    assert got[result].location == str(tmp_path / "one.pkl")
    assert got[nothing].location == ""  # None is not written, and the state says so
    monkeypatch.setenv("FLOWRELAY__FLOWS__CHECKPOINTING", "maybe")
    with pytest.raises(ValueError, match="must be true or false"):
        flow.run()


def test_task_states_are_used_as_given_and_unknown_keys_refused() -> None:
    calls: list[str] = []

    @task
    def step(name: str, before: Any = None) -> str:
        calls.append(name)
        return f"{name}<{before}"

    with Flow("given") as flow:
        a = step("a")
        b = step("b", a)
        c = step("c", b)
    state = flow.run(task_states={b: Success(result="given b")})
    assert calls == ["a", "c"]  # as the seeds' engine: a given finished state is not run
    assert state.result[c].result == "c<given b"
    with pytest.raises(ValueError, match="names no task of the flow: 'nosuch'"):
        flow.run(task_states={"nosuch": Success()})


def test_a_restart_reuses_states_and_reruns_what_follows_a_rerun() -> None:
    calls: list[str] = []

    @task
    def step(name: str) -> str:
        calls.append(name)
        return name

    with Flow("reuse") as flow:
        a = step("a")
        b = step("b", upstream_tasks=[a])
        c = step("c", upstream_tasks=[b])
        mapped = echo.map([1, 2, 3], upstream_tasks=[unmapped(a)])
        item = echo(mapped)[0]
    state = flow.run(
        restart_from={
            "step": Success(result="a"),
            "step-3": Success(result="old c"),  # its upstream b runs again, so c does too
            "echo[1]": Success(result=20),
            flow.slug(item): Success(result="old item"),  # a slug with brackets of its own
            "gone": Success(),  # a task the flow no longer has: logged, ignored
        }
    )
    assert calls == ["b", "c"]
    assert state.result[c].result == "c"
    assert state.result[mapped].result == [1, 20, 3]
    assert state.result[item].result == 1  # its upstream echo ran again


def test_states_for_state_handlers_are_the_documented_classes() -> None:
    assert issubclass(Skipped, Success)
    assert issubclass(Cached, Success)
    assert issubclass(Retrying, Pending)
    assert not issubclass(Looped, Success)
    assert Running().is_running()
    assert not Running().is_finished()


# --- what a hostile review found -----------------------------------------------------------------


def test_tasks_reading_the_context_run_in_worker_processes() -> None:
    # Defined here, so that it is pickled by value with the context it reads (as a flow script's
    # tasks are), not by reference to this module.
    @task
    def where_am_i(x: int) -> tuple[Any, Any]:
        return context.map_index, context.get("flow_run_id")

    with Flow("processes") as flow:
        found = where_am_i.map([0, 1])
    state = flow.run(executor=LocalDaskExecutor("processes"), context={"flow_run_id": "p"})
    assert state.result[found].result == [(0, "p"), (1, "p")]


def test_log_stdout_on_threads_keeps_each_print_with_its_task(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import sys
    import time

    stdout = sys.stdout

    @task(log_stdout=True)
    def quiet(x: int) -> None:
        time.sleep(0.05)
        print(f"quiet {x}")

    @task
    def loud(x: int) -> None:
        time.sleep(0.02)
        print(f"loud {x}")

    with Flow("prints") as flow:
        quiet.map([1, 2])
        loud.map([1, 2])
    with caplog.at_level(logging.INFO):
        flow.run(executor=LocalDaskExecutor("threads"))
    logged = {
        (r.name, r.getMessage()) for r in caplog.records if r.name.startswith("flowrelay.task.")
    }
    assert logged == {("flowrelay.task.quiet", "quiet 1"), ("flowrelay.task.quiet", "quiet 2")}
    assert sys.stdout is stdout  # nothing left routing prints once the run is over


def test_a_value_a_task_sets_in_the_context_stays_across_its_loops() -> None:
    @task
    def count_up() -> int:
        context["seen"] = context.get("seen", 0) + 1
        current = context.get("task_loop_result", 0)
        if current < 3:
            raise signals.LOOP(result=current + 1)
        return int(context["seen"])

    with Flow("loop context") as flow:
        result = count_up()
    assert flow.run().result[result].result == 4


def test_state_handlers_can_stop_retries_and_raise_signals() -> None:
    runs: list[int] = []

    def no_retries(task: Task, old: State, new: State) -> State | None:
        return Failed("not retried: the handler said so") if isinstance(new, Retrying) else None

    def skip_failures(task: Task, old: State, new: State) -> None:
        if new.is_failed():
            raise signals.SKIP("failures are skipped here")

    @task(max_retries=3, retry_delay=0, state_handlers=[no_retries])
    def flaky() -> None:
        runs.append(1)
        raise ValueError("nope")

    with Flow("handlers decide") as flow:
        stopped = flaky()
        skipped = boom(task_args={"state_handlers": [skip_failures]})
        after = echo(skipped)
    got = flow.run().result
    assert (runs, got[stopped].message) == ([1], "not retried: the handler said so")
    assert isinstance(got[skipped], Skipped)
    assert isinstance(got[after], Skipped)


def test_targets_are_formatted_once(tmp_path: Path) -> None:
    @task(target="{name}.txt", checkpoint=True)
    def named(name: str) -> str:
        return name

    with Flow("braces", result=LocalResult(dir=str(tmp_path))) as flow:
        result = named(Parameter("name"))
    for _ in range(2):
        state = flow.run(name="{json}", context={"checkpointing": True}).result[result]
    assert isinstance(state, Cached)
    assert state.result == "{json}"


def test_bad_settings_are_refused_with_what_is_wrong() -> None:
    @task(target="x.txt")
    def targeted() -> int:
        return 1

    with Flow("no result") as flow:
        result = targeted()
    assert "has target 'x.txt' but no result" in str(flow.run().result[result].message)

    with pytest.raises(TypeError, match="result must be a Result instance"):
        task(result=LocalResult)(lambda: 1)
    with pytest.raises(ValueError, match="retry_delay"):
        one.copy(max_retries=2)
    with pytest.raises(TypeError, match="trigger must be a function"):
        one.copy(trigger="all_failed")

    class NoSuper(Task):
        def __init__(self) -> None:
            pass

    with Flow("no super"), pytest.raises(TypeError, match=r"must call super\(\).__init__"):
        NoSuper()()

    def says_hello(flow: Flow, old: State, new: State) -> Any:
        return "hello"

    with Flow("bad flow handler", state_handlers=[says_hello]) as flow:
        one()
    state = flow.run()
    assert state.is_failed()
    assert state.message == "Flow state handler 'says_hello' returned str, not a State (or None)"


def test_a_restart_reruns_what_follows_a_mapped_task_whose_child_ran_again() -> None:
    calls: list[str] = []

    @task
    def times_ten(x: int) -> int:
        return x * 10

    @task(trigger=always_run)
    def summary(values: list[Any]) -> str:
        calls.append("summary")
        return repr(values)

    with Flow("mapped restart") as flow:
        tens = times_ten.map([1, 2, 3])
        result = summary(tens)
    state = flow.run(
        restart_from={
            "times_ten[0]": Success(result=10),
            "times_ten[1]": Success(result=20),
            "summary": Success(result="[10, 20, ValueError('not ready')]"),
        }
    )
    assert state.result[result].result == "[10, 20, 30]"
    assert calls == ["summary"]


def test_a_bad_task_run_name_fails_its_task_not_the_run() -> None:
    @task(task_run_name="run-{nope}")
    def named() -> int:
        return 1

    with Flow("run names") as flow:
        bad = named()
        good = one()
    state = flow.run()
    assert "task_run_name 'run-{nope}' names 'nope'" in str(state.result[bad].message)
    assert state.result[good].result == 1


def test_stdout_keeps_what_a_stream_has_while_a_task_logs_its_prints() -> None:
    import sys
    import threading

    seen: dict[str, Any] = {}
    started, done = threading.Event(), threading.Event()

    @task(log_stdout=True)
    def chatty() -> None:
        started.set()
        done.wait(5)

    def look() -> None:
        started.wait(5)
        seen.update(encoding=sys.stdout.encoding, isatty=sys.stdout.isatty())
        done.set()

    watcher = threading.Thread(target=look)
    watcher.start()
    with Flow("stream") as flow:
        chatty()
    flow.run()
    watcher.join()
    assert seen["encoding"] == sys.stdout.encoding
    assert seen["isatty"] == sys.stdout.isatty()
