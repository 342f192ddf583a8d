"""The flow-authoring API (docs/flows.md): functional and imperative building, parameters, mapping,
collections, retries, timeouts, failure propagation and reference tasks.

Everything here runs on the default LocalExecutor; test_executors.py runs flows on the others.
"""

from __future__ import annotations

import itertools
import threading
from datetime import timedelta
from typing import Any

import pytest

from flowrelay import Edge, Flow, Parameter, Task, task, unmapped
from flowrelay.core.registration import ParameterError
from flowrelay.sdk.states import Failed, Mapped, State, Success, TimedOut, TriggerFailed
from flowrelay.sdk.tasks import Collection


@task
def inc(x):
    return x + 1


@task
def double(x):
    return 2 * x


@task
def add(x, y=0):
    return x + y


@task
def divide(x, y):
    return x / y


@task
def total(xs):
    return sum(xs)


@task
def identity(value):
    return value


@task
def make_list(n):
    return list(range(n))


def states_of(state: State) -> dict[Task, State]:
    """The task states of a flow-run state (its ``result``)."""
    assert isinstance(state.result, dict)
    return state.result


# --- functional API -------------------------------------------------------------------------


def test_functional_chain_gives_each_tasks_result():
    with Flow("chain") as flow:
        one = inc(0)
        two = double(one)
        three = add(two, y=1)

    state = flow.run()

    assert state.is_successful()
    assert not state.is_failed()
    assert isinstance(state, Success)
    assert state.message == "All reference tasks succeeded."
    results = states_of(state)
    assert results[one].result == 1
    assert results[two].result == 2
    assert results[three].result == 3
    assert all(isinstance(results[t], Success) for t in (one, two, three))
    assert results[one].attempts == 1


def test_calling_a_task_adds_a_copy_with_a_unique_slug():
    with Flow("copies") as flow:
        first = inc(1)
        second = inc(first)

    assert first is not inc
    assert second is not first
    assert inc not in flow.tasks
    assert flow.tasks == {first, second}
    assert len(flow) == 2
    assert (flow.slug(first), flow.slug(second)) == ("inc", "inc-2")
    assert flow.get_tasks(name="inc-2") == [second]
    assert flow.upstream_tasks(second) == {first}
    assert flow.edges == [Edge(first, second, key="x")]
    state = flow.run()
    assert states_of(state)[second].result == 3


def test_keyword_arguments_defaults_and_task_args():
    with Flow("kwargs") as flow:
        defaulted = add(5)
        explicit = add(x=5, y=inc(1))
        renamed = add(1, 2, task_args={"name": "three"})

    assert flow.slug(renamed) == "three"
    assert renamed.name == "three"
    assert add.name == "add"
    results = states_of(flow.run())
    assert results[defaulted].result == 5
    assert results[explicit].result == 7
    assert results[renamed].result == 3


def test_a_shared_upstream_runs_once():
    calls: list[int] = []

    @task
    def source():
        calls.append(1)
        return 10

    with Flow("diamond") as flow:
        s = source()
        left = inc(s)
        right = double(s)
        both = add(left, right)

    state = flow.run()
    assert states_of(state)[both].result == 31
    assert calls == [1]


def test_task_subclass_with_run_method():
    class Multiply(Task):
        def __init__(self, factor: int, **kwargs: Any) -> None:
            self.factor = factor
            super().__init__(**kwargs)

        def run(self, x):
            return x * self.factor

    triple = Multiply(3, name="triple")
    with Flow("subclass") as flow:
        result = triple(inc(1))

    assert flow.slug(result) == "triple"
    assert states_of(flow.run())[result].result == 6


def test_task_decorator_with_settings_and_kwargs_function():
    @task(name="collect", tags=["etl"])
    def gather(**items):
        return dict(items)

    with Flow("kw") as flow:
        gathered = gather(a=1, b=inc(1))

    assert gather.name == "collect"
    assert gathered.tags == frozenset({"etl"})
    assert flow.get_tasks(tags=["etl"]) == [gathered]
    assert states_of(flow.run())[gathered].result == {"a": 1, "b": 2}


