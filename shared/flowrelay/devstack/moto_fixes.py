"""Where moto (the AWS of the dev stack and the tests) answers differently from AWS in a way that
changes an outcome, made to answer as AWS does.

moto runs in the process that applies these (the dev stack's moto process, ``moto_process``; the
tests' and the benchmarks' ``ThreadedMotoServer``), so its backends can be corrected in place.
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
  what another just wrote. DynamoDB's writes of an item are serialised: each write holds the
  lock of its item (one of ``WRITE_LOCKS``, by its table and key), a transaction those of all
  its items, taken in one order. Writes of different items go side by side, as on AWS: one
  lock for every write made each wait for the writer before it to get the interpreter lock
  back, and a burst's writes queued for hundreds of milliseconds.
- **A task's network interface on loopback** (awsvpc): on AWS each task's interface gets an
  address of its subnet, on which the task's servers listen and others reach them
  (dask-cloudprovider reads a scheduler's address with DescribeNetworkInterfaces and connects to
  ``tcp://<private ip>:8786``). moto 5.2.5 gives every task a random 10.x address, whatever the
  subnet, that nothing on this machine listens on and nothing here may connect to. Here the
  tasks run as processes of this machine, so each interface gets a loopback address of its own
  instead, 127.77.x.y (Linux routes all of 127.0.0.0/8 to ``lo``), which the stack's ECS
  executor binds the task's Dask servers to (``devstack/dask_tasks.py``). Not an AWS behaviour,
  the dev stack's stand-in for one: the address is not in the subnet's range.

Where moto does work that grows with what it holds, or that it need not repeat, which made the
dev stack slow down under a burst and as its table grew, it is made to do less, with the same
answers (each also kept honest by a test in tests/devstack/test_moto_fixes.py):

- **A transaction copies what it touches**: moto copied every table a TransactWriteItems names
  (each item of it) before writing, to roll back on failure; the items the transaction writes
  are copied instead, and put back on failure.
- **An event's input paths are parsed once**: moto parsed the eight JSONPath expressions of an
  event target's input (jsonpath-ng, a parser generator) for every target of every event put;
  each expression is parsed once.
- **A message's retention is read from its queue**: moto worked out all of a queue's attributes,
  counting its messages three times, to read its retention period, for every message received.
- **A request's backend is looked up once per host**: moto listed its own package folder and
  matched hundreds of URL patterns for every request, under a lock every request takes.
- **A service's backend is found without a lock**: moto took one lock shared by every service
  and request each time code reached a backend (several times a request), to create the
  account's backend the first time. Under a burst its threads queued on it, each waiting for
  the holder to get the interpreter lock back: requests of 5 ms took hundreds. Only the first
  time takes the lock now.
- **A query reads its partition**: moto answered every Query by sorting every item of the
  table (comparing key values through their DynamoDB types), then keeping those of the asked
  partition: a run's history, a page of a flow's runs, each took a second and a half once the
  table held 10,000 runs. A query of the table reads the one partition it names; a query of an
  index goes through the items unsorted and sorts only those it keeps, by their key values read
  once (the same order: key attributes have one type each).
- **Items are answered as JSON**: moto writes every DynamoDB answer by walking the operation's
  output shape, value by value, through a chain of attribute-name lookups: most of its time
  under a burst. The answers that carry items (``ITEM_OPERATIONS``) already are their JSON but
  for binary values, which go in base64 as the shape says: such an answer is written with
  ``json.dumps`` (``item_answer``); one holding anything else goes the shape's way.
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import functools
import itertools
import json
import random
import threading
from collections.abc import Iterator
from typing import Any

_applied = False
_lock = threading.Lock()

#: Item locks of DynamoDB's writes (``_dynamodb_writes_are_atomic``): an item's is picked by its
#: table and key, so two writes of one item always take the same one.
WRITE_LOCKS = 512

#: DynamoDB operations whose answers are items, and written as JSON when they can be
#: (``item_answer``).
ITEM_OPERATIONS = frozenset(
    {
        "BatchGetItem",
        "BatchWriteItem",
        "DeleteItem",
        "GetItem",
        "PutItem",
        "Query",
        "Scan",
        "TransactGetItems",
        "TransactWriteItems",
        "UpdateItem",
    }
)


def apply() -> None:
    """Correct moto's backends in this process (idempotent)."""
    global _applied
    with _lock:
        if _applied:
            return
        _default_security_group_for_tasks()
        _updated_item_size_counts_the_new_value_only()
        _transactions_copy_what_they_touch()
        _dynamodb_writes_are_atomic()
        _task_interfaces_on_loopback()
        _event_input_paths_parsed_once()
        _retention_read_from_the_queue()
        _backend_looked_up_once_per_host()
        _account_backends_found_without_a_lock()
        _items_answered_as_json()
        _queries_read_their_partition()
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
    """Each write of DynamoDB holds the locks of the items it writes (module docstring)."""
    import inspect
    from decimal import Decimal, InvalidOperation

    from moto.dynamodb.models import DynamoDBBackend

    locks = [threading.RLock() for _ in range(WRITE_LOCKS)]
    every = tuple(range(WRITE_LOCKS))

    def key_text(value: Any) -> str:
        """An attribute value of a key as text: a number by its value (1 and 1.0 are one)."""
        if isinstance(value, dict) and set(value) == {"N"}:
            with contextlib.suppress(InvalidOperation, TypeError, ValueError):
                return f"N:{Decimal(value['N']).normalize()}"
        return repr(value)

    def lock_of(backend: Any, table_name: Any, attributes: Any) -> tuple[int, ...]:
        """The lock of the item ``attributes`` (its key, or the whole item) names; every lock
        for a table with a stream (moto rolls its transactions back by replacing the table)
        or what cannot be read (moto refuses it)."""
        try:
            table = backend.tables[table_name]
            if table.stream_shard is not None:
                return every
            names = [table.hash_key_attr, table.range_key_attr]
            key = tuple(key_text(attributes[name]) for name in names if name)
        except Exception:  # an unreadable write: moto refuses it anyway
            return every
        return (hash((table_name, key)) % WRITE_LOCKS,)

    def locks_of(backend: Any, name: str, arguments: dict[str, Any]) -> tuple[int, ...]:
        if name == "transact_write_items":
            taken: set[int] = set()
            for entry in arguments.get("transact_items") or []:
                try:
                    kind, operation = next(iter(entry.items()))
                    item = operation["Item"] if kind == "Put" else operation["Key"]
                    taken.update(lock_of(backend, operation["TableName"], item))
                except Exception:  # refused by moto, as above
                    return every
            return tuple(sorted(taken))
        item = arguments.get("item_attrs") if name == "put_item" else arguments.get("key")
        return lock_of(backend, arguments.get("table_name"), item)

    for name in ("put_item", "update_item", "delete_item", "transact_write_items"):
        original = getattr(DynamoDBBackend, name)
        signature = inspect.signature(original)

        def serialised(
            *args: Any,
            __original: Any = original,
            __name: str = name,
            __signature: inspect.Signature = signature,
            **kwargs: Any,
        ) -> Any:
            bound = __signature.bind(*args, **kwargs)
            held = locks_of(bound.arguments["self"], __name, bound.arguments)
            with contextlib.ExitStack() as stack:
                for index in held:  # in one order: two writes never wait for each other
                    stack.enter_context(locks[index])
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


