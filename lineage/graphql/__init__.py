"""The GraphQL provenance API: strawberry types, resolvers, DataLoaders and the schema.

The package is ``lineage.graphql``; inside it, ``import graphql`` still means graphql-core.
"""

from __future__ import annotations

from lineage.graphql.loaders import Context, Limits
from lineage.graphql.schema import build_schema, schema, sdl

__all__ = ["Context", "Limits", "build_schema", "schema", "sdl"]
