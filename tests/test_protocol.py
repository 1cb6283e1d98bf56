"""The local and the remote service offer every method of LineageService, signature for
signature (mypy checks that they satisfy it; this catches what mypy allows, such as a
parameter renamed or a default changed)."""

from __future__ import annotations

import inspect

import pytest

from lineage.protocol import LineageService
from lineage.remote import RemoteService
from lineage.service import Service

MEMBERS = sorted(
    name
    for name, value in vars(LineageService).items()
    if not name.startswith("_") and (callable(value) or isinstance(value, property))
)


def test_the_protocol_is_what_the_sdk_needs() -> None:
    assert len(MEMBERS) >= 35  # the 39 methods of the old Service, less its walk internals
    assert {"start_run", "commit", "lineage", "tree", "versions", "gc", "blobs"} <= set(MEMBERS)


@pytest.mark.parametrize("service", [Service, RemoteService])
@pytest.mark.parametrize("name", [m for m in MEMBERS if m != "blobs"])
def test_same_signature(service: type, name: str) -> None:
    wanted = inspect.signature(getattr(LineageService, name))
    got = inspect.signature(getattr(service, name))
    assert str(got) == str(wanted), f"{service.__name__}.{name}{got} is not {name}{wanted}"
