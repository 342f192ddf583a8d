"""Executors as data: what registration stores and what the flow runner rebuilds.

>>> spec = executor_spec(LocalDaskExecutor(scheduler="processes", num_workers=4))
>>> spec.model_dump()
{'type': 'LocalDaskExecutor', 'kwargs': {'scheduler': 'processes', 'num_workers': 4}}
>>> build_executor(spec).num_workers
4
"""

from __future__ import annotations

from typing import Any

from flowrelay.core.registration import ExecutorSpec
from flowrelay.sdk.executors.base import Executor
from flowrelay.sdk.executors.dask_executors import DaskExecutor, LocalDaskExecutor
from flowrelay.sdk.executors.local import LocalExecutor


def executor_spec(executor: Executor | None) -> ExecutorSpec:
    """The spec that rebuilds ``executor`` (the default LocalExecutor for None).

    Raises ValueError when the executor holds something that cannot be stored: a cluster class
    defined inside a function, or non-JSON cluster arguments.
    """
    if executor is None or type(executor) is LocalExecutor:
        return ExecutorSpec()
    if isinstance(executor, LocalDaskExecutor):
        kwargs: dict[str, Any] = {"scheduler": executor.scheduler, **executor.dask_config}
        if executor.num_workers is not None:
            kwargs["num_workers"] = executor.num_workers
        return _checked(ExecutorSpec(type="LocalDaskExecutor", kwargs=kwargs))
    if isinstance(executor, DaskExecutor):
        cluster_class = executor.cluster_class
        if cluster_class is not None and not isinstance(cluster_class, str):
            module, qualname = cluster_class.__module__, cluster_class.__qualname__
            if "<locals>" in qualname or module == "__main__":
                raise ValueError(
                    f"DaskExecutor cluster_class {qualname!r} cannot be found by the flow runner: "
                    f"define it in an importable module or give an import string"
                )
            cluster_class = f"{module}:{qualname}"
        kwargs = {
            "address": executor.address,
            "cluster_class": cluster_class,
            "cluster_kwargs": executor.cluster_kwargs or None,
            "adapt_kwargs": executor.adapt_kwargs,
            "client_kwargs": executor.client_kwargs or None,
            "debug": executor.debug or None,
        }
        return _checked(
            ExecutorSpec(
                type="DaskExecutor", kwargs={k: v for k, v in kwargs.items() if v is not None}
            )
        )
    raise ValueError(f"{type(executor).__name__} cannot be registered: use a flowrelay executor")


def build_executor(spec: ExecutorSpec) -> Executor:
    """The executor a spec describes."""
    classes: dict[str, type[Executor]] = {
        "LocalExecutor": LocalExecutor,
        "LocalDaskExecutor": LocalDaskExecutor,
        "DaskExecutor": DaskExecutor,
    }
    return classes[spec.type](**spec.kwargs)


def _checked(spec: ExecutorSpec) -> ExecutorSpec:
    try:
        spec.model_dump_json()
    except ValueError as exc:
        raise ValueError(f"{spec.type} arguments are not JSON-serializable: {exc}") from None
    return spec
