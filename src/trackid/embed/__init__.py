"""Appearance embedders: one protocol, one file per backend, built by name (`make_embedder`)."""

from trackid.embed.base import EMBEDDERS, Embedder, make_embedder, register_embedder

__all__ = ["EMBEDDERS", "Embedder", "make_embedder", "register_embedder"]
