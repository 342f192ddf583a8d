"""Flow registrations in the table: every version, and a pointer to the latest."""

from __future__ import annotations

from typing import Any

from flowrelay.control.store.table import MAX_RACES, Table, condition_failed
from flowrelay.core.registration import FlowRegistration


class FlowStore:
    """Registered flows. Registering unchanged content again returns the existing version."""

    def __init__(self, table: Table) -> None:
        self.table = table

    def register(self, registration: FlowRegistration) -> tuple[FlowRegistration, bool]:
        """Store a new version of a flow, or return the latest when its content is unchanged.
        Returns the registration (with its version) and whether a new version was made."""
        registration = registration.with_content_hash()
        for _ in range(MAX_RACES):
            latest = self.get(registration.name)
            if latest is not None and latest.content_hash == registration.content_hash:
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


def flow_key(name: str, version: int | None = None) -> dict[str, Any]:
    """The key of a flow's registration: the given version, or the pointer to the latest."""
    sk = "LATEST" if version is None else f"VERSION#{version:08d}"
    return {"pk": {"S": f"FLOW#{name}"}, "sk": {"S": sk}}


def registration_from_item(item: dict[str, Any]) -> FlowRegistration:
    return FlowRegistration.model_validate_json(item["registration"]["S"])
