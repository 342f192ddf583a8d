"""Where moto (the AWS of the dev stack and the tests) answers differently from AWS in a way that
changes an outcome, made to answer as AWS does.

moto runs in this process (``ThreadedMotoServer``), so its backends can be corrected in place.
Each fix is small, applied once (``apply``), and kept honest by a contract test in
tests/devstack/test_moto_fixes.py that shows the AWS behaviour flowrelay relies on; the
differences that are not fixed are listed in docs/devstack.md.

- **RunTask without security groups** (awsvpc): AWS uses the VPC's default security group;
  moto 5.2.5 fails with an HTTP 500 (a KeyError), which flowrelay must read as "outcome
  unknown". The default group of the subnet's VPC is filled in.
- **The size of an updated item**: AWS limits the item as it is after the update (400 KB);
  moto counts the old value of each attribute being replaced into the new size, so an item of
  more than about 200 KB can never be updated. The replaced value is left out of the count.
- **Writes are atomic**: on AWS a conditional write (and a transaction) checks its condition
  and writes as one step; moto's server threads can interleave two of them between the check
  and the write, so two dispatchers could both "win" a launch claim, or a transaction overwrite
  what another just wrote. DynamoDB's writes are serialised.
- **A task's network interface on loopback** (awsvpc): on AWS each task's interface gets an
  address of its subnet, on which the task's servers listen and others reach them
  (dask-cloudprovider reads a scheduler's address with DescribeNetworkInterfaces and connects to
  ``tcp://<private ip>:8786``). moto 5.2.5 gives every task a random 10.x address, whatever the
  subnet, that nothing on this machine listens on and nothing here may connect to. Here the
  tasks run as processes of this machine, so each interface gets a loopback address of its own
  instead, 127.77.x.y (Linux routes all of 127.0.0.0/8 to ``lo``), which the stack's ECS
  executor binds the task's Dask servers to (``devstack/dask_tasks.py``). Not an AWS behaviour,
  the dev stack's stand-in for one: the address is not in the subnet's range.
"""

from __future__ import annotations

import functools
import itertools
import random
import threading
from collections.abc import Iterator
from typing import Any

_applied = False
_lock = threading.Lock()


def apply() -> None:
    """Correct moto's backends in this process (idempotent)."""
    global _applied
    with _lock:
        if _applied:
            return
        _default_security_group_for_tasks()
        _updated_item_size_counts_the_new_value_only()
        _dynamodb_writes_are_atomic()
        _task_interfaces_on_loopback()
        _applied = True


def _default_security_group_for_tasks() -> None:
    from moto.ec2.models import ec2_backends
    from moto.ecs import models

    original = models.Task.__init__

    @functools.wraps(original)
    def init(self: Any, cluster: Any, *args: Any, **kwargs: Any) -> None:
        network: dict[str, Any] = kwargs.get("networking_configuration") or {}
        vpc = network.get("awsvpcConfiguration")
        if isinstance(vpc, dict) and vpc.get("subnets") and not vpc.get("securityGroups"):
            backend = kwargs.get("backend") or args[3]
            ec2 = ec2_backends[backend.account_id][cluster.region_name]
            subnet = ec2.get_subnet(vpc["subnets"][0])
            group = ec2.get_default_security_group(subnet.vpc_id)
            if group is not None:
                kwargs["networking_configuration"] = {
                    **network,
                    "awsvpcConfiguration": {**vpc, "securityGroups": [group.id]},
                }
        original(self, cluster, *args, **kwargs)

    models.Task.__init__ = init  # type: ignore[method-assign]


def _updated_item_size_counts_the_new_value_only() -> None:
    from moto.dynamodb.models import dynamo_type

    original = dynamo_type.LimitedSizeDict.__setitem__

    def setitem(self: Any, key: str, value: Any) -> None:
        old = self.get(key) if key in self else None
        if old is None:
            original(self, key, value)
            return
        # Check the item as it will be: without the value being replaced.
        dict.__delitem__(self, key)
        try:
            original(self, key, value)
        except BaseException:
            dict.__setitem__(self, key, old)
            raise

    dynamo_type.LimitedSizeDict.__setitem__ = setitem  # type: ignore[method-assign]


def _dynamodb_writes_are_atomic() -> None:
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    for name in ("put_item", "update_item", "delete_item", "transact_write_items"):
        original = getattr(DynamoDBBackend, name)

        def serialised(*args: Any, __original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return __original(*args, **kwargs)

        setattr(DynamoDBBackend, name, functools.wraps(original)(serialised))


#: Task interfaces get 127.77.<a>.<b>, b from 1 to 254: 65,024 addresses before one comes again.
TASK_NETWORK = "127.77"
_HOSTS_PER_OCTET = 254
_TASK_ADDRESSES = 256 * _HOSTS_PER_OCTET


def task_addresses(start: int) -> Iterator[str]:
    """Loopback addresses for task interfaces, one after another from the ``start``-th, round.

    >>> addresses = task_addresses(253)
    >>> [next(addresses) for _ in range(3)]
    ['127.77.0.254', '127.77.1.1', '127.77.1.2']
    """
    for index in itertools.count(start):
        octet, host = divmod(index % _TASK_ADDRESSES, _HOSTS_PER_OCTET)
        yield f"{TASK_NETWORK}.{octet}.{host + 1}"


def _task_interfaces_on_loopback() -> None:
    from moto.ecs import models

    # A random start: two dev stacks on one machine (a test run beside `dev up`) would
    # otherwise hand out the same addresses, and their schedulers clash on port 8786.
    addresses = task_addresses(random.randrange(_TASK_ADDRESSES))
    lock = threading.Lock()

    def loopback_address(cidr: str | None = None, ipv6: bool = False) -> str:
        with lock:  # moto's server threads create tasks concurrently
            return next(addresses)

    # ECS's Task.__init__ is the only caller of this name in moto.ecs.models: it makes the
    # interface of an awsvpc task. EC2's own interfaces keep their subnet's addresses.
    models.random_private_ip = loopback_address  # type: ignore[attr-defined]
