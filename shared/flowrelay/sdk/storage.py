"""Loading flows from where their storage says they are, and uploading scripts to S3.

The descriptions (``Module``, ``Local``, ``S3``) are in ``flowrelay.core.storage``; the public
path ``flowrelay.storage`` offers both.

>>> load_flow(Module("flowrelay.sdk.examples.hello:flow")).name
'hello'
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import re
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from flowrelay.core.storage import S3, Local, Module, Storage, split_location
from flowrelay.core.wording import with_article

if TYPE_CHECKING:
    from flowrelay.sdk.flow import Flow


class FlowLoadError(Exception):
    """A flow could not be loaded; the message says from where and why."""


def load_flow(storage: Storage, client: Any = None) -> Flow:
    """The flow object ``storage`` points at; ``FlowLoadError`` saying from where and why not.
    ``client``: the S3 client for ``S3`` storage (one is made when not given)."""
    if isinstance(storage, Module):
        return _load_module(storage)
    if isinstance(storage, Local):
        script, attr = split_location(storage.path)
        return load_flow_from_script(script, attr)
    return _load_s3(storage, client)


def load_flow_from_script(path: str | Path, attr: str | None = None) -> Flow:
    """Execute a Python script as a module and return the Flow it defines (``attr`` or the only
    one). The module is registered so that process and distributed executors can pickle its
    tasks by value."""
    import cloudpickle

    script = Path(path)
    if not script.is_file():
        raise FlowLoadError(f"{script}: no such file")
    digest = hashlib.sha256(str(script.resolve()).encode()).hexdigest()[:12]
    stem = re.sub(r"\W", "_", script.stem)
    module_name = f"flowrelay_flow_{stem}_{digest}"
    spec = importlib.util.spec_from_file_location(module_name, script)
    if spec is None or spec.loader is None:
        raise FlowLoadError(f"{script}: not a Python script")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        del sys.modules[module_name]
        raise FlowLoadError(f"{script}:{exc.lineno}: syntax error: {exc.msg}") from exc
    except Exception as exc:
        del sys.modules[module_name]
        raise FlowLoadError(f"{script}: raised {type(exc).__name__} while loading: {exc}") from exc
    except SystemExit as exc:
        # A script that calls sys.exit() (or exit()) at import, as a __main__ block left
        # unguarded does: its code never defined the flow.
        del sys.modules[module_name]
        raise FlowLoadError(
            f"{script}: called sys.exit({exc.code!r}) while loading; put what runs as a script "
            f'under `if __name__ == "__main__":`'
        ) from None
    cloudpickle.register_pickle_by_value(module)
    return _flow_in(module, attr, str(script))


def _flow_in(module: ModuleType, attr: str | None, where: str) -> Flow:
    from flowrelay.sdk.flow import Flow

    if attr is not None:
        if not hasattr(module, attr):
            raise FlowLoadError(f"{where} has no attribute {attr!r}")
        found = getattr(module, attr)
        if not isinstance(found, Flow):
            raise FlowLoadError(
                f"{where}:{attr} is {with_article(type(found).__name__)}, not a Flow"
            )
        return found
    flows = {name: value for name, value in vars(module).items() if isinstance(value, Flow)}
    if not flows:
        raise FlowLoadError(f"{where} defines no Flow")
    if len(flows) > 1:
        names = ", ".join(sorted(flows))
        raise FlowLoadError(
            f"{where} defines {len(flows)} flows ({names}); name one as {where}:NAME"
        )
    return next(iter(flows.values()))


def _load_module(storage: Module) -> Flow:
    module_name, _, attr = storage.path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise FlowLoadError(f"cannot import {module_name!r}: {exc}") from exc
    except Exception as exc:  # a SyntaxError or any error raised by the module's code
        raise FlowLoadError(
            f"{module_name}: raised {type(exc).__name__} while importing: {exc}"
        ) from exc
    except SystemExit as exc:
        raise FlowLoadError(
            f"{module_name}: called sys.exit({exc.code!r}) while importing"
        ) from None
    return _flow_in(module, attr or None, module_name)


def upload_script(storage: S3, script: str | Path, flow_name: str, client: Any = None) -> S3:
    """Upload ``script``; returns ``storage`` completed with the key it was uploaded under.

    The key holds the script's content hash, so uploading the same script twice is a no-op
    and a registration always points at exactly the code it was made from.
    """
    body = Path(script).read_bytes()
    digest = hashlib.sha256(body).hexdigest()[:16]
    safe_name = re.sub(r"[^A-Za-z0-9_.-]", "-", flow_name)
    key = storage.key or f"flows/{safe_name}/{digest}.py"
    (client or _s3_client()).put_object(Bucket=storage.bucket, Key=key, Body=body)
    return storage.model_copy(update={"key": key})


def _load_s3(storage: S3, client: Any = None) -> Flow:
    if storage.key is None:
        raise FlowLoadError(
            f"S3 storage in bucket {storage.bucket!r} has no key: register the flow first"
        )
    from botocore.exceptions import ClientError

    try:
        response = (client or _s3_client()).get_object(Bucket=storage.bucket, Key=storage.key)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code, reason = error.get("Code", "error"), error.get("Message", exc)
        raise FlowLoadError(f"s3://{storage.bucket}/{storage.key}: {code}: {reason}") from exc
    with tempfile.TemporaryDirectory(prefix="flowrelay-") as folder:
        local = Path(folder) / Path(storage.key).name
        local.write_bytes(response["Body"].read())
        return load_flow_from_script(local, storage.attr)


def _s3_client() -> Any:
    import boto3

    return boto3.client("s3")
