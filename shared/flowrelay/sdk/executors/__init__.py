"""Executors run the tasks of one flow run (docs/flows.md).

- ``LocalExecutor()``: one thread, no parallelism; the default.
- ``LocalDaskExecutor(scheduler="threads"|"processes"|"synchronous", **dask_config)``: dask's
  local schedulers; ``num_workers`` sizes the pool.
- ``DaskExecutor(address=None, cluster_class=None, cluster_kwargs=None, adapt_kwargs=None,
  client_kwargs=None, debug=None)``: ``dask.distributed``, on an existing scheduler or on a
  temporary cluster created for the run and closed when it ends.

Dask is imported only when a Dask executor starts, so importing this module stays cheap.
"""

from flowrelay.sdk.executors.base import Executor
from flowrelay.sdk.executors.dask_executors import DaskExecutor, LocalDaskExecutor
from flowrelay.sdk.executors.local import LocalExecutor

__all__ = ["DaskExecutor", "Executor", "LocalDaskExecutor", "LocalExecutor"]