def test_failed_task_message_result_and_traceback():
    with Flow("div") as flow:
        quotient = divide(1, 0)

    state = flow.run()
    task_state = states_of(state)[quotient]
    assert isinstance(task_state, Failed)
    assert task_state.is_failed()
    assert not task_state.is_successful()
    assert task_state.name == "Failed"
    assert task_state.message == "ZeroDivisionError: division by zero"
    assert isinstance(task_state.result, ZeroDivisionError)
    assert task_state.traceback is not None
    assert "ZeroDivisionError" in task_state.traceback
    assert "Failed" in repr(task_state)


# --- errors at build time -------------------------------------------------------------------


def test_calling_a_task_outside_a_flow_is_a_clear_error():
    with pytest.raises(ValueError, match=r"Task 'inc'.*needs a flow.*with Flow"):
        inc(1)
    with pytest.raises(ValueError, match="needs a flow"):
        inc.map([1, 2])
    with pytest.raises(ValueError, match="needs a flow"):
        inc.set_upstream(double)


def test_missing_argument_at_bind_time():
    with Flow("missing"), pytest.raises(TypeError, match=r"Task 'divide'.*missing.*'y'"):
        divide(1)


def test_extra_arguments_at_bind_time():
    with Flow("extra") as flow:
        with pytest.raises(TypeError, match=r"Task 'inc'.*unexpected keyword argument 'z'"):
            inc(1, z=2)
        with pytest.raises(TypeError, match=r"Task 'inc'.*too many positional arguments"):
            inc(1, 2)
        with pytest.raises(TypeError, match=r"Task 'divide'.*unexpected keyword"):
            divide.map([1], [2], z=[3])
    assert len(flow) == 0


def test_star_args_functions_are_rejected():
    def spread(*values):
        return values

    with pytest.raises(ValueError, match=r"Task 'spread'.*\*values.*not supported"):
        task(spread)


def test_retries_need_a_retry_delay():
    with pytest.raises(ValueError, match=r"Task 'flaky'.*retry_delay.*max_retries > 0"):

        @task(max_retries=2)
        def flaky():
            return 1

    with pytest.raises(ValueError, match="max_retries must be an int >= 0"):
        task(max_retries=-1)(lambda: 1)


def test_invalid_timeout_and_tags():
    with pytest.raises(ValueError, match="timeout must be positive"):
        task(timeout=0)(lambda: 1)
    with pytest.raises(TypeError, match="timeout must be a timedelta or seconds"):
        task(timeout="soon")(lambda: 1)
    with pytest.raises(TypeError, match="tags must be a list"):
        task(tags="dask-resource:GPU=1")(lambda: 1)


@pytest.mark.parametrize(
    "tag", ["dask-resource:GPU", "dask-resource:GPU=lots", "dask-resource:=1", "dask-resource:"]
)
def test_bad_dask_resource_tag(tag):
    with pytest.raises(ValueError, match=r"is not of the form dask-resource:KEY=NUM"):
        task(name="gpu", tags=[tag])(lambda: 1)


def test_dask_resource_tags_are_parsed():
    gpu = task(tags=["dask-resource:GPU=1", "dask-resource:MEM=2.5", "other"])(lambda: 1)
    assert gpu.dask_resources == {"GPU": 1.0, "MEM": 2.5}
    assert task(tags=["gpu"])(lambda: 1).dask_resources == {}


def test_empty_flow_name_is_rejected():
    with pytest.raises(ValueError, match="non-empty name"):
        Flow("  ")


# --- imperative API -----------------------------------------------------------------------


def test_seed_002_imperative_example_runs(capsys):
    @task
    def get_value():
        return "Example!"

    @task
    def output_value(value):
        print(value)

    flow = Flow("Local Executor Remote Example")

    # set task dependencies using imperative API
    output_value.set_upstream(get_value, flow=flow)
    output_value.bind(value=get_value, flow=flow)

    assert flow.tasks == {get_value, output_value}
    assert set(flow.edges) == {
        Edge(get_value, output_value),
        Edge(get_value, output_value, key="value"),
    }
    state = flow.run()
    assert state.is_successful(), state.message
    assert states_of(state)[get_value].result == "Example!"
    assert states_of(state)[output_value].is_successful()
    assert capsys.readouterr().out == "Example!\n"


def test_imperative_calls_on_an_empty_flow_use_that_flow():
    # A Flow with no tasks has len() == 0; it must still be the flow that is used.
    flow = Flow("empty")
    assert len(flow) == 0
    with Flow("active") as active:
        inc.set_upstream(double, flow=flow)
    assert flow.tasks == {inc, double}
    assert len(active) == 0

    other = Flow("empty too")
    identity.bind(value=5, flow=other)
    assert states_of(other.run())[identity].result == 5


