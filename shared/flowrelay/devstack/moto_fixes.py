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
"""

from __future__ import annotations

import functools
import threading
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
