"""Dask's scheduler and worker commands as the dev stack runs them (flowrelay.devstack.dask_tasks),
dask-cloudprovider's ECS tasks' and the Dask operator's pods' alike: the ``dask`` CLI of this
Python, bound to the task's or pod's loopback address; anything else untouched."""

from __future__ import annotations

import subprocess
import sys

import pytest

from flowrelay.devstack.dask_tasks import local_dask_command, task_address

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
        "0.0.0.0",  # what an image might say; here the task's own address instead
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
        for option in ("--host", "--dashboard-address", "--no-dashboard"):
            assert option in shown
        if program == "dask-worker":
            assert "--listen-address" in shown


@pytest.mark.parametrize(
    ("command", "host", "says"),
    [
        (["dask-cuda-worker", "tcp://127.0.0.1:8786"], HOST, "needs a GPU"),
        (["dask-scheduler"], None, "has no address"),
        (["dask-scheduler"], "10.1.2.3", "has 10.1.2.3"),
        (["dask-worker", "tcp://10.0.0.5:8786"], HOST, "connects outside loopback"),
        (["dask-worker", "10.0.0.5:8786"], HOST, "connects outside loopback"),
        # Past options and their values, as the worker's CLI reads them.
        (["dask", "worker", "--nthreads", "1", "--dashboard", "10.0.0.5:8786"], HOST, "outside"),
        (["dask", "cuda", "worker", "tcp://127.0.0.1:8786"], HOST, "needs a GPU"),
        (["dask", "scheduler"], "127.88.0.1:8786", "has 127.88.0.1:8786"),
    ],
)
def test_what_cannot_run_here_is_refused_saying_why(
    command: list[str], host: str | None, says: str
) -> None:
    with pytest.raises(ValueError, match=says):
        local_dask_command(command, host)


@pytest.mark.parametrize(
    "command",
    [
        ["flowrelay-runner", "--host", "0.0.0.0"],
        ["python", "-c", "print(1)"],
        ["dask", "--version"],
        ["dask", "worker-like"],
        [],
    ],
)
def test_other_commands_run_as_they_are(command: list[str]) -> None:
    assert local_dask_command(command, None) == command


# --- the Dask operator's pods (dask-kubernetes's pod specs) --------------------------------------


def test_the_operators_scheduler_listens_on_the_pod_and_keeps_its_probe_port() -> None:
    local = local_dask_command(["dask-scheduler", "--host", "0.0.0.0"], HOST)

    # In place of every interface, the pod's own address; the dashboard (its readiness probe's
    # port) on it too.
    assert local[3:] == ["scheduler", "--host", HOST, "--dashboard-address", f"{HOST}:8787"]


def test_the_operators_worker_keeps_its_name_and_its_dashboard_port() -> None:
    command = [
        *["dask", "worker", "--name", "c-default-worker-0a1b2c3d4e", "--dashboard"],
        *["--dashboard-address", "8788"],
    ]

    local = local_dask_command(command, HOST)

    # The name is an option's value, not the scheduler (which comes from the environment).
    assert local[3:] == [
        *["worker", "--name", "c-default-worker-0a1b2c3d4e", "--dashboard"],
        *["--dashboard-address", f"{HOST}:8788", "--host", HOST],
    ]


def test_given_addresses_move_to_the_pod_keeping_scheme_and_port() -> None:
    local = local_dask_command(
        ["dask-worker", "tcp://127.88.0.1:8786", "--host=10.0.0.9", "--dashboard-address=[::]:9"],
        HOST,
    )

    assert local[4:] == ["tcp://127.88.0.1:8786", f"--host={HOST}", f"--dashboard-address={HOST}:9"]


def test_a_workers_listen_address_is_bound_instead_of_its_host() -> None:
    """distributed refuses ``--listen-address`` with ``--host``: no ``--host`` is added."""
    local = local_dask_command(
        ["dask-worker", "--listen-address", "tcp://0.0.0.0:9000", "--no-dashboard"], HOST
    )

    # And without a dashboard, none is bound.
    assert local[4:] == ["--listen-address", f"tcp://{HOST}:9000", "--no-dashboard"]


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