# --- speed: the same answers, less work ----------------------------------------------------------


def _transactions_copy_what_they_touch() -> None:
    """TransactWriteItems rolls back by putting back the items it touched, as they were, where
    moto copied every table it names (all of its items) before each transaction. Applied under
    the writes' lock (``_dynamodb_writes_are_atomic``): nothing else writes meanwhile."""
    import copy

    from moto.dynamodb import models
    from moto.dynamodb.models.dynamo_type import DynamoType, Item
    from moto.dynamodb.models.table import Table

    class _TablesKept:
        """moto's ``copy`` in its backend module, which copies tables only for a rollback: a
        table without a stream is kept as it is (its items are put back by ``transact``)."""

        @staticmethod
        def deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
            if isinstance(value, Table) and value.stream_shard is None:
                return value
            return copy.deepcopy(value, memo)

    original = models.DynamoDBBackend.transact_write_items

    def touched(backend: Any, transact_items: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        """(table, hash key, range key, a copy of the item or None) per item written."""
        kept = []
        for entry in transact_items:
            try:
                kind, operation = next(iter(entry.items()))
                table = backend.tables[operation["TableName"]]
                key = operation["Item"] if kind == "Put" else operation["Key"]
                hash_key = DynamoType(key[table.hash_key_attr])
                range_key = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
                item: Item | None = table.get_item(hash_key, range_key)
            except Exception:  # moto refuses the entry and writes nothing for it
                continue
            kept.append((table, hash_key, range_key, copy.deepcopy(item)))
        return kept

    @functools.wraps(original)
    def transact(self: Any, transact_items: list[dict[str, Any]]) -> None:
        kept = touched(self, transact_items)
        try:
            original(self, transact_items)
        except BaseException:
            for table, hash_key, range_key, item in reversed(kept):
                items = table.items if range_key is None else table.items[hash_key]
                key = hash_key if range_key is None else range_key
                if item is None:
                    items.pop(key, None)
                else:
                    items[key] = item
            raise

    setattr(models, "copy", _TablesKept)  # noqa: B010 - not a name moto exports
    models.DynamoDBBackend.transact_write_items = transact  # type: ignore[method-assign]


def _event_input_paths_parsed_once() -> None:
    """moto's ``EventTemplateParser.parse`` (the input of an event target), its JSONPath
    expressions parsed once each."""
    from jsonpath_ng.ext.parser import parse as parse_path
    from moto.events.utils import EventTemplateParser

    compiled = functools.lru_cache(maxsize=1024)(parse_path)

    def parse(
        input_template: str | None, input_paths_map: dict[str, Any], event: Any
    ) -> dict[str, Any]:
        template = input_template or EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE
        paths = input_paths_map or EventTemplateParser.DEFAULT_EVENT_INPUT_PATHS_MAP
        for name, path in paths.items():
            matches = compiled(path).find(event)
            result = EventTemplateParser._stringify(matches[0].value) if matches else None
            if result:
                template = template.replace(f"<{name}>", result)
        defaults = {
            "aws.events.event.json": event,
            "aws.events.event.ingestion-time": event["ingestion-time"],
        }
        for name, value in defaults.items():
            template = template.replace(f"<{name}>", EventTemplateParser._stringify(value))
        return json.loads(template)  # type: ignore[no-any-return]

    EventTemplateParser.parse = staticmethod(parse)  # type: ignore[method-assign]


def _retention_read_from_the_queue() -> None:
    """A received message is within its queue's retention period: read from the queue, not
    from all of its attributes worked out."""
    from moto.core.utils import unix_time
    from moto.sqs.models import SQSBackend

    def valid(self: Any, queue_name: str, message: Any) -> bool:
        retention = int(self.get_queue(queue_name).message_retention_period)
        return bool(retention + message.sent_timestamp / 1000 > unix_time())

    SQSBackend.is_message_valid_based_on_retention_period = valid  # type: ignore[method-assign]


def _backend_looked_up_once_per_host() -> None:
    """Which of moto's backends serves a host name, worked out once per name."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    original = DomainDispatcherApplication.get_backend_for_host
    known: dict[str, Any] = {}

    @functools.wraps(original)
    def backend_for(self: Any, host: str | None) -> Any:
        if host is None:
            return None
        if host not in known:
            known[host] = original(self, host)
        return known[host]

    DomainDispatcherApplication.get_backend_for_host = backend_for  # type: ignore[method-assign]


def item_answer(operation: str, result: Any) -> str | None:
    """The body of moto's answer ``result`` to the DynamoDB ``operation``, as moto's serializer
    would write it: for an item operation, its JSON with binary values in base64; None (leave it
    to the serializer) for any other operation, or an answer holding anything but dicts, lists,
    strings, numbers, booleans and binary values.

    >>> item_answer("GetItem", {"Item": {"id": {"S": "r1"}, "run": {"B": b"\\x00\\x01"}}})
    '{"Item": {"id": {"S": "r1"}, "run": {"B": "AAE="}}}'
    >>> item_answer("DescribeTable", {"Table": {}}) is None
    True
    """
    if operation not in ITEM_OPERATIONS:
        return None
    try:
        return json.dumps(_as_json(result))
    except _NotPlain:
        return None


class _NotPlain(Exception):
    """A value ``item_answer`` leaves to moto's serializer."""


def _as_json(value: Any) -> Any:
    """``value`` with the binary values of attribute values (``B``, ``BS``: not a dict, where an
    attribute named so would be) in base64, as the AttributeValue shape has them."""
    if isinstance(value, dict):
        encoded: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise _NotPlain
            if key == "B" and not isinstance(item, dict):
                encoded[key] = _base64(item)
            elif key == "BS" and isinstance(item, list):
                encoded[key] = [_base64(blob) for blob in item]
            else:
                encoded[key] = _as_json(item)
        return encoded
    if isinstance(value, list):
        return [_as_json(item) for item in value]
    if isinstance(value, str | bool | int | float):
        return value
    raise _NotPlain


def _base64(value: Any) -> str:
    """A blob as moto's serializer writes it (a string is its UTF-8)."""
    if isinstance(value, str):
        value = value.encode("utf-8")
    if not isinstance(value, bytes):
        raise _NotPlain
    return base64.b64encode(value).decode("ascii")


def _items_answered_as_json() -> None:
    """DynamoDB answers that are items written by ``item_answer`` when it can."""
    from moto.dynamodb.responses import DynamoResult

    original = DynamoResult.execute_result

    @functools.wraps(original)
    def execute_result(self: Any, context: Any) -> Any:
        body = item_answer(context.operation_model.name, self.result)
        if body is None:
            return original(self, context)
        return 200, {"Content-Type": "application/x-amz-json-1.0"}, body

    DynamoResult.execute_result = execute_result  # type: ignore[method-assign]


def _account_backends_found_without_a_lock() -> None:
    """``backends[account]`` takes moto's global lock only to create the account's backend."""
    from moto.core.base_backend import BackendDict

    original = BackendDict._create_account_specific_backend

    @functools.wraps(original)
    def create(self: Any, account_id: str) -> None:
        if dict.__contains__(self, account_id):  # created (and registered) before
            return
        original(self, account_id)

    BackendDict._create_account_specific_backend = create  # type: ignore[method-assign]


#: While a Query runs on this thread: the table partition it names (None for an index's).
_QUERIED: contextvars.ContextVar[Any] = contextvars.ContextVar("flowrelay_moto_query")
_NOT_QUERYING = object()


def _queries_read_their_partition() -> None:
    import inspect

    from moto.dynamodb.models.table import Table

    original_query = Table.query
    original_all_items = Table.all_items
    signature = inspect.signature(original_query)

    @functools.wraps(original_query)
    def query(self: Any, *args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(self, *args, **kwargs)
        partition = None if bound.arguments.get("index_name") else bound.arguments["hash_key"]
        token = _QUERIED.set(partition)
        try:
            return original_query(self, *args, **kwargs)
        finally:
            _QUERIED.reset(token)

    @functools.wraps(original_all_items)
    def all_items(self: Any) -> Any:
        partition = _QUERIED.get(_NOT_QUERYING)
        if partition is _NOT_QUERYING:
            return original_all_items(self)  # a Scan pages through them in this order
        if partition is not None:
            found = self.items.get(partition)
            if found is None:
                return []
            return list(found.values()) if self.range_key_attr else [found]
        # An index's query sorts what it keeps (sorted_items): no need to sort everything.
        if not self.range_key_attr:
            return list(self.items.values())
        return [
            item for partition_items in self.items.values() for item in partition_items.values()
        ]

    original_sorted_items = Table.sorted_items

    @functools.wraps(original_sorted_items)
    def sorted_items(
        self: Any, hash_key_attrs: list[str], range_key_attrs: list[Any], items: list[Any]
    ) -> list[Any]:
        names = self._generate_attr_to_sort_by(hash_key_attrs, range_key_attrs)
        items.sort(key=lambda item: tuple(item.attrs[name].cast_value for name in names))
        return items

    Table.query = query  # type: ignore[method-assign]
    Table.all_items = all_items  # type: ignore[method-assign]
    Table.sorted_items = sorted_items  # type: ignore[method-assign]
