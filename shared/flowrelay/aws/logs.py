"""Where a flow run's logs are in CloudWatch Logs, and reading them back.

A run's ``infrastructure`` (what its launcher recorded) names the log group, stream and
region. Two readers:

- ``tail``: the last few lines, clipped, for a crash report. Best effort: it never raises
  because logs are unreadable, so a report is never lost to a missing stream or a throttle.
- ``read_all``: every event, page by page, for ``flowrelay runs logs``. Errors propagate.

This module imports nothing heavy (no launcher, no run configs): the monitor loads it in a
Lambda cold start.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple
from urllib.parse import quote

from flowrelay.core.modeling import Model

logger = logging.getLogger("flowrelay.aws.logs")

#: One line of a crash report is clipped to this many characters.
LINE_CHARS = 300
_MAX_LIMIT = 10_000  # GetLogEvents' largest ``limit``
# GetLogEvents may answer a page with no events while older ones exist; a crash report follows
# that many pages back at most, so a stream of empty pages cannot hold it up.
_TAIL_PAGES = 5
_NOT_FOUND = "ResourceNotFoundException"
# Colour and cursor codes: a tail ends up in a run's message, shown on terminals and in JSON.
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_CLIP = "…"


class LogLocation(Model):
    """A CloudWatch Logs stream, and the region it is in when known.

    >>> location = LogLocation(group="/ecs/flows", stream="flowrelay/flow/abc", region="eu-west-1")
    >>> location.console_url()
    'https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#logsV2:log-groups/log-group/$252Fecs$252Fflows/log-events/flowrelay$252Fflow$252Fabc'
    """

    group: str
    stream: str
    region: str | None = None

    def console_url(self, region: str | None = None) -> str | None:
        """The CloudWatch console page of this stream, in ``region`` (default: the location's
        own); None when no region is known."""
        region = region or self.region
        if not region:
            return None
        if region.startswith("cn-"):
            host = f"https://{region}.console.amazonaws.cn"
        elif region.startswith("us-gov-"):
            host = "https://console.amazonaws-us-gov.com"
        else:
            host = f"https://{region}.console.aws.amazon.com"
        return (
            f"{host}/cloudwatch/home?region={region}#logsV2:log-groups/log-group/"
            f"{_console_escape(self.group)}/log-events/{_console_escape(self.stream)}"
        )


class LogEvent(NamedTuple):
    """One log event: when CloudWatch says it happened, and its text."""

    timestamp: datetime
    message: str


def log_location(infrastructure: Mapping[str, Any]) -> LogLocation | None:
    """Where the logs of a run with this ``infrastructure`` are: its ``log_group``,
    ``log_stream`` and ``log_region``, as its launcher recorded them
    (``flowrelay.launchers.base.Launched``); None when it has none (not launched yet, or it
    does not log to CloudWatch).

    >>> log_location({"log_group": "/ecs/flows", "log_stream": "flowrelay/flow/0123abcd",
    ...               "log_region": "us-east-1"})
    LogLocation(group='/ecs/flows', stream='flowrelay/flow/0123abcd', region='us-east-1')
    >>> log_location({}) is None
    True
    """
    group = _text(infrastructure.get("log_group"))
    stream = _text(infrastructure.get("log_stream"))
    if group is None or stream is None:
        return None
    return LogLocation(group=group, stream=stream, region=_text(infrastructure.get("log_region")))


def read_all(
    logs_client: Any,
    location: LogLocation,
    start_from_head: bool = True,
    *,
    page_size: int | None = None,
) -> Iterator[LogEvent]:
    """Every event of the stream: oldest first, or with ``start_from_head=False`` newest first
    (so a caller can stop once it has the last few). Pages are read as the iterator is consumed
    (``page_size`` events each, at most 10,000; default: as many as fit in 1 MB).

    Errors are botocore's: ``ClientError`` with ``ResourceNotFoundException`` when the group or
    stream does not exist.

    >>> for event in read_all(boto3.client("logs"), location):  # doctest: +SKIP
    ...     print(event.message)
    """
    for page in _pages(logs_client, location, start_from_head, page_size):
        yield from page


def follow(
    logs_client: Any,
    location: LogLocation,
    done: Callable[[], bool],
    pause: Callable[[], None],
    *,
    skip: int = 0,
) -> Iterator[LogEvent]:
    """Every event of the stream as it is written, oldest first, until ``done()`` says no more
    will come (checked when caught up; what came meanwhile is still read). ``pause`` waits
    between polls; ``skip`` leaves out the first events (already shown). A stream that does
    not exist yet is waited for.

    >>> wait = lambda: time.sleep(1)
    >>> for event in follow(logs, location, done=run_ended, pause=wait):  # doctest: +SKIP
    ...     print(event.message)
    """
    from botocore.exceptions import ClientError

    request: dict[str, Any] = {
        "logGroupName": location.group,
        "logStreamName": location.stream,
        "startFromHead": True,
    }
    seen = 0
    finishing = False
    while True:
        try:
            response = logs_client.get_log_events(**request)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise
            response = {}
        for raw in response.get("events") or []:
            seen += 1
            if seen > skip:
                yield _event(raw)
        token = response.get("nextForwardToken")
        caught_up = not response.get("events")
        if token:
            request["nextToken"] = token
        if caught_up:
            if finishing:
                return
            # One more read after the end is known: what was written just before it.
            finishing = done()
            if not finishing:
                pause()


def tail(
    logs_client: Any, location: LogLocation, lines: int = 20, max_chars: int = 2000
) -> list[str]:
    """The last ``lines`` lines of the stream, oldest first, for a crash report.

    Each line is clipped to ``LINE_CHARS`` (colour codes and blank lines removed), and the
    whole to ``max_chars`` counting a newline between lines, keeping the newest lines. A
    missing group or stream gives ``[]``; so does any other AWS or botocore error, with a
    warning on the ``flowrelay.aws.logs`` logger: the caller must not fail because logs cannot be
    read. Events take a few seconds to become readable after a task writes them.

    >>> tail(boto3.client("logs"), location, lines=3)  # doctest: +SKIP
    ['Traceback (most recent call last):', '  ...', 'ValueError: boom']
    """
    from botocore.exceptions import BotoCoreError, ClientError

    if lines <= 0 or max_chars <= 0:
        return []
    newest_first: list[str] = []
    try:
        pages = _pages(logs_client, location, start_from_head=False, page_size=lines)
        for _, page in zip(range(_TAIL_PAGES), pages, strict=False):
            for event in page:
                for line in reversed(event.message.splitlines()):
                    cleaned = _clean(line)
                    if cleaned:
                        newest_first.append(_clip(cleaned, LINE_CHARS))
            if len(newest_first) >= lines:
                break
    except ClientError as exc:
        error = exc.response.get("Error", {})
        if error.get("Code") != _NOT_FOUND:
            logger.warning(
                "cannot read log stream %s in group %s: %s: %s",
                location.stream,
                location.group,
                error.get("Code", "Error"),
                error.get("Message", str(exc)),
            )
        return []
    except BotoCoreError as exc:
        logger.warning(
            "cannot read log stream %s in group %s: %s", location.stream, location.group, exc
        )
        return []
    return _fit(newest_first[:lines], max_chars)


def format_tail(lines: list[str]) -> str:
    """The text a Crashed message gets appended: nothing when there are no lines.

    >>> format_tail(["Traceback (most recent call last):", "ValueError: boom"])
    '\\nlast log lines:\\n  Traceback (most recent call last):\\n  ValueError: boom'
    >>> format_tail([])
    ''
    """
    if not lines:
        return ""
    return "\nlast log lines:\n" + "\n".join(f"  {line}" for line in lines)


def crash_log_tail(logs_client: Any, infrastructure: Mapping[str, Any]) -> str:
    """The end of a run's log as ``format_tail`` gives it, for a Crashed message: empty when
    its infrastructure records no log location or nothing can be read (see ``tail``)."""
    location = log_location(infrastructure)
    return "" if location is None else format_tail(tail(logs_client, location))


# --- helpers ------------------------------------------------------------------------------------


def _pages(
    logs_client: Any, location: LogLocation, start_from_head: bool, page_size: int | None
) -> Iterator[list[LogEvent]]:
    """GetLogEvents page by page, each page in reading order (newest first when reading
    backwards), until the stream's end in that direction."""
    request: dict[str, Any] = {
        "logGroupName": location.group,
        "logStreamName": location.stream,
        "startFromHead": start_from_head,
    }
    if page_size is not None:
        request["limit"] = max(1, min(page_size, _MAX_LIMIT))
    token_key = "nextForwardToken" if start_from_head else "nextBackwardToken"
    token: str | None = None
    while True:
        if token is not None:
            request["nextToken"] = token
        response = logs_client.get_log_events(**request)
        # A page's events are oldest first whichever way the stream is read.
        page = [_event(raw) for raw in response.get("events") or []]
        yield page if start_from_head else page[::-1]
        following = response.get(token_key)
        # CloudWatch marks the end of a stream by giving back the token it was asked with.
        if not following or following == token:
            return
        token = following


def _event(raw: Mapping[str, Any]) -> LogEvent:
    milliseconds = int(raw.get("timestamp") or 0)
    return LogEvent(
        timestamp=datetime.fromtimestamp(milliseconds / 1000, tz=UTC),
        message=str(raw.get("message") or ""),
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _console_escape(name: str) -> str:
    # The console's log pages take names URL-encoded, then with "%" itself written as "$25".
    return quote(name, safe="").replace("%", "$25")


def _clean(line: str) -> str:
    return _ANSI.sub("", line).rstrip()


def _clip(line: str, width: int) -> str:
    return line if len(line) <= width else line[: max(0, width - 1)] + _CLIP


def _fit(newest_first: list[str], max_chars: int) -> list[str]:
    """The newest lines whose text, joined by newlines, fits ``max_chars``; oldest first."""
    kept: list[str] = []
    used = 0
    for line in newest_first:
        cost = len(line) + (1 if kept else 0)
        if used + cost > max_chars:
            if not kept:  # the newest line alone is too long: it is what matters most
                kept.append(_clip(line, max_chars))
            break
        kept.append(line)
        used += cost
    kept.reverse()
    return kept