def test_add_task_and_add_edge():
    flow = Flow("imperative")
    first = inc.copy()
    second = double.copy()
    assert flow.add_task(first) is first
    flow.add_task(first)  # adding twice is harmless
    flow.add_constant(first, "x", 4)
    edge = flow.add_edge(first, second, key="x")

    assert edge == Edge(first, second, key="x", mapped=False)
    assert len(flow) == 2
    assert flow.root_tasks() == {first}
    assert flow.terminal_tasks() == {second}
    assert flow.edges_from(first) == [edge]
    assert flow.edges_to(second) == [edge]
    assert states_of(flow.run())[second].result == 10


def test_add_task_needs_a_task():
    with pytest.raises(TypeError, match="add_task needs a Task"):
        Flow("f").add_task(lambda: 1)  # type: ignore[arg-type]


def test_set_upstream_orders_tasks_without_passing_data():
    order: list[str] = []
    first = task(name="first")(lambda: order.append("first"))
    second = task(name="second")(lambda: order.append("second"))

    flow = Flow("order")
    flow.add_task(second)  # added first: without an edge it would run first
    flow.add_task(first)
    second.set_upstream(first, flow=flow)

    assert flow.edges == [Edge(first, second)]
    assert flow.run().is_successful()
    assert order == ["first", "second"]


def test_set_downstream_with_key():
    flow = Flow("downstream")
    source = task(name="source")(lambda: 20)
    result = inc.copy()
    assert source.set_downstream(result, flow=flow, key="x") is source
    assert states_of(flow.run())[result].result == 21


def test_set_upstream_with_key_and_mapped():
    flow = Flow("mapped edge")
    numbers = task(name="numbers")(lambda: [1, 2, 3])
    children = inc.copy()
    children.set_upstream(numbers, flow=flow, key="x", mapped=True)
    state = states_of(flow.run())[children]
    assert isinstance(state, Mapped)
    assert state.result == [2, 3, 4]


def test_bind_wires_the_task_itself():
    flow = Flow("bind")
    source = task(name="source")(lambda: 3)
    assert add.bind(source, y=4, flow=flow) is add
    assert flow.tasks == {source, add}
    assert states_of(flow.run())[add].result == 7


def test_bind_inside_an_active_flow():
    adder = add.copy()
    with Flow("bind") as flow:
        adder.bind(2, y=inc(1))
    assert states_of(flow.run())[adder].result == 4


def test_set_dependencies():
    order: list[str] = []

    @task
    def note(label):
        order.append(label)
        return label

    flow = Flow("deps")
    source = task(name="source")(lambda: 5)
    before, after = note.copy(), note.copy()
    combined = add.copy()
    flow.add_constant(before, "label", "before")
    flow.add_constant(after, "label", "after")
    flow.set_dependencies(
        combined,
        upstream_tasks=[before],
        downstream_tasks=[after],
        keyword_tasks={"x": source, "y": 10},
    )

    assert flow.upstream_tasks(combined) == {before, source}
    assert flow.downstream_tasks(combined) == {after}
    assert flow.constants[combined] == {"y": 10}
    state = flow.run()
    assert state.is_successful(), state.message
    assert states_of(state)[combined].result == 15
    assert order == ["before", "after"]


def test_set_dependencies_rejects_non_tasks():
    with pytest.raises(TypeError, match="is not a task"):
        Flow("f").set_dependencies(inc.copy(), upstream_tasks=[42])


def test_flow_constructor_with_tasks_and_edges():
    source = task(name="source")(lambda: 1)
    child = inc.copy()
    flow = Flow("built", tasks=[source, child], edges=[Edge(source, child, key="x")])
    assert states_of(flow.run())[child].result == 2


@pytest.mark.parametrize("length", [1, 2, 3])
def test_an_edge_that_makes_a_cycle_is_rejected(length):
    flow = Flow("cycle")
    chain = [inc.copy() for _ in range(length)]
    flow.add_task(chain[0])
    for upstream, downstream in itertools.pairwise(chain):
        flow.add_edge(upstream, downstream)
    edges_before = flow.edges

    with pytest.raises(ValueError, match="cycle"):
        flow.add_edge(chain[-1], chain[0])

    assert flow.edges == edges_before
    assert flow.sorted_tasks() == chain


