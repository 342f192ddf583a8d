"""Counting what the control plane asks of AWS, call by call, on a moto server on loopback.

Shared by the ``limits`` and ``control-plane`` sections of ``make bench``:

- item sizes as DynamoDB counts them, and the write and read request units it bills for them;
- ``Meter``: counts every call a DynamoDB client makes (botocore ``before-call`` /
  ``after-call`` hooks on that client only) into the tally of the phase being counted, and
  prices each write from the sizes of the items it touches, before and after (read by a
  second, unhooked client), global secondary index writes included; ``Meter.watch`` counts the
  calls of clients of other services (ECS, EventBridge, CloudWatch Logs, ...) into the same
  tallies, by service and operation;
- a moto server on 127.0.0.1, an environment that sends every boto3 client to it with fake
  credentials, and a guard that refuses any connection but loopback.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import tempfile
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from benchmarks.workloads import BenchmarkError
from flowrelay.core.network import is_loopback_host

ROOT = Path(__file__).resolve().parents[1]

WRITE_UNIT = 1024  # bytes per write request unit
READ_UNIT = 4096  # bytes per read request unit (strongly consistent; half for eventual)

WRITE_OPERATIONS = frozenset({"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems"})


# --- item sizes, as DynamoDB counts them ------------------------------------------------------


def number_size(text: str) -> int:
    """A number's size: one byte per two significant digits, plus one."""
    digits = format(abs(Decimal(text)), "f").replace(".", "").strip("0")
    return math.ceil(len(digits) / 2) + 1


def value_size(value: dict[str, Any]) -> int:
    """The size of one attribute value (its name not included)."""
    ((kind, data),) = value.items()
    if kind == "S":
        return len(data.encode())
    if kind == "N":
        return number_size(data)
    if kind == "B":
        return len(data)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(text.encode()) for text in data)
    if kind == "NS":
        return sum(number_size(text) for text in data)
    if kind == "BS":
        return sum(len(blob) for blob in data)
    if kind == "M":  # 3 bytes, and per element 1 byte, its name and its value
        return 3 + sum(1 + len(name.encode()) + value_size(inner) for name, inner in data.items())
    if kind == "L":
        return 3 + sum(1 + value_size(inner) for inner in data)
    raise ValueError(f"unknown DynamoDB type {kind!r}")


def item_size(item: dict[str, Any] | None) -> int:
    """An item's size: its attribute names (UTF-8) and values; 0 for no item."""
    if not item:
        return 0
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def write_units(size: int) -> int:
    return max(1, math.ceil(size / WRITE_UNIT))


def read_units(size: int, consistent: bool) -> float:
    units = max(1, math.ceil(size / READ_UNIT))
    return float(units) if consistent else units / 2


@dataclass(frozen=True)
class Index:
    """A global secondary index: its key attributes and what it projects (None: ALL)."""

    name: str
    keys: tuple[str, ...]
    projected: frozenset[str] | None

    def entry(self, item: dict[str, Any] | None, table_keys: tuple[str, ...]) -> dict[str, Any]:
        """The item's entry in this index ({} when the item is not in it)."""
        if not item or any(key not in item for key in self.keys):
            return {}
        if self.projected is None:
            return item
        keep = self.projected | set(self.keys) | set(table_keys)
        return {name: value for name, value in item.items() if name in keep}

    def writes(
        self,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        table_keys: tuple[str, ...],
    ) -> list[int]:
        """The sizes of the index writes a change of one item makes: a put when it enters the
        index, a delete when it leaves, both when its index key changes, one update when a
        projected attribute changes."""
        old, new = self.entry(before, table_keys), self.entry(after, table_keys)
        if old and new:
            if any(old[key] != new[key] for key in self.keys):
                return [item_size(old), item_size(new)]
            return [max(item_size(old), item_size(new))] if old != new else []
        if new:
            return [item_size(new)]
        if old:
            return [item_size(old)]
        return []


def table_definition() -> dict[str, Any]:
    """template.yaml's ``Table`` properties (the one definition of the table)."""
    from flowrelay.devstack.template import load_template, resource_properties

    return resource_properties(load_template(ROOT / "template.yaml"), "Table")


