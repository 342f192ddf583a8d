"""Launch targets in the table."""

from __future__ import annotations

from flowrelay.control.store.table import Table
from flowrelay.core.routing import Target


class TargetStore:
    """Launch targets, by name."""

    def __init__(self, table: Table) -> None:
        self.table = table

    def put(self, target: Target) -> None:
        """Create or replace a launch target."""
        self.table.client.put_item(
            TableName=self.table.table_name,
            Item={
                "pk": {"S": "TARGET"},
                "sk": {"S": target.name},
                "target": {"S": target.model_dump_json()},
            },
        )

    def get(self, name: str) -> Target | None:
        item = self.table.client.get_item(
            TableName=self.table.table_name,
            Key={"pk": {"S": "TARGET"}, "sk": {"S": name}},
            ConsistentRead=True,
        ).get("Item")
        return Target.model_validate_json(item["target"]["S"]) if item else None

    def list(self) -> list[Target]:
        """Every launch target, by name."""
        items = self.table.query(
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": "TARGET"}},
            ConsistentRead=True,
        )
        return [Target.model_validate_json(item["target"]["S"]) for item in items]

    def delete(self, name: str) -> bool:
        """Remove a target; False when there was none."""
        response = self.table.client.delete_item(
            TableName=self.table.table_name,
            Key={"pk": {"S": "TARGET"}, "sk": {"S": name}},
            ReturnValues="ALL_OLD",
        )
        return "Attributes" in response