def test_cycles_via_set_upstream_and_functional_api():
    with Flow("cycle") as flow:
        a = inc(1)
        b = double(a)
        with pytest.raises(ValueError, match="cycle"):
            a.set_upstream(b)
        with pytest.raises(ValueError, match="cycle"):
            b.set_downstream(a)
    assert flow.run().is_successful()


def test_duplicate_input_key_via_add_edge():
    flow = Flow("dup")
    one, two, target = identity.copy(), identity.copy(), inc.copy()
    flow.add_edge(one, target, key="x")
    with pytest.raises(ValueError, match=r"task 'inc' already has an input 'x'"):
        flow.add_edge(two, target, key="x")
    # ordering-only edges have no key and never clash
    flow.add_edge(two, target)


def test_duplicate_input_key_via_bind():
    flow = Flow("dup")
    target = identity.copy()
    target.bind(value=inc.copy(), flow=flow)
    with pytest.raises(ValueError, match="already has an input 'value'"):
        target.bind(value=3, flow=flow)

    other = identity.copy()
    other.bind(value=1, flow=flow)
    with pytest.raises(ValueError, match="already has an input 'value'"):
        other.bind(value=2, flow=flow)
    with pytest.raises(ValueError, match="already has an input 'value'"):
        other.set_upstream(inc.copy(), flow=flow, key="value")
    assert flow.constants[other] == {"value": 1}


def test_duplicate_parameter_name():
    with Flow("params") as flow:
        x = Parameter("x")
        inc(x)
        inc(x)  # the same parameter twice is fine
        with pytest.raises(ValueError, match="already has a parameter named 'x'"):
            inc(Parameter("x", default=2))
    assert flow.parameters() == [x]


# --- parameters -----------------------------------------------------------------------------


def test_parameter_default_and_given_values():
    with Flow("params") as flow:
        x = Parameter("x", default=2)
        doubled = double(x)

    assert not x.required
    assert states_of(flow.run())[doubled].result == 4
    assert states_of(flow.run(parameters={"x": 5}))[doubled].result == 10
    assert states_of(flow.run(x=7))[doubled].result == 14
    assert states_of(flow.run())[x].result == 2
    assert states_of(flow.run(x=None))[x].result is None


def test_parameter_with_default_none_is_optional():
    with Flow("params") as flow:
        x = Parameter("x", default=None)
        result = identity(x)
    assert not x.required
    assert states_of(flow.run())[result].result is None


def test_required_parameter():
    with Flow("params") as flow:
        x = Parameter("x")
        doubled = double(x)

    assert x.required
    with pytest.raises(ParameterError, match="required parameter 'x'"):
        flow.run()
    assert states_of(flow.run(x=3))[doubled].result == 6


def test_required_parameter_with_a_default():
    with Flow("params") as flow:
        x = Parameter("x", default=1, required=True)
        doubled = double(x)

    assert x.required
    assert x.default == 1
    with pytest.raises(ParameterError, match="'x'"):
        flow.run()
    assert states_of(flow.run(parameters={"x": 4}))[doubled].result == 8


def test_unexpected_parameters_are_named():
    with Flow("params") as flow:
        inc(Parameter("x", default=1))

    with pytest.raises(ParameterError, match=r"no parameter 'y'.*parameters are: x"):
        flow.run(parameters={"y": 1})
    with pytest.raises(ParameterError, match="'z'"):
        flow.run(z=1)
    assert issubclass(ParameterError, ValueError)


def test_unexpected_parameter_on_a_flow_without_parameters():
    with Flow("none") as flow:
        inc(1)
    with pytest.raises(ParameterError, match=r"no parameter 'x'.*none"):
        flow.run(x=1)


def test_parameter_errors_are_raised_before_any_task_runs():
    calls: list[int] = []
    with Flow("params") as flow:
        task(name="side_effect")(lambda: calls.append(1))()
        inc(Parameter("x"))
    with pytest.raises(ParameterError):
        flow.run()
    assert calls == []


# --- mapping --------------------------------------------------------------------------------


def test_map_with_unmapped():
    with Flow("map") as flow:
        added = add.map([1, 2, 3], unmapped(10))
        added_to_task = add.map(x=[1, 2], y=unmapped(inc(9)))

    results = states_of(flow.run())
    state = results[added]
    assert isinstance(state, Mapped)
    assert state.is_successful()
    assert state.is_mapped()
    assert state.result == [11, 12, 13]
    assert state.message == "3 mapped runs succeeded"
    assert state.map_states is not None
    assert [child.result for child in state.map_states] == [11, 12, 13]
    assert all(isinstance(child, Success) for child in state.map_states)
    assert results[added_to_task].result == [11, 12]


