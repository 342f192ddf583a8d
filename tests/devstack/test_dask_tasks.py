"""dask-cloudprovider's task commands as the dev stack runs them (flowrelay.devstack.dask_tasks):
the ``dask`` CLI of this Python, bound to the task's loopback address; anything else untouched."""

from __future__ import annotations

import subprocess
import sys

import pytest

from flowrelay.devstack.dask_tasks import is_dask_command, local_dask_command, task_address

HOST = "127.77.3.4"


def test_the_scheduler_runs_as_dask_scheduler_on_the_tasks_address() -> None:
    command = ["dask-scheduler", "--idle-timeout", "5 minutes"]

    local = local_dask_command(command, HOST)

    assert local == [
        sys.executable,
        "-m",
        "dask",
        "scheduler",
        "--idle-timeout",
        "5 minutes",
        "--host",
        HOST,
        "--dashboard-address",
        f"{HOST}:8787",
    ]


def test_the_worker_keeps_its_arguments_and_binds_the_tasks_address() -> None:
    command = [
        "/usr/local/bin/dask-worker",
        "tcp://127.77.3.3:8786",
        "--name",
        "0",
        "--nthreads",
        "1",
        "--host",
        "0.0.0.0",  # what an image might say; here the task's own address wins (last)
    ]

    local = local_dask_command(command, HOST)

    assert local[:4] == [sys.executable, "-m", "dask", "worker"]
    assert local[4:10] == command[1:7]
    assert local[-4:] == ["--host", HOST, "--dashboard-address", f"{HOST}:0"]


def test_the_binding_goes_before_the_preloads_arguments() -> None:
    local = local_dask_command(["dask-scheduler", "--preload", "m", "--", "--m-flag"], HOST)

    assert local[4:] == [
        *["--preload", "m"],
        *["--host", HOST, "--dashboard-address", f"{HOST}:8787"],
        *["--", "--m-flag"],
    ]


def test_the_mapped_commands_exist_in_this_distributed() -> None:
    """The subcommands the mapping names, and the options it adds, as this venv's dask has
    them: a distributed without them would fail every Dask task at start."""
    for program in ("dask-scheduler", "dask-worker"):
        local = local_dask_command([program], HOST)
        shown = subprocess.run(
            [*local[:4], "--help"], capture_output=True, text=True, timeout=60, check=True
        ).stdout
        assert "--host" in shown
        assert "--dashboard-address" in shown


@pytest.mark.parametrize(
    ("command", "host", "says"),
    [
        (["dask-cuda-worker", "tcp://127.0.0.1:8786"], HOST, "needs a GPU"),
        (["dask-scheduler"], None, "has no address"),
        (["dask-scheduler"], "10.1.2.3", "has 10.1.2.3"),
        (["dask-worker", "tcp://10.0.0.5:8786"], HOST, "connects outside loopback"),
        (["dask-worker", "10.0.0.5:8786"], HOST, "connects outside loopback"),
    ],
)
def test_what_cannot_run_here_is_refused_saying_why(
    command: list[str], host: str | None, says: str
) -> None:
    with pytest.raises(ValueError, match=says):
        local_dask_command(command, host)


def test_other_commands_are_not_dask_commands() -> None:
    assert not is_dask_command(["flowrelay-runner"])
    assert not is_dask_command(["dask", "worker", "tcp://127.0.0.1:8786"])
    assert not is_dask_command([])
    assert is_dask_command(["dask-scheduler"])
    assert is_dask_command(["dask-cuda-worker"])


def test_the_tasks_address_is_its_interfaces() -> None:
    task = {
        "attachments": [
            {"type": "Other", "details": [{"name": "privateIPv4Address", "value": "x"}]},
            {
                "type": "ElasticNetworkInterface",
                "details": [
                    {"name": "networkInterfaceId", "value": "eni-1"},
                    {"name": "privateIPv4Address", "value": HOST},
                ],
            },
        ]
    }

    assert task_address(task) == HOST
    assert task_address({"attachments": []}) is None