def create_table(client: Any, name: str, properties: dict[str, Any]) -> None:
    """Create table ``name`` as template.yaml defines the flowrelay table (``properties``)."""
    client.create_table(
        TableName=name,
        BillingMode=properties["BillingMode"],
        AttributeDefinitions=properties["AttributeDefinitions"],
        KeySchema=properties["KeySchema"],
        GlobalSecondaryIndexes=properties["GlobalSecondaryIndexes"],
    )


def indexes_of(properties: dict[str, Any]) -> list[Index]:
    indexes = []
    for index in properties.get("GlobalSecondaryIndexes", []):
        projection = index.get("Projection", {})
        kind = projection.get("ProjectionType", "ALL")
        projected = None if kind == "ALL" else frozenset(projection.get("NonKeyAttributes", []))
        keys = tuple(key["AttributeName"] for key in index["KeySchema"])
        indexes.append(Index(index["IndexName"], keys, projected))
    return indexes


# --- counting -----------------------------------------------------------------------------------


@dataclass
class Tally:
    """What a client asked of DynamoDB over some calls, and what DynamoDB would bill for it."""

    calls: Counter[str] = field(default_factory=Counter)
    items_written: int = 0
    table_wru: int = 0
    index_writes: int = 0
    index_wru: int = 0
    refused_writes: int = 0
    refused_wru: int = 0
    rru: float = 0.0
    #: Every call counted, of any service (DynamoDB's too), by (service, operation).
    by_service: Counter[tuple[str, str]] = field(default_factory=Counter)

    @property
    def wru(self) -> int:
        return self.table_wru + self.index_wru + self.refused_wru


@dataclass
class _Write:
    table: str
    key: dict[str, Any]
    transactional: bool
    condition_only: bool = False
    before: dict[str, Any] | None = None


