"""Where a task's value is kept when it is checkpointed (public path
``flowrelay.engine.results``, as the seeds' engine's ``prefect.engine.results``).

A ``Result`` names a place (``location``, a template formatted at write time) and a
``Serializer``; ``write`` stores a value and returns a new ``Result`` whose ``location`` says
where, ``read`` returns a new ``Result`` holding the value stored at a location::

    from flowrelay import Flow, task
    from flowrelay.engine.results import LocalResult, S3Result

    @task(checkpoint=True, result=LocalResult(dir="out", location="{task_name}-{today}.pkl"))
    def extract(): ...

    with Flow("etl", result=S3Result(bucket="my-results")) as flow:
        ...

Location templates are ``str.format`` templates over the run's context (``flow_name``,
``task_name``, ``map_index``, ``today``, ``parameters[...]``, ...) and the task's inputs, or a
callable taking those as keyword arguments and returning the location.

>>> result = PrefectResult().write({"rows": 3})
>>> result.location
'{"rows": 3}'
>>> PrefectResult().read(result.location).value
{'rows': 3}
"""

from __future__ import annotations

import contextlib
import datetime
import os
import re
import threading
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Self

from flowrelay.sdk.serializers import JSONSerializer, PickleSerializer, Serializer

__all__ = [
    "LocalResult",
    "LocationTemplateError",
    "PrefectResult",
    "Result",
    "ResultError",
    "S3Result",
    "default_results_dir",
]

HOME_DIR_VARIABLE = "FLOWRELAY__HOME_DIR"


class ResultError(Exception):
    """A result could not be written, read or checked; the message says where and why."""


class LocationTemplateError(ResultError, KeyError):
    """A location template names a key the format arguments do not have. A ``KeyError`` too,
    as ``str.format`` raises one, so code written for the seeds' engine catches it."""

    def __str__(self) -> str:
        # KeyError's own __str__ quotes its argument like a dict key; this is a sentence.
        return str(self.args[0]) if self.args else ""


def default_results_dir() -> str:
    """``$FLOWRELAY__HOME_DIR/results``, else ``~/.flowrelay/results`` (as the seeds' engine
    used ``$PREFECT__HOME_DIR/results``)."""
    home = os.environ.get(HOME_DIR_VARIABLE) or os.path.join("~", ".flowrelay")
    return os.path.join(os.path.expanduser(home), "results")


def format_location(
    template: str | Callable[..., str], kwargs: dict[str, Any], what: str = "result location"
) -> str:
    """``template`` formatted with ``kwargs`` (``str.format``), or called with them when it is a
    callable; ``LocationTemplateError`` naming the missing key and the keys there are."""
    try:
        location = template(**kwargs) if callable(template) else template.format(**kwargs)
    except KeyError as exc:
        missing = exc.args[0] if exc.args else "?"
        shown = template if isinstance(template, str) else getattr(template, "__name__", template)
        raise LocationTemplateError(
            f"{what} {shown!r} needs {{{missing}}}, which is not among its format keys "
            f"({_keys(kwargs)})"
        ) from None
    except (IndexError, AttributeError, ValueError) as exc:
        shown = template if isinstance(template, str) else getattr(template, "__name__", template)
        hint = (
            "; positional fields such as {} or {0} are not supported" if shown is template else ""
        )
        raise LocationTemplateError(
            f"{what} {shown!r} cannot be formatted: {type(exc).__name__}: {exc} "
            f"(keys: {_keys(kwargs)}{hint})"
        ) from None
    if not isinstance(location, str) or not location:
        raise ResultError(f"{what} {template!r} gave {location!r}, not a non-empty string")
    return location


def _keys(kwargs: dict[str, Any]) -> str:
    return ", ".join(sorted(kwargs)) or "none"