def test_map_over_constant_sequences():
    with Flow("map") as flow:
        from_list = double.map([1, 2, 3])
        from_tuple = double.map((4, 5))
        from_range = double.map(range(3))
        from_string = identity.map("ab")

    results = states_of(flow.run())
    assert results[from_list].result == [2, 4, 6]
    assert results[from_tuple].result == [8, 10]
    assert results[from_range].result == [0, 2, 4]
    assert results[from_string].result == ["a", "b"]


def test_map_over_a_list_of_tasks():
    with Flow("map") as flow:
        doubled = double.map([inc(0), inc(1), 5])
    assert states_of(flow.run())[doubled].result == [2, 4, 10]


def test_map_over_a_parameter():
    with Flow("map") as flow:
        numbers = Parameter("numbers", default=[1, 2])
        incremented = inc.map(numbers)

    assert states_of(flow.run())[incremented].result == [2, 3]
    assert states_of(flow.run(numbers=[10, 20, 30]))[incremented].result == [11, 21, 31]
    assert states_of(flow.run(numbers=[]))[incremented].result == []


def test_map_over_an_upstream_result():
    with Flow("map") as flow:
        numbers = make_list(4)
        incremented = inc.map(numbers)
        summed = total(incremented)

    results = states_of(flow.run())
    assert results[incremented].result == [1, 2, 3, 4]
    assert results[summed].result == 10


def test_map_over_a_mapped_task_is_child_wise():
    with Flow("map") as flow:
        incremented = inc.map([1, 2, 3])
        doubled = double.map(incremented)
        offset = add.map(doubled, [100, 200, 300])

    results = states_of(flow.run())
    assert results[doubled].result == [4, 6, 8]
    assert results[offset].result == [104, 206, 308]
    children = results[offset].map_states
    assert children is not None
    assert [child.result for child in children] == [104, 206, 308]


def test_a_failed_child_only_fails_the_matching_downstream_child():
    ran: list[int] = []

    @task
    def check(x):
        if x == 3:
            raise ValueError("three is not allowed")
        return x

    @task
    def record(x):
        ran.append(x)
        return x * 10

    with Flow("map") as flow:
        checked = check.map([1, 2, 3, 4])
        recorded = record.map(checked)
        summed = total(recorded)

    state = flow.run()
    results = states_of(state)

    checked_state = results[checked]
    assert isinstance(checked_state, Failed)
    assert checked_state.map_states is not None
    assert [type(child) for child in checked_state.map_states] == [
        Success,
        Success,
        Failed,
        Success,
    ]
    assert checked_state.map_states[2].message == "ValueError: three is not allowed"
    assert checked_state.message == (
        "1 of 4 mapped runs did not succeed; first: check[2]: ValueError: three is not allowed"
    )
    assert checked_state.result[:2] == [1, 2]
    assert checked_state.result[3] == 4
    assert isinstance(checked_state.result[2], ValueError)  # as in the seeds' engine

    recorded_state = results[recorded]
    assert isinstance(recorded_state, Failed)
    assert not isinstance(recorded_state, TriggerFailed)
    assert recorded_state.map_states is not None
    children = recorded_state.map_states
    assert [type(child) for child in children] == [Success, Success, TriggerFailed, Success]
    assert children[2].message == "Did not run: upstream task 'check[2]' did not succeed"
    assert "record[2]" in (recorded_state.message or "")
    assert recorded_state.result == [10, 20, None, 40]
    assert sorted(ran) == [1, 2, 4]

    assert isinstance(results[summed], TriggerFailed)
    assert results[summed].message == "Did not run: upstream task 'record' did not succeed"

    assert state.is_failed()
    # The failure started in one child of 'check'; 'record' only did not run for that child.
    assert state.message == (
        "Task 'check' failed: 1 of 4 mapped runs did not succeed; "
        "first: check[2]: ValueError: three is not allowed"
    )


