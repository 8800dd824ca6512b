"""Who closes what: the SDK clients and credentials one reader, probe or runtime opened.

The rule is `adapters.clients`': whoever builds a client (and the credential made for it) owns
both. An owner keeps them in an `ExitStack` (`owning` fills one) and closes them with itself
(`ClosesOwned`: `close`, or `with`); an owner given a client by its caller holds an empty
`ExitStack` and leaves that client open.
"""

from __future__ import annotations

from contextlib import ExitStack
from types import TracebackType
from typing import Protocol, Self


class Closeable(Protocol):
    """An SDK client, a credential, or a reader: anything with a `close`."""

    def close(self) -> None: ...


def owning(*resources: Closeable | None) -> ExitStack:
    """An `ExitStack` that closes `resources` (None: skipped) once, in the order given (clients
    before their credential); every one is closed even if an earlier close fails."""
    owned = ExitStack()
    for resource in reversed(resources):  # the stack closes the last pushed first
        if resource is not None:
            owned.callback(resource.close)
    return owned


class ClosesOwned:
    """`close` and `with` for an owner whose `_owned` holds what it opened (given: nothing)."""

    __slots__ = ()
    _owned: ExitStack

    def close(self) -> None:
        """Close the clients (and credentials) this was built with; given ones stay open."""
        self._owned.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
