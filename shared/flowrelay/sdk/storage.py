"""Storage: where the flow runner finds a flow object.

- ``Module("pkg.module:flow")``: importable code, e.g. baked into the run's image.
- ``Local("flows/etl.py")`` or ``Local("flows/etl.py:flow")``: a script on this machine
  (development and the dev stack).
- ``S3("my-bucket")``: a script uploaded to S3 at registration (``S3.upload``); the runner
  downloads and loads it.

When no attribute is named, the script or module must define exactly one ``Flow``.

>>> Module("flowrelay.sdk.examples.hello:flow").load().name
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
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import ConfigDict, Field, field_validator

from flowrelay.core.modeling import Model, ModelUnion

if TYPE_CHECKING:
    from flowrelay.sdk.flow import Flow


class FlowLoadError(Exception):
    """A flow could not be loaded; the message says from where and why."""


def split_location(location: str) -> tuple[str, str | None]:
    """``"path/flow.py:attr"`` -> ``("path/flow.py", "attr")``; no attribute -> None.

    >>> split_location("flows/etl.py:daily")
    ('flows/etl.py', 'daily')
    """
    head, sep, tail = location.rpartition(":")
    if sep and tail.isidentifier() and head and not re.fullmatch(r"[A-Za-z]", head):
        return head, tail
    return location, None


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
    cloudpickle.register_pickle_by_value(module)
    return _flow_in(module, attr, str(script))


def _flow_in(module: ModuleType, attr: str | None, where: str) -> Flow:
    from flowrelay.sdk.flow import Flow

    if attr is not None:
        if not hasattr(module, attr):
            raise FlowLoadError(f"{where} has no attribute {attr!r}")
        found = getattr(module, attr)
        if not isinstance(found, Flow):
            raise FlowLoadError(f"{where}:{attr} is a {type(found).__name__}, not a Flow")
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


class _StorageBase(Model):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def load(self) -> Flow:
        """The flow object this storage points at."""
        raise NotImplementedError


class Module(_StorageBase):
    """A flow in importable code: ``Module("pkg.module:flow")`` (``:flow`` optional)."""

    type: Literal["Module"] = "Module"
    path: str = Field(min_length=1, description="'package.module' or 'package.module:attribute'")

    # Defined on each class: the pydantic mypy plugin gives every model its own __init__.
    def __init__(self, path: str | None = None, /, **data: Any) -> None:
        if path is not None:
            data["path"] = path
        super().__init__(**data)

    def load(self) -> Flow:
        module_name, _, attr = self.path.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise FlowLoadError(f"cannot import {module_name!r}: {exc}") from exc
        except Exception as exc:  # a SyntaxError or any error raised by the module's code
            raise FlowLoadError(
                f"{module_name}: raised {type(exc).__name__} while importing: {exc}"
            ) from exc
        return _flow_in(module, attr or None, module_name)


class Local(_StorageBase):
    """A flow in a script on this machine: ``Local("flows/etl.py")`` or ``"flows/etl.py:flow"``."""

    type: Literal["Local"] = "Local"
    path: str = Field(min_length=1, description="Script path, optionally ':attribute'.")

    def __init__(self, path: str | None = None, /, **data: Any) -> None:
        if path is not None:
            data["path"] = path
        super().__init__(**data)

    def load(self) -> Flow:
        script, attr = split_location(self.path)
        return load_flow_from_script(script, attr)


class S3(_StorageBase):
    """A flow script in S3: ``S3("bucket")`` is completed by ``upload`` at registration, which
    stores the script under a content-addressed key."""

    type: Literal["S3"] = "S3"
    bucket: str = Field(min_length=3, max_length=63)
    key: str | None = Field(default=None, min_length=1)
    attr: str | None = Field(default=None, description="The Flow's name in the script.")

    def __init__(self, bucket: str | None = None, key: str | None = None, /, **data: Any) -> None:
        if bucket is not None:
            data["bucket"] = bucket
        if key is not None:
            data["key"] = key
        super().__init__(**data)

    @field_validator("bucket")
    @classmethod
    def _check_bucket(cls, bucket: str) -> str:
        if (
            not re.fullmatch(r"[a-z0-9][a-z0-9.-]+[a-z0-9]", bucket)
            or ".." in bucket
            or re.fullmatch(r"\d+\.\d+\.\d+\.\d+", bucket)
        ):
            raise ValueError(f"{bucket!r} is not an S3 bucket name")
        return bucket

    def upload(self, script: str | Path, flow_name: str, client: Any = None) -> S3:
        """Upload ``script`` and return this storage completed with its key.

        The key holds the script's content hash, so uploading the same script twice is a no-op
        and a registration always points at exactly the code it was made from.
        """
        body = Path(script).read_bytes()
        digest = hashlib.sha256(body).hexdigest()[:16]
        safe_name = re.sub(r"[^A-Za-z0-9_.-]", "-", flow_name)
        key = self.key or f"flows/{safe_name}/{digest}.py"
        (client or _s3_client()).put_object(Bucket=self.bucket, Key=key, Body=body)
        return self.model_copy(update={"key": key})

    def load(self, client: Any = None) -> Flow:
        if self.key is None:
            raise FlowLoadError(
                f"S3 storage in bucket {self.bucket!r} has no key: register the flow first"
            )
        from botocore.exceptions import ClientError

        try:
            response = (client or _s3_client()).get_object(Bucket=self.bucket, Key=self.key)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code, reason = error.get("Code", "error"), error.get("Message", exc)
            raise FlowLoadError(f"s3://{self.bucket}/{self.key}: {code}: {reason}") from exc
        with tempfile.TemporaryDirectory(prefix="flowrelay-") as folder:
            local = Path(folder) / Path(self.key).name
            local.write_bytes(response["Body"].read())
            return load_flow_from_script(local, self.attr)


def _s3_client() -> Any:
    import boto3

    return boto3.client("s3")


Storage = Annotated[Module | Local | S3, Field(discriminator="type")]
_STORAGE: ModelUnion[Storage] = ModelUnion(Storage, title="Storage")


def parse_storage(data: str | bytes | dict[str, Any]) -> Storage:
    """A storage from its JSON text or dict."""
    return _STORAGE.parse(data)


def storage_json_schema() -> dict[str, Any]:
    """The JSON Schema of every storage type (discriminated by ``type``)."""
    return _STORAGE.json_schema()