class Result:
    """A value and where it is (or will be) stored. The base class stores nothing: use
    ``LocalResult``, ``S3Result`` or ``PrefectResult``.

    ``location``: a template (``"{flow_name}/{task_name}.pkl"``) or a callable
    ``(**kwargs) -> str``; ``None`` gives a fresh location at each write. ``serializer``:
    ``PickleSerializer()`` unless given. ``validators``: functions ``(Result) -> bool`` that
    ``validate()`` runs.
    """

    def __init__(
        self,
        value: Any = None,
        location: str | Callable[..., str] | None = None,
        serializer: Serializer | None = None,
        validators: Iterable[Callable[[Result], bool]] | None = None,
        run_validators: bool = True,
    ) -> None:
        self.value = value
        self.serializer = serializer if serializer is not None else PickleSerializer()
        self.validators = list(validators) if validators is not None else None
        self.run_validators = run_validators
        self.location: str | None
        if location is None or isinstance(location, str):
            self.location = location
            self._formatter: Callable[..., str] | None = None
        elif callable(location):
            self.location = None
            self._formatter = location
        else:
            raise TypeError(
                f"{type(self).__name__} location must be a str template or a callable, "
                f"got {type(location).__name__}"
            )

    def __eq__(self, other: object) -> bool:
        if type(self) is not type(other):
            return False
        public = {k: v for k, v in vars(self).items() if not k.startswith("_")}
        theirs = {k: v for k, v in vars(other).items() if not k.startswith("_")}
        return public == theirs

    __hash__ = None  # type: ignore[assignment]  # mutable and compared by value

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.value!r}>"

    def copy(self) -> Self:
        """A shallow copy (it shares a storage client with this result, which is safe)."""
        new = object.__new__(type(self))
        # Not copy.copy: it goes through __getstate__, which S3Result uses to drop its client
        # for pickling; copies (one per write and read) should reuse the client instead.
        new.__dict__.update(self.__dict__)
        return new

    def from_value(self, value: Any) -> Self:
        """A copy holding ``value``, with no location."""
        new = self.copy()
        new.location = None
        new.value = value
        return new

    @property
    def default_location(self) -> str:
        """A new location, used when no template was given: ``YYYY/M/D/<uuid>.flowrelay_result``."""
        today = datetime.datetime.now(datetime.UTC)
        return f"{today.year}/{today.month}/{today.day}/{uuid.uuid4()}.flowrelay_result"

    def format(self, **kwargs: Any) -> Self:
        """A copy whose ``location`` is the template formatted with ``kwargs`` (or the callable
        called with them, or ``default_location`` when there is no template)."""
        new = self.copy()
        # The location first, as the seeds' engine did: one set after construction (a task's
        # target, say) wins over a callable given to __init__; it may be a callable too.
        template = self.location if self.location is not None else self._formatter
        new.location = (
            self.default_location if template is None else format_location(template, kwargs)
        )
        return new

    def validate(self) -> bool:
        """Whether every validator accepts this result (``True`` when there are none)."""
        return all(check(self) for check in self.validators or ())

    def exists(self, location: str, **kwargs: Any) -> bool:
        """Whether something is stored at ``location`` (formatted with ``kwargs``)."""
        raise NotImplementedError(self._stores_nothing())

    def read(self, location: str) -> Self:
        """A new result holding the value stored at ``location``."""
        raise NotImplementedError(self._stores_nothing())

    def write(self, value_: Any, **kwargs: Any) -> Self:
        """Store ``value_`` at the location formatted with ``kwargs``; returns a new result
        holding the value, its ``location`` where it was stored."""
        raise NotImplementedError(self._stores_nothing())

    def _stores_nothing(self) -> str:
        return (
            f"{type(self).__name__} stores nothing: use LocalResult, S3Result or PrefectResult "
            "(flowrelay.engine.results)"
        )

    def _serialize(self, value: Any, where: str) -> bytes:
        try:
            return self.serializer.serialize(value)
        except Exception as exc:
            raise ResultError(
                f"{type(self).__name__}: {self.serializer!r} cannot serialize "
                f"{type(value).__name__} for {where}: {exc}"
            ) from exc

    def _deserialize(self, data: bytes, where: str) -> Any:
        try:
            return self.serializer.deserialize(data)
        except Exception as exc:
            raise ResultError(
                f"{type(self).__name__}: {self.serializer!r} cannot read {where}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc


class LocalResult(Result):
    """Values in files under ``dir`` on the machine where the task runs.

    ``dir``: default ``$FLOWRELAY__HOME_DIR/results`` (else ``~/.flowrelay/results``); with
    ``validate_dir`` (the default) it is made absolute and created. Relative locations are
    under ``dir``; absolute ones are used as given. ``write`` returns the file's absolute path as
    the location.
    """

    def __init__(
        self, dir: str | os.PathLike[str] | None = None, validate_dir: bool = True, **kwargs: Any
    ) -> None:
        directory = os.fspath(dir) if dir is not None else default_results_dir()
        if validate_dir:
            directory = os.path.abspath(os.path.expanduser(directory))
            try:
                os.makedirs(directory, exist_ok=True)
            except OSError as exc:
                raise ResultError(
                    f"LocalResult: cannot create its dir {directory}: {exc.strerror or exc}"
                ) from exc
        self.dir = directory
        super().__init__(**kwargs)

    @property
    def default_location(self) -> str:
        """``<dir>/flowrelay-result-<UTC time>-<random>``: unique even for tasks that finish in
        the same microsecond (mapped children)."""
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dt%H-%M-%S-%f")
        return os.path.join(self.dir, f"flowrelay-result-{stamp}-{uuid.uuid4().hex[:8]}")

    def path(self, location: str) -> str:
        """The file ``location`` names: under ``dir`` when relative."""
        return os.path.join(self.dir, location)

    def read(self, location: str) -> Self:
        """A new result holding the value in the file at ``location``."""
        new = self.copy()
        new.location = location
        path = self.path(location)
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise ResultError(f"LocalResult: cannot read {path}: {exc.strerror or exc}") from exc
        new.value = self._deserialize(data, path)
        return new

    def write(self, value_: Any, **kwargs: Any) -> Self:
        """Store ``value_`` in the file the location template names; the returned result's
        ``location`` is that file's absolute path."""
        new = self.format(**kwargs)
        assert new.location is not None  # format always sets one
        path = os.path.abspath(self.path(new.location))
        data = self._serialize(value_, path)
        try:
            write_atomically(path, data)
        except OSError as exc:
            raise ResultError(f"LocalResult: cannot write {path}: {exc.strerror or exc}") from exc
        new.value = value_
        new.location = path
        return new

    def exists(self, location: str, **kwargs: Any) -> bool:
        """Whether the file ``location`` (formatted with ``kwargs``) names exists."""
        return os.path.exists(self.path(format_location(location, kwargs)))


def write_atomically(path: str, data: bytes) -> None:
    """Write ``data`` to the file ``path`` (folders made) so that it appears complete or not
    at all."""
    # A file that exists is trusted as a finished result (targets skip their task), so a
    # half-written one must never be visible: write a temporary file and rename it.
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    temporary = os.path.join(folder, f".flowrelay-{uuid.uuid4().hex}.tmp")
    # os.open with 0o666 rather than mkstemp (0o600): the file gets the umask's permissions,
    # as a plain open() would give it.
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


class _LazyClient:
    """An S3 client made on first use. One holder is shared by a result and all its copies, so
    copies made before the client existed (``format`` makes one per write) reuse it too."""

    def __init__(self, boto3_kwargs: dict[str, Any]) -> None:
        self.boto3_kwargs = boto3_kwargs
        self.client: Any = None
        self.lock = threading.Lock()

    def get(self) -> Any:
        if self.client is None:
            with self.lock:
                if self.client is None:
                    import boto3

                    # A session of its own: boto3's default session is not safe to create
                    # clients from in several threads at once (threaded executors).
                    session = boto3.session.Session()
                    self.client = session.client("s3", **self.boto3_kwargs)
        return self.client


class S3Result(Result):
    """Values in S3 objects: ``bucket`` and the location as the key.

    The client is made on first use with ``boto3_kwargs`` (``region_name``, ``endpoint_url``,
    ...); boto3's own configuration applies otherwise, ``AWS_ENDPOINT_URL`` (the dev stack's
    moto) included. It is reused by every copy of this result (boto3 clients are thread-safe)
    and is not pickled: a result sent to another process makes its own.
    """

    def __init__(
        self, bucket: str, boto3_kwargs: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        if not isinstance(bucket, str) or not bucket:
            raise ValueError(f"S3Result needs a bucket name, got {bucket!r}")
        self.bucket = bucket
        self.boto3_kwargs = dict(boto3_kwargs or {})
        if "service_name" in self.boto3_kwargs:
            raise ValueError('S3Result: boto3_kwargs may not set "service_name" (it is "s3")')
        self._client = _LazyClient(self.boto3_kwargs)
        super().__init__(**kwargs)

    @property
    def client(self) -> Any:
        """The S3 client, made on first use."""
        return self._client.get()

    @client.setter
    def client(self, value: Any) -> None:
        self._client.client = value

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_client", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._client = _LazyClient(self.boto3_kwargs)

    def uri(self, key: str) -> str:
        """``s3://bucket/key``."""
        return f"s3://{self.bucket}/{key}"

    def write(self, value_: Any, **kwargs: Any) -> Self:
        """Store ``value_`` in the object the location template names; the returned result's
        ``location`` is its key."""
        new = self.format(**kwargs)
        assert new.location is not None  # format always sets one
        data = self._serialize(value_, self.uri(new.location))
        self._call(
            "write",
            new.location,
            lambda: self.client.put_object(Bucket=self.bucket, Key=new.location, Body=data),
        )
        new.value = value_
        return new

    def read(self, location: str) -> Self:
        """A new result holding the value in the object whose key is ``location``."""
        new = self.copy()
        new.location = location
        response = self._call(
            "read", location, lambda: self.client.get_object(Bucket=self.bucket, Key=location)
        )
        data = self._call("read", location, response["Body"].read)
        try:
            new.value = self._deserialize(data, self.uri(location))
        except ResultError as exc:
            # An empty object is how the seeds' engine read a value of None.
            if not isinstance(exc.__cause__, EOFError):
                raise
            new.value = None
        return new

    def exists(self, location: str, **kwargs: Any) -> bool:
        """Whether the object whose key is ``location`` (formatted with ``kwargs``) exists."""
        from botocore.exceptions import ClientError

        key = format_location(location, kwargs)
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _error_code(exc) in {"404", "NoSuchKey", "NotFound"}:
                return False
            raise ResultError(
                f"S3Result: cannot check {self.uri(key)}: {describe_error(exc)}"
            ) from exc
        except Exception as exc:
            raise ResultError(
                f"S3Result: cannot check {self.uri(key)}: {describe_error(exc)}"
            ) from exc
        return True

    def _call(self, verb: str, key: str, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except Exception as exc:
            if isinstance(exc, ResultError):
                raise
            raise ResultError(
                f"S3Result: cannot {verb} {self.uri(key)}: {describe_error(exc)}"
            ) from exc


def _error_code(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def describe_error(exc: Exception) -> str:
    """One line: an AWS error's code and message, or the exception's text (with its type, unless
    it is one of ours: those already say what and where)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and "Error" in response:
        code = response["Error"].get("Code", "error")
        message = response["Error"].get("Message") or _HTTP_REASONS.get(str(code), "")
        return f"{code}: {message}" if message else str(code)
    text = str(exc).replace("\n", " ")
    return (
        text if type(exc).__module__.startswith("flowrelay.") else f"{type(exc).__name__}: {text}"
    )


# HEAD answers carry no body, so S3 gives only the status code; say what it means.
_HTTP_REASONS = {
    "400": "Bad Request",
    "403": "Forbidden (no permission to this bucket or key)",
    "404": "Not Found",
}


class PrefectResult(Result):
    """The value as JSON in the location string itself: nothing is stored elsewhere, so it
    suits small JSON values (counts, ids, short lists). Its serializer is always JSON."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs["serializer"] = JSONSerializer()
        super().__init__(**kwargs)

    def read(self, location: str) -> Self:
        """A new result holding the value the JSON ``location`` encodes."""
        new = self.copy()
        new.location = location
        new.value = self._deserialize(location.encode(), f"location {_short(location)}")
        return new

    def write(self, value_: Any, **kwargs: Any) -> Self:
        """A new result holding ``value_``, its location the value as JSON (``kwargs`` unused)."""
        new = self.copy()
        new.value = value_
        new.location = self._serialize(value_, "its location").decode()
        return new

    def exists(self, location: str, **kwargs: Any) -> bool:
        """Whether ``location`` is valid JSON."""
        try:
            self.serializer.deserialize(location.encode())
        except ValueError:
            return False
        return True


def _short(text: str, limit: int = 80) -> str:
    shown = re.sub(r"\s+", " ", text)
    return repr(shown if len(shown) <= limit else shown[: limit - 3] + "...")
