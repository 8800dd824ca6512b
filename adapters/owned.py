"""Who closes what: the SDK clients and credentials one reader, probe or runtime opened.

The rule is `adapters.clients`': whoever builds a client (and the credential made for it) owns
both. An owner keeps them in an `Owned` and closes them with itself (`ClosesOwned`: `close`, or
`with`); an owner given a client by its caller holds an empty `Owned` and leaves that client open.
"""

from __future__ import annotations

from types import TracebackType
from typing import Protocol, Self


class Closeable(Protocol):
    """An SDK client, a credential, or a reader: anything with a `close`."""

    def close(self) -> None: ...


class Owned:
    """What one owner opened: closed once, in the order given (clients before their credential).

    Every one is closed even if an earlier close fails; the first failure is raised after.
    """

    __slots__ = ("_resources",)

    def __init__(self, *resources: Closeable | None) -> None:
        self._resources = [resource for resource in resources if resource is not None]

    def add[C: Closeable](self, resource: C) -> C:
        """Take `resource` over (closed after those before it); returns it."""
        self._resources.append(resource)
        return resource

    def close(self) -> None:
        """Close everything (a second call closes nothing)."""
        resources, self._resources = self._resources, []
        failure: Exception | None = None
        for resource in resources:
            try:
                resource.close()
            except Exception as e:  # the rest must still close
                failure = failure or e
        if failure is not None:
            raise failure


class ClosesOwned:
    """`close` and `with` for an owner whose `_owned` holds what it opened (given: nothing)."""

    __slots__ = ()
    _owned: Owned

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
