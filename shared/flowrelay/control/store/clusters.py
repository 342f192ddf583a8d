"""The Dask clusters the monitor must still check: one item per cluster a runner said it was
creating (``pk = CLUSTERS``, ``sk = <run id>#<cluster name>``), written before the cluster
exists and removed once the monitor has swept it after its run ended. A single partition: it
holds only the clusters of runs that are running or ended in the last minute, so one query
per monitor pass reads them all.
"""

from __future__ import annotations

from flowrelay.control.store.table import Table
from flowrelay.core.clusters import ClusterSweep
from flowrelay.core.modeling import Model

_PK = "CLUSTERS"


class PendingSweep(Model):
    """A cluster whose run the monitor must sweep once the run is over."""

    run_id: str
    cluster: ClusterSweep


class ClusterStore:
    """Clusters to sweep once their runs end."""

    def __init__(self, table: Table) -> None:
        self.table = table

    def expect(self, run_id: str, cluster: ClusterSweep) -> None:
        """Remember that ``run_id`` has (or is about to have) ``cluster``; idempotent."""
        pending = PendingSweep(run_id=run_id, cluster=cluster)
        self.table.client.put_item(
            TableName=self.table.table_name,
            Item={
                "pk": {"S": _PK},
                "sk": {"S": f"{run_id}#{cluster.name}"},
                "pending": {"S": pending.model_dump_json()},
            },
        )

    def pending(self) -> list[PendingSweep]:
        """Every cluster not swept yet, oldest run id first."""
        items = self.table.query(
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": _PK}},
            ConsistentRead=True,
        )
        return [PendingSweep.model_validate_json(item["pending"]["S"]) for item in items]

    def swept(self, run_id: str, cluster_name: str) -> None:
        """Forget a cluster the monitor has swept."""
        self.table.client.delete_item(
            TableName=self.table.table_name,
            Key={"pk": {"S": _PK}, "sk": {"S": f"{run_id}#{cluster_name}"}},
        )