class Meter:
    """Counts every call ``client`` makes while a phase is being counted (``counting``), and
    prices it as DynamoDB bills on-demand tables:

    - a written item costs ceil(max(size before, size after) / 1 KB) write request units, twice
      that inside ``TransactWriteItems``;
    - each global secondary index the change reaches costs one more write of the item's index
      entry (a put when it enters the index, a delete when it leaves it, both when its index key
      changes, an update when a projected attribute changes); transactions do not double these;
    - a refused write (a failed condition; every item of a cancelled transaction) costs the
      existing item's size (at least 1 unit), once: the estimate used here, not documented for
      cancelled transactions;
    - reads: ceil(size / 4 KB) read units per ``GetItem`` item, per ``BatchGetItem`` item found,
      per ``Query`` page (the items' sizes summed), at least one, half for eventually consistent
      reads (index queries).

    Sizes are read with ``reader``, a second client with no hooks (``BatchGetItem``, consistent):
    before a write (unless the last write of the item said what it is) and after it.
    """

    def __init__(self, client: Any, reader: Any, properties: dict[str, Any]) -> None:
        self.client = client
        self.reader = reader
        self.table_keys = tuple(key["AttributeName"] for key in properties["KeySchema"])
        self.indexes = indexes_of(properties)
        self.tallies: dict[str, Tally] = {}
        self.phase: str | None = None
        self.unpriced: Counter[str] = Counter()
        # The items written so far, as they are after the last write (None: no item), so that
        # the size before a write is read only once; every write goes through ``client``.
        self.known: dict[str, dict[str, Any] | None] = {}
        client.meta.events.register("before-call.dynamodb", self._before)
        client.meta.events.register("after-call.dynamodb", self._after)

    @contextmanager
    def counting(self, phase: str) -> Iterator[Tally]:
        """Count the calls made in the block into the tally of ``phase``."""
        previous = self.phase
        self.phase = phase
        try:
            yield self.tallies.setdefault(phase, Tally())
        finally:
            self.phase = previous

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Calls made in the block (the benchmark's own reads) are not counted."""
        previous = self.phase
        self.phase = None
        try:
            yield
        finally:
            self.phase = previous

    def watch(self, client: Any) -> Any:
        """Count the calls ``client`` (of another service than the metered DynamoDB client)
        makes while a phase is being counted, by service and operation (not priced); returns
        ``client``."""
        service = client.meta.service_model.service_name

        def count(model: Any, **_: Any) -> None:
            if self.phase is not None:
                self.tallies.setdefault(self.phase, Tally()).by_service[service, model.name] += 1

        client.meta.events.register("before-call", count)
        return client

    def _read(self, writes: list[_Write]) -> list[dict[str, Any] | None]:
        """The items ``writes`` touch, as they are now (one consistent ``BatchGetItem``)."""
        wanted: dict[str, list[dict[str, Any]]] = {}
        for write in writes:
            keys = wanted.setdefault(write.table, [])
            if write.key not in keys:
                keys.append(write.key)
        found: dict[str, list[dict[str, Any]]] = {}
        while wanted:
            response = self.reader.batch_get_item(
                RequestItems={
                    table: {"Keys": keys, "ConsistentRead": True} for table, keys in wanted.items()
                }
            )
            for table, items in response.get("Responses", {}).items():
                found.setdefault(table, []).extend(items)
            wanted = {
                table: request["Keys"]
                for table, request in response.get("UnprocessedKeys", {}).items()
            }
        return [
            next(
                (
                    item
                    for item in found.get(write.table, [])
                    if all(item.get(name) == value for name, value in write.key.items())
                ),
                None,
            )
            for write in writes
        ]

    def _identity(self, write: _Write) -> str:
        return json.dumps([write.table, write.key], sort_keys=True)

    def _writes(self, operation: str, request: dict[str, Any]) -> list[_Write]:
        table = request.get("TableName", "")
        if operation == "PutItem":
            item = request["Item"]
            return [_Write(table, {k: item[k] for k in self.table_keys}, False)]
        if operation in ("UpdateItem", "DeleteItem"):
            return [_Write(table, request["Key"], False)]
        if operation == "TransactWriteItems":
            writes = []
            for entry in request["TransactItems"]:
                ((action, body),) = entry.items()
                if action == "Put":
                    key = {k: body["Item"][k] for k in self.table_keys}
                else:
                    key = body["Key"]
                writes.append(
                    _Write(body["TableName"], key, True, condition_only=action == "ConditionCheck")
                )
            return writes
        return []

    def _before(
        self, model: Any, params: dict[str, Any], context: dict[str, Any], **_: Any
    ) -> None:
        operation = model.name
        if self.phase is None:
            if operation in WRITE_OPERATIONS:
                self.known.clear()  # an uncounted write: what is known may be stale
            return
        body = params.get("body") or b"{}"
        request = json.loads(body.decode() if isinstance(body, bytes) else body)
        writes = self._writes(operation, request)
        unknown = [write for write in writes if self._identity(write) not in self.known]
        for write, item in zip(unknown, self._read(unknown), strict=True):
            self.known[self._identity(write)] = item
        for write in writes:
            write.before = self.known[self._identity(write)]
        context["bench_meter"] = (self.phase, operation, request, writes)

    def _after(
        self, http_response: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any
    ) -> None:
        noted = context.pop("bench_meter", None)
        if noted is None:
            return
        phase, operation, request, writes = noted
        tally = self.tallies.setdefault(phase, Tally())
        tally.calls[operation] += 1
        tally.by_service["dynamodb", operation] += 1
        succeeded = http_response.status_code < 300
        if operation in WRITE_OPERATIONS:
            afters = self._read(writes) if succeeded else [write.before for write in writes]
            for write, after in zip(writes, afters, strict=True):
                self.known[self._identity(write)] = after
                before_size = item_size(write.before)
                if not succeeded:
                    tally.refused_writes += 1
                    tally.refused_wru += write_units(before_size)
                    continue
                factor = 2 if write.transactional else 1
                if write.condition_only:
                    tally.table_wru += factor * write_units(before_size)
                    continue
                tally.items_written += 1
                tally.table_wru += factor * write_units(max(before_size, item_size(after)))
                for index in self.indexes:
                    for size in index.writes(write.before, after, self.table_keys):
                        tally.index_writes += 1
                        tally.index_wru += write_units(size)
        elif operation == "GetItem":
            consistent = bool(request.get("ConsistentRead"))
            tally.rru += read_units(item_size(parsed.get("Item")), consistent)
        elif operation == "Query":
            consistent = bool(request.get("ConsistentRead")) and "IndexName" not in request
            size = sum(item_size(item) for item in parsed.get("Items", []))
            tally.rru += read_units(size, consistent)
        elif operation == "BatchGetItem":
            # Billed per item found, each rounded up on its own.
            for table, items in parsed.get("Responses", {}).items():
                consistent = bool(request["RequestItems"][table].get("ConsistentRead"))
                for item in items:
                    tally.rru += read_units(item_size(item), consistent)
        else:
            self.unpriced[operation] += 1


# --- a moto server on loopback ------------------------------------------------------------------


@contextmanager
def moto_environment(endpoint: str) -> Iterator[None]:
    """Every boto3 client made in the block talks to ``endpoint`` with fake credentials and
    reads no AWS config file; the environment is restored afterwards."""
    from flowrelay.aws.clients import REAL_AWS_SETTINGS

    # What could send boto3 elsewhere than the moto server, or to real credentials.
    cleared = (*REAL_AWS_SETTINGS, "AWS_ENDPOINT_URL_S3", "AWS_REGION")
    with tempfile.TemporaryDirectory() as scratch:
        absent = str(Path(scratch) / "no-aws-config")
        settings = {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": absent,
            "AWS_SHARED_CREDENTIALS_FILE": absent,
        }
        saved = {name: os.environ.get(name) for name in (*cleared, *settings)}
        for name in cleared:
            os.environ.pop(name, None)
        os.environ.update(settings)
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


@contextmanager
def loopback_only() -> Iterator[None]:
    """Any connection to anywhere but loopback made in the block fails."""
    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> None:
        if isinstance(address, tuple) and not is_loopback_host(str(address[0])):
            raise ConnectionRefusedError(f"the benchmark refused a connection to {address!r}")
        real_connect(self, address)

    socket.socket.connect = connect  # type: ignore[method-assign, assignment]
    try:
        yield
    finally:
        socket.socket.connect = real_connect  # type: ignore[method-assign]


@contextmanager
def moto_server() -> Iterator[str]:
    """A moto server on 127.0.0.1 (ephemeral port), with flowrelay's moto fixes, that logs no
    request; its URL."""
    from moto.server import ThreadedMotoServer

    from flowrelay.devstack import moto_fixes

    moto_fixes.apply()
    requests_log = logging.getLogger("werkzeug")
    level = requests_log.level
    requests_log.setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        if not is_loopback_host(str(host)):
            raise BenchmarkError(f"the moto server is not on loopback: {host}")
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        requests_log.setLevel(level)


def _moto_api(endpoint: str, path: str, body: dict[str, Any]) -> None:
    request = urllib.request.Request(endpoint + path, data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        if response.status not in (200, 201):
            raise BenchmarkError(f"moto answered {path} with HTTP {response.status}")


@contextmanager
def ecs_tasks_kept_running(endpoint: str) -> Iterator[None]:
    """moto's ECS tasks stay RUNNING until stopped while the block runs (its default moves a
    task towards STOPPED on every DescribeTasks, for every server of this process)."""
    _moto_api(
        endpoint,
        "/moto-api/state-manager/set-transition",
        {"model_name": "ecs::task", "transition": {"progression": "manual", "times": 10**6}},
    )
    try:
        yield
    finally:
        _moto_api(endpoint, "/moto-api/state-manager/unset-transition", {"model_name": "ecs::task"})


def default_network(ec2: Any) -> dict[str, Any]:
    """The default VPC's first subnet and default security group, as ECS target settings."""
    subnets = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])
    groups = ec2.describe_security_groups(GroupNames=["default"])
    return {
        "subnets": [subnets["Subnets"][0]["SubnetId"]],
        "security_groups": [groups["SecurityGroups"][0]["GroupId"]],
    }


# --- events as the functions receive them ------------------------------------------------------


def envelope(
    detail_type: str, detail: Any, event_id: str, source: str = "flowrelay", **extra: Any
) -> dict[str, Any]:
    """An EventBridge event as the functions receive it."""
    return {
        "version": "0",
        "id": event_id,
        "detail-type": detail_type,
        "source": source,
        "time": "2026-11-23T12:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
        **extra,
    }
