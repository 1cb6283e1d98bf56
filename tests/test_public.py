"""``lineage.__all__`` is honest: sorted, every name exists, and nothing public is left out."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import types

import lineage


def test_all_is_sorted_and_every_name_exists() -> None:
    assert list(lineage.__all__) == sorted(lineage.__all__)
    assert len(set(lineage.__all__)) == len(lineage.__all__)
    for name in lineage.__all__:
        assert hasattr(lineage, name), name


def test_every_public_name_of_the_package_is_in_all() -> None:
    public = {
        name
        for name, value in vars(lineage).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public - {"annotations"} == set(lineage.__all__)


def test_what_the_sdk_hands_out_is_exported() -> None:
    # the types a user meets through Api and Run are importable from lineage itself
    for method in (
        lineage.Api.view,
        lineage.Api.lineage,
        lineage.Api.artifact_version,
        lineage.Api.diff,
        lineage.ArtifactVersion.file,
    ):
        returned = inspect.signature(method).return_annotation
        assert returned.split(" | ")[0] in lineage.__all__, (method, returned)


def test_every_module_all_names_what_it_defines() -> None:
    for info in pkgutil.walk_packages(lineage.__path__, "lineage."):
        module = importlib.import_module(info.name)
        for name in getattr(module, "__all__", ()):
            assert hasattr(module, name), f"{info.name}.__all__ names missing {name!r}"