def test_map_over_an_empty_list():
    ran: list[int] = []

    @task
    def record(x):
        ran.append(x)
        return x

    with Flow("map") as flow:
        nothing = record.map([])
        still_nothing = double.map(nothing)
        summed = total(still_nothing)

    state = flow.run()
    results = states_of(state)
    assert state.is_successful()
    assert isinstance(results[nothing], Mapped)
    assert results[nothing].result == []
    assert results[nothing].map_states == []
    assert results[still_nothing].result == []
    assert results[summed].result == 0
    assert ran == []


def test_mapped_inputs_of_different_lengths_fail_clearly():
    with Flow("map") as flow:
        added = add.map([1, 2], [1, 2, 3])
        after = double(added)

    state = flow.run()
    results = states_of(state)
    assert isinstance(results[added], Failed)
    message = results[added].message or ""
    assert "Cannot map 'add'" in message
    assert "differ in length" in message
    assert "has 2" in message
    assert "has 3" in message
    assert isinstance(results[after], TriggerFailed)
    assert state.message == f"Task 'add' failed: {message}"


def test_mapped_upstream_and_constant_of_different_lengths_fail():
    with Flow("map") as flow:
        added = add.map(make_list(3), [1, 2])
    message = states_of(flow.run())[added].message or ""
    assert "make_list has 3" in message
    assert "'y' has 2" in message


def test_mapping_over_a_non_iterable_constant_fails():
    with Flow("map") as flow:
        mapped = inc.map(5)
    state = states_of(flow.run())[mapped]
    assert isinstance(state, Failed)
    assert state.message == "Cannot map 'inc' over input 'x': int is not iterable"


def test_mapping_over_a_non_iterable_upstream_result_fails():
    with Flow("map") as flow:
        number = identity(7)
        mapped = inc.map(number)
    state = states_of(flow.run())[mapped]
    assert isinstance(state, Failed)
    assert state.message == (
        "Cannot map 'inc' over input 'x': upstream 'identity' returned int, which is not iterable"
    )


def test_mapping_over_a_failed_upstream_is_trigger_failed():
    with Flow("map") as flow:
        broken = divide(1, 0)
        mapped = inc.map(broken)
    state = states_of(flow.run())[mapped]
    assert isinstance(state, TriggerFailed)
    assert state.message == "Did not run: upstream task 'divide' did not succeed"


def test_a_reduce_gets_the_list_of_child_results():
    received: list[Any] = []

    @task
    def reduce(values):
        received.append(values)
        return max(values)

    with Flow("reduce") as flow:
        doubled = double.map(inc.map([3, 1, 2]))
        biggest = reduce(doubled)

    assert states_of(flow.run())[biggest].result == 8
    assert received == [[8, 4, 6]]
    assert type(received[0]) is list


def test_mapped_children_retry_independently():
    attempts: dict[int, int] = {}

    @task(max_retries=1, retry_delay=0)
    def flaky(x):
        attempts[x] = attempts.get(x, 0) + 1
        if x == 2 and attempts[x] == 1:
            raise RuntimeError("first try")
        return x

    with Flow("map") as flow:
        mapped = flaky.map([1, 2, 3])

    state = states_of(flow.run())[mapped]
    assert state.result == [1, 2, 3]
    assert state.map_states is not None
    assert [child.attempts for child in state.map_states] == [1, 2, 1]
    assert attempts == {1: 1, 2: 2, 3: 1}


# --- collections and ordering-only upstreams -----------------------------------------------


def test_list_of_tasks_as_an_argument():
    with Flow("collections") as flow:
        summed = total([inc(1), inc(2), 10])

    collections = [t for t in flow.tasks if isinstance(t, Collection)]
    assert len(collections) == 1
    assert flow.downstream_tasks(collections[0]) == {summed}
    assert states_of(flow.run())[summed].result == 15


def test_dict_tuple_set_and_nested_collections():
    with Flow("collections") as flow:
        as_dict = identity({"a": inc(1), "b": 5})
        as_tuple = identity((inc(1), "x"))
        as_set = identity({inc(1), 7})
        nested = identity([[inc(1)], {"k": inc(2)}, 3])

    results = states_of(flow.run())
    assert results[as_dict].result == {"a": 2, "b": 5}
    assert results[as_tuple].result == (2, "x")
    assert results[as_set].result == {2, 7}
    assert results[nested].result == [[2], {"k": 3}, 3]


def test_collections_of_constants_stay_constants():
    with Flow("collections") as flow:
        summed = total([1, 2, 3])
    assert not any(isinstance(t, Collection) for t in flow.tasks)
    assert flow.constants[summed] == {"xs": [1, 2, 3]}
    assert states_of(flow.run())[summed].result == 6


