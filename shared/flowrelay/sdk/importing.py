"""Resolve import strings (``"pkg.mod:attr"`` or ``"pkg.mod.attr"``) to objects."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

# Names users of Prefect 1.x write, and names older releases of the Dask cluster libraries used.
ALIASES: dict[str, str] = {
    "prefect.engine.executors.LocalExecutor": "flowrelay.sdk.executors.LocalExecutor",
    "prefect.engine.executors.LocalDaskExecutor": "flowrelay.sdk.executors.LocalDaskExecutor",
    "prefect.engine.executors.DaskExecutor": "flowrelay.sdk.executors.DaskExecutor",
    "prefect.executors.LocalExecutor": "flowrelay.sdk.executors.LocalExecutor",
    "prefect.executors.LocalDaskExecutor": "flowrelay.sdk.executors.LocalDaskExecutor",
    "prefect.executors.DaskExecutor": "flowrelay.sdk.executors.DaskExecutor",
    "dask_cloudprovider.FargateCluster": "dask_cloudprovider.aws.FargateCluster",
    "dask_cloudprovider.ECSCluster": "dask_cloudprovider.aws.ECSCluster",
    "dask_kubernetes.KubeCluster": "dask_kubernetes.operator.KubeCluster",
}


class ImportStringError(ImportError):
    """An import string that does not name an importable object; the message says which part."""


def import_object(path: str) -> Any:
    """The object an import string names.

    >>> import_object("collections:OrderedDict").__name__
    'OrderedDict'
    >>> import_object("collections.OrderedDict").__name__
    'OrderedDict'
    """
    path = ALIASES.get(path, path)
    if ":" in path:
        module_name, _, attribute = path.partition(":")
    else:
        module_name, _, attribute = path.rpartition(".")
    if not module_name or not attribute:
        raise ImportStringError(f"{path!r} is not an import string like 'package.module:name'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ImportStringError(f"cannot import {module_name!r} (for {path!r}): {exc}") from exc
    target: Any = module
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ImportStringError(
                f"module {module_name!r} has no attribute {attribute!r}"
            ) from None
    return target


def submodules_on_first_use(package: str) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` that imports its submodule of the name asked
    for: ``import flowrelay`` then ``flowrelay.engine.signals.SKIP``, as the seeds' engine's
    eagerly imported packages allow, without loading every submodule up front.

    >>> __getattr__ = submodules_on_first_use("flowrelay.engine")  # doctest: +SKIP
    """

    def load(name: str) -> Any:
        try:
            return importlib.import_module(f"{package}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{package}.{name}":
                raise
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None

    return load
