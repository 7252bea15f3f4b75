"""The network guard of Apprise sends: each connection Apprise opens goes to public addresses only, checked on the
addresses actually connected to, redirects included, and never through a proxy from the environment.

Apprise sends with requests (urllib3 underneath) from its own code, so the guard cannot be handed to it: while a
send runs in `guarded()`, urllib3's connection factory and requests' adapter consult the guard of that send (a
context variable, which Apprise copies into its worker threads). Outside a guarded send both behave as shipped.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import requests.adapters
import urllib3.util.connection

from scrapers.netguard import answers_problem, host_name_problem, host_problem, literal_address

# host, port -> every address the name resolves to (as text). Tests inject one; production asks the system.
Lookup = Callable[[str, int], Iterable[str]]


def system_lookup(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return [str(info[4][0]) for info in infos]


class RefusedConnection(ConnectionRefusedError):
    """The guard refused to connect: the host is internal or resolves to a non-public address."""


@dataclass(slots=True)
class SendRecord:
    """What one guarded send did on the wire: why a connection was refused, and every HTTP answer it got."""

    refused: str | None = None
    answers: list[tuple[int, str | None]] = field(default_factory=list)  # (status, Retry-After)


class ConnectGuard:
    """Judges each host Apprise connects to, and gives the addresses to connect to: only public ones.

    `open_for_tests` names addresses (such as 127.0.0.1) a test opens to reach its local fake service; production
    never passes any.
    """

    def __init__(self, lookup: Lookup = system_lookup, *, open_for_tests: Iterable[str] = ()) -> None:
        self._lookup = lookup
        self._open = frozenset(open_for_tests)

    def addresses(self, host: str, port: int) -> list[str]:
        """The checked addresses of host; raises RefusedConnection, or OSError when the name does not resolve."""
        host = host.strip("[]")
        if literal_address(host) is not None:
            problem = None if host in self._open else host_problem(host)
            if problem:
                raise RefusedConnection(f"refused to connect to {problem}")
            return [host]
        else:
            problem = host_name_problem(host) or host_problem(host)
            if problem:
                raise RefusedConnection(f"refused to connect to {problem}")
            answers = list(self._lookup(host, port))
            if not answers:
                raise OSError(f"{host} has no addresses")
        problem = answers_problem(host, [answer for answer in answers if answer not in self._open])
        if problem:
            raise RefusedConnection(f"refused to connect: {problem}")
        return answers


_current: contextvars.ContextVar[tuple[ConnectGuard, SendRecord] | None] = contextvars.ContextVar(
    "apprise_send_guard", default=None)
_installed = threading.Lock()
_original_connect = urllib3.util.connection.create_connection
_original_send = requests.adapters.HTTPAdapter.send


def _guarded_connect(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
    current = _current.get()
    if current is None:
        return _original_connect(address, *args, **kwargs)
    guard, record = current
    host, port = address
    try:
        answers = guard.addresses(host, port)
    except RefusedConnection as err:
        record.refused = str(err)
        raise
    failed: OSError | None = None
    # The addresses checked are the ones connected to: no second lookup that DNS could answer otherwise.
    for answer in answers:
        try:
            return _original_connect((answer, port), *args, **kwargs)
        except OSError as err:
            failed = err
    assert failed is not None
    raise failed


def _guarded_send(self: requests.adapters.HTTPAdapter, request: requests.PreparedRequest, *args: Any,
                  **kwargs: Any) -> requests.Response:
    current = _current.get()
    if current is None:
        return _original_send(self, request, *args, **kwargs)
    # Through a proxy only the proxy's address would be checked, and the proxy goes anywhere: connect directly.
    kwargs["proxies"] = {}
    response = _original_send(self, request, *args, **kwargs)
    current[1].answers.append((response.status_code, response.headers.get("Retry-After")))
    return response


# urllib3's debug lines name each request's path ("POST /hooks/<token>"), a secret of many Apprise URLs.
_URLLIB3_LOGGERS = ("urllib3.connectionpool", "urllib3.connection", "urllib3.poolmanager", "urllib3.util.retry")


class _QuietWhileGuarded(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return _current.get() is None


_QUIET = _QuietWhileGuarded()


def install() -> None:
    """Route urllib3's connections and requests' sends through the guard of the send running (idempotent)."""
    with _installed:
        for name in _URLLIB3_LOGGERS:
            logging.getLogger(name).addFilter(_QUIET)  # adding the same filter twice keeps one
        urllib3.util.connection.create_connection = _guarded_connect  # type: ignore[assignment]
        requests.adapters.HTTPAdapter.send = _guarded_send  # type: ignore[method-assign]


@contextlib.contextmanager
def guarded(guard: ConnectGuard) -> Iterator[SendRecord]:
    """Every connection made in this block (and in threads that copy its context) passes `guard`."""
    install()
    record = SendRecord()
    token = _current.set((guard, record))
    try:
        yield record
    finally:
        _current.reset(token)
