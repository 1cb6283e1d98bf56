"""The GraphQL provenance API: strawberry types, resolvers, DataLoaders and the schema.

The package is ``lineage.server.graphql``; inside it, ``import graphql`` still means graphql-core.
"""

from __future__ import annotations

from lineage.server.graphql.loaders import Context, Limits
from lineage.server.graphql.schema import build_schema, schema, sdl

__all__ = ["Context", "Limits", "build_schema", "schema", "sdl"]