def test_a_failed_task_in_a_collection_stops_the_consumer():
    with Flow("collections") as flow:
        summed = total([inc(1), divide(1, 0)])
    state = flow.run()
    assert isinstance(states_of(state)[summed], TriggerFailed)
    assert state.message == "Task 'divide' failed: ZeroDivisionError: division by zero"


def test_upstream_tasks_orders_without_passing_data():
    order: list[str] = []

    @task
    def note(label):
        order.append(label)
        return label

    flow = Flow("order")
    second, first = note.copy(), note.copy()
    flow.add_task(second)  # added first: without the edge it would run first
    second.bind("second", upstream_tasks=[first], flow=flow)
    first.bind("first", flow=flow)

    assert flow.edges_to(second) == [Edge(first, second)]
    assert flow.run().is_successful()
    assert order == ["first", "second"]


def test_upstream_tasks_in_the_functional_api():
    ran: list[str] = []

    @task
    def note(label):
        ran.append(label)
        return label

    with Flow("order") as flow:
        ok = note("ok")
        after_ok = note("after ok", upstream_tasks=[ok])
        broken = divide(1, 0)
        after_broken = note("after broken", upstream_tasks=[broken, ok])

    results = states_of(flow.run())
    assert flow.edges_to(after_ok) == [Edge(ok, after_ok)]  # key None: ordering only
    assert results[after_ok].result == "after ok"
    assert isinstance(results[after_broken], TriggerFailed)
    assert results[after_broken].message == "Did not run: upstream task 'divide' did not succeed"
    assert ran == ["ok", "after ok"]


# --- retries and timeouts -------------------------------------------------------------------


@pytest.mark.parametrize("delay", [0, timedelta(0), 0.0])
def test_a_task_that_fails_twice_then_succeeds(delay):
    calls: list[int] = []

    @task(max_retries=2, retry_delay=delay)
    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError(f"attempt {len(calls)}")
        return "done"

    with Flow("retry") as flow:
        result = flaky()

    state = flow.run()
    assert state.is_successful()
    task_state = states_of(state)[result]
    assert task_state.result == "done"
    assert task_state.attempts == 3
    assert len(calls) == 3


def test_exhausted_retries_fail_with_the_attempt_count():
    calls: list[int] = []

    @task(max_retries=2, retry_delay=timedelta(0))
    def always_fails():
        calls.append(1)
        raise ConnectionError("no route to host")

    with Flow("retry") as flow:
        result = always_fails()
        after = inc(result)

    state = flow.run()
    task_state = states_of(state)[result]
    assert isinstance(task_state, Failed)
    assert task_state.attempts == 3
    assert task_state.message == "ConnectionError: no route to host (gave up after 3 attempts)"
    assert len(calls) == 3
    assert isinstance(states_of(state)[after], TriggerFailed)
    assert state.message == f"Task 'always_fails' failed: {task_state.message}"


def test_no_retries_means_one_attempt():
    calls: list[int] = []

    @task
    def fails():
        calls.append(1)
        raise RuntimeError("boom")

    with Flow("retry") as flow:
        result = fails()
    task_state = states_of(flow.run())[result]
    assert task_state.attempts == 1
    assert task_state.message == "RuntimeError: boom"
    assert calls == [1]


def test_a_task_running_past_its_timeout_is_timed_out():
    release = threading.Event()

    @task(timeout=0.2)
    def stuck():
        release.wait(10)
        return "too late"

    with Flow("timeout") as flow:
        result = stuck()
        after = inc(result)

    try:
        state = flow.run()
    finally:
        release.set()  # let the abandoned attempt finish
    task_state = states_of(state)[result]
    assert isinstance(task_state, TimedOut)
    assert task_state.is_failed()
    assert task_state.message == "Task timed out after 0.2s"
    assert isinstance(states_of(state)[after], TriggerFailed)
    assert state.message == "Task 'stuck' failed: Task timed out after 0.2s"


def test_a_task_within_its_timeout_succeeds_and_keeps_errors():
    @task(timeout=timedelta(seconds=30))
    def quick(x):
        return x * 3

    @task(timeout=30)
    def raises():
        raise KeyError("missing")

    with Flow("timeout") as flow:
        fast = quick(2)
        broken = raises()

    results = states_of(flow.run())
    assert results[fast].result == 6
    assert isinstance(results[broken], Failed)
    assert not isinstance(results[broken], TimedOut)
    assert results[broken].message == "KeyError: 'missing'"


