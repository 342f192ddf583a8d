"""Documents a run config points at (a task definition, a Job template): YAML or JSON text at
a local path, ``s3://bucket/key`` or an ``http(s)://`` URL, read on every launch (the file may
change; what is built from it follows).

>>> Documents().read("/no/such/file.yaml", "job_template_path", "a Job template")
Traceback (most recent call last):
...
flowrelay.launchers.base.LaunchError: cannot read job_template_path '/no/such/file.yaml': ...
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from flowrelay.launchers.aws_errors import call
from flowrelay.launchers.base import LaunchError


class Documents:
    """Reads documents for one launcher; ``s3_client`` reads ``s3://`` paths (one is made in
    ``region`` when first needed). Safe to share between threads."""

    def __init__(self, *, region: str | None = None, s3_client: Any = None) -> None:
        self.region = region
        self._s3_client = s3_client
        self._lock = threading.Lock()

    def read(self, path: str, field: str, what: str) -> dict[str, Any]:
        """The mapping at ``path``, named in errors as the run config's ``field`` holding
        ``what``; ``LaunchError`` (retryable only for what may pass: a server error, a lost
        connection)."""
        import yaml

        if path.startswith("s3://"):
            text = self._read_s3(path, field)
        elif path.startswith(("https://", "http://")):
            text = _read_url(path, field)
        else:
            local = Path(path.removeprefix("file://")).expanduser()
            try:
                text = local.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise LaunchError(f"cannot read {field} {path!r}: {exc}", retryable=False) from exc
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise LaunchError(
                f"{field} {path!r} is not valid YAML or JSON: {exc}", retryable=False
            ) from exc
        if not isinstance(loaded, dict):
            raise LaunchError(
                f"{field} {path!r} must hold a mapping ({what}), not {type(loaded).__name__}",
                retryable=False,
            )
        return loaded

    def _read_s3(self, path: str, field: str) -> str:
        bucket, _, key = path.removeprefix("s3://").partition("/")
        if not bucket or not key:
            raise LaunchError(f"{field} {path!r} is not s3://BUCKET/KEY", retryable=False)
        with self._lock:
            if self._s3_client is None:
                import boto3

                make: Any = boto3.client
                self._s3_client = make("s3", region_name=self.region)
        response = call(f"GetObject {path}", self._s3_client.get_object, Bucket=bucket, Key=key)
        body: bytes = response["Body"].read()
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise LaunchError(f"{path} is not UTF-8 text: {exc}", retryable=False) from exc


def _read_url(url: str, field: str) -> str:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            body: bytes = response.read()
    except urllib.error.HTTPError as exc:
        raise LaunchError(
            f"cannot read {field} {url}: HTTP {exc.code} {exc.reason}",
            retryable=exc.code >= 500 or exc.code == 429,
        ) from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise LaunchError(f"cannot read {field} {url}: {exc}", retryable=True) from exc
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LaunchError(f"{url} is not UTF-8 text: {exc}", retryable=False) from exc
