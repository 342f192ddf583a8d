"""Flow registrations in the table: every version, a pointer to the latest, and the catalog of
every flow's name (``pk = FLOWS``), which lists them with one Query."""

from __future__ import annotations

import builtins
import contextlib
from datetime import datetime
from typing import Any

from flowrelay.control.store.table import MAX_RACES, Table, condition_failed
from flowrelay.core.modeling import Model
from flowrelay.core.registration import FlowRegistration

#: The partition of the catalog: one item per flow, its name the sort key.
CATALOG = "FLOWS"


class FlowEntry(Model):
    """A flow as the catalog lists it: its name, latest version and when that was registered.
    Versions are numbered from 1 and never removed: the flow has ``latest_version`` of them."""

    name: str
    latest_version: int
    registered_at: datetime | None = None


class FlowStore:
    """Registered flows. Registering unchanged content again returns the existing version.

    The catalog item of a flow is written with its pointer to the latest, in the same
    transaction; a flow registered before the catalog existed is put in it by its next
    registration, changed or not."""

    def __init__(self, table: Table) -> None:
        self.table = table

    def register(self, registration: FlowRegistration) -> tuple[FlowRegistration, bool]:
        """Store a new version of a flow, or return the latest when its content is unchanged.
        Returns the registration (with its version) and whether a new version was made."""
        registration = registration.with_content_hash()
        for _ in range(MAX_RACES):
            latest = self.get(registration.name)
            if latest is not None and latest.content_hash == registration.content_hash:
                self._catalog_missing(latest)
                return latest, False
            version = (latest.version if latest else 0) + 1
            stored = registration.model_copy(
                update={"version": version, "registered_at": self.table.clock()}
            )
            body = {"S": stored.model_dump_json()}
            pointer_condition = (
                "attribute_not_exists(pk)" if latest is None else "latest_version = :previous"
            )
            pointer: dict[str, Any] = {
                "TableName": self.table.table_name,
                "Item": {
                    "pk": {"S": f"FLOW#{registration.name}"},
                    "sk": {"S": "LATEST"},
                    "latest_version": {"N": str(version)},
                    "registration": body,
                },
                "ConditionExpression": pointer_condition,
            }
            if latest is not None:
                pointer["ExpressionAttributeValues"] = {":previous": {"N": str(latest.version)}}
            try:
                self.table.client.transact_write_items(
                    TransactItems=[
                        {"Put": pointer},
                        # Moves with the pointer: the pointer's condition guards both.
                        {"Put": {"TableName": self.table.table_name, "Item": catalog_item(stored)}},
                        {
                            "Put": {
                                "TableName": self.table.table_name,
                                "Item": {
                                    "pk": {"S": f"FLOW#{registration.name}"},
                                    "sk": {"S": f"VERSION#{version:08d}"},
                                    "registration": body,
                                },
                                "ConditionExpression": "attribute_not_exists(pk)",
                            }
                        },
                    ]
                )
            except self.table.client.exceptions.TransactionCanceledException as exc:
                if condition_failed(exc):
                    continue
                raise
            return stored, True
        raise RuntimeError(f"flow {registration.name!r}: {MAX_RACES} concurrent registrations")

    def get(self, name: str, version: int | None = None) -> FlowRegistration | None:
        """A registered flow: the given version, or the latest."""
        item = self.table.client.get_item(
            TableName=self.table.table_name, Key=flow_key(name, version), ConsistentRead=True
        ).get("Item")
        return registration_from_item(item) if item else None

    def versions(self, name: str, limit: int | None = None) -> builtins.list[FlowRegistration]:
        """Every version of a flow (or the newest ``limit``), newest first; none for a flow that
        is not registered."""
        items = self.table.query(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :version)",
            ExpressionAttributeValues={
                ":pk": {"S": f"FLOW#{name}"},
                ":version": {"S": "VERSION#"},
            },
            ScanIndexForward=False,
            ConsistentRead=True,
            limit=limit,
        )
        return [registration_from_item(item) for item in items]

    def list(self) -> builtins.list[FlowEntry]:
        """Every flow in the catalog, by name: one Query (all its pages)."""
        items = self.table.query(
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": CATALOG}},
            ConsistentRead=True,
        )
        return [entry_from_item(item) for item in items]

    def names(self) -> builtins.list[str]:
        """The name of every flow in the catalog, in order."""
        return [entry.name for entry in self.list()]

    def _catalog_missing(self, latest: FlowRegistration) -> None:
        """Put an unchanged flow's catalog item when it has none (registered before the
        catalog existed), never moving an entry back to an older version."""
        with contextlib.suppress(self.table.client.exceptions.ConditionalCheckFailedException):
            self.table.client.put_item(
                TableName=self.table.table_name,
                Item=catalog_item(latest),
                ConditionExpression="attribute_not_exists(pk) OR latest_version < :version",
                ExpressionAttributeValues={":version": {"N": str(latest.version)}},
            )


def catalog_item(registration: FlowRegistration) -> dict[str, Any]:
    """A flow's item in the catalog: its name, latest version and when that was registered."""
    item: dict[str, Any] = {
        "pk": {"S": CATALOG},
        "sk": {"S": registration.name},
        "latest_version": {"N": str(registration.version)},
    }
    if registration.registered_at is not None:
        item["registered_at"] = {"S": registration.registered_at.isoformat()}
    return item


def entry_from_item(item: dict[str, Any]) -> FlowEntry:
    registered_at = item.get("registered_at", {}).get("S")
    return FlowEntry(
        name=item["sk"]["S"],
        latest_version=int(item["latest_version"]["N"]),
        registered_at=datetime.fromisoformat(registered_at) if registered_at else None,
    )


def flow_key(name: str, version: int | None = None) -> dict[str, Any]:
    """The key of a flow's registration: the given version, or the pointer to the latest."""
    sk = "LATEST" if version is None else f"VERSION#{version:08d}"
    return {"pk": {"S": f"FLOW#{name}"}, "sk": {"S": sk}}


def registration_from_item(item: dict[str, Any]) -> FlowRegistration:
    return FlowRegistration.model_validate_json(item["registration"]["S"])