def test_a_timed_out_attempt_is_retried():
    release = threading.Event()
    calls: list[int] = []

    @task(timeout=0.2, max_retries=1, retry_delay=0)
    def slow_then_fast():
        calls.append(1)
        if len(calls) == 1:
            release.wait(10)
        return len(calls)

    with Flow("timeout") as flow:
        result = slow_then_fast()

    try:
        state = flow.run()
    finally:
        release.set()
    task_state = states_of(state)[result]
    assert isinstance(task_state, Success)
    assert task_state.result == 2
    assert task_state.attempts == 2


# --- failure propagation --------------------------------------------------------------------


def test_downstream_of_a_failure_does_not_run():
    ran: list[Any] = []

    @task
    def record(value):
        ran.append(value)
        return value

    with Flow("failure") as flow:
        quotient = divide(1, 0)
        recorded = record(quotient)
        further = record(recorded)

    state = flow.run()
    results = states_of(state)
    assert ran == []
    assert isinstance(results[quotient], Failed)
    assert isinstance(results[recorded], TriggerFailed)
    assert results[recorded].message == "Did not run: upstream task 'divide' did not succeed"
    assert isinstance(results[further], TriggerFailed)
    assert results[further].message == "Did not run: upstream task 'record' did not succeed"
    assert state.is_failed()
    assert isinstance(state, Failed)
    assert state.message == "Task 'divide' failed: ZeroDivisionError: division by zero"


def test_independent_branches_still_run_and_every_cause_is_named():
    ran: list[str] = []

    @task
    def record(label, value=None):
        ran.append(label)
        return label

    with Flow("failure") as flow:
        ok = record("independent")
        first_failure = divide(1, 0)
        second_failure = add("text", 1)
        record("never", value=[first_failure, second_failure])

    state = flow.run()
    assert ran == ["independent"]
    assert states_of(state)[ok].is_successful()
    assert (state.message or "").startswith(
        "Task 'divide' failed: ZeroDivisionError: division by zero (also failed: 'add')"
    )


def test_trigger_failed_names_every_failed_upstream():
    with Flow("failure") as flow:
        one = divide(1, 0)
        two = divide(2, 0)
        both = add(one, two)

    message = states_of(flow.run())[both].message
    assert message == "Did not run: upstream tasks 'divide', 'divide-2' did not succeed"


# --- reference tasks ------------------------------------------------------------------------


def test_reference_tasks_decide_the_flow_state():
    with Flow("reference") as flow:
        ok = inc(1)
        broken = divide(1, 0)

    assert flow.reference_tasks() == flow.terminal_tasks() == {ok, broken}
    assert flow.run().is_failed()

    flow.set_reference_tasks([ok])
    assert flow.reference_tasks() == {ok}
    state = flow.run()
    assert state.is_successful()
    assert isinstance(states_of(state)[broken], Failed)


def test_a_non_terminal_reference_task():
    with Flow("reference") as flow:
        ok = inc(1)
        broken = divide(ok, 0)

    flow.set_reference_tasks([ok])
    assert flow.run().is_successful()
    flow.set_reference_tasks([broken])
    assert flow.run().message == "Task 'divide' failed: ZeroDivisionError: division by zero"


def test_a_trigger_failed_reference_task_names_the_cause():
    with Flow("reference") as flow:
        broken = divide(1, 0)
        after = inc(broken)
        ok = inc(1)

    flow.set_reference_tasks([after, ok])
    state = flow.run()
    assert state.is_failed()
    assert state.message == "Task 'divide' failed: ZeroDivisionError: division by zero"


def test_reference_tasks_in_the_constructor():
    ok = task(name="ok")(lambda: 1)
    broken = task(name="broken")(lambda: 1 / 0)
    flow = Flow("reference", tasks=[ok, broken], reference_tasks=[ok])
    assert flow.reference_tasks() == {ok}
    assert flow.run().is_successful()


def test_reference_tasks_must_be_in_the_flow():
    flow = Flow("reference")
    flow.add_task(inc.copy())
    with pytest.raises(ValueError, match=r"reference tasks not in the flow: \['double'\]"):
        flow.set_reference_tasks([double])
