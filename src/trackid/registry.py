"""One registry for every pluggable stage (detectors, embedders, trackers): a name -> factory map that config files
and the CLI choose from, filled by a decorator on each backend.

Why one: each stage had its own copy of the same dict, decorator and `make_*` function, and their error messages had
begun to drift. A backend registers itself where it is defined; the stage's package imports every built-in backend, so
importing the stage is enough to see them all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

__all__ = ["Registry"]

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., object])


class Registry(Generic[T]):
    """Factories of one kind of stage (`kind` names it in errors), looked up by name."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._factories: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[F], F]:
        """Decorator: `@DETECTORS.register("nanodet")` on a class (or factory function) makes it buildable by name.
        A second backend under a taken name is a mistake, not an override."""

        def decorate(factory: F) -> F:
            if name in self._factories and self._factories[name] is not factory:
                raise ValueError(f"{self.kind} {name!r} is already registered ({self._factories[name]!r})")
            self._factories[name] = factory  # type: ignore[assignment]
            return factory

        return decorate

    def __getitem__(self, name: str) -> Callable[..., T]:
        """The factory; ValueError naming the choices when there is none."""
        try:
            return self._factories[name]
        except KeyError:
            raise ValueError(f"unknown {self.kind} {name!r}; choose from {sorted(self._factories)}") from None

    def make(self, name: str, **params: object) -> T:
        """Build the named backend with `params` (its keyword arguments)."""
        return self[name](**params)

    def __contains__(self, name: object) -> bool:
        return name in self._factories

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._factories))

    def __len__(self) -> int:
        return len(self._factories)
