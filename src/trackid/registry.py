"""One registry for every pluggable stage (detectors, embedders, trackers, stores): name -> (factory, params model),
filled by a decorator on each backend, chosen by name from config files and the command line.

Why one: each stage had its own copy of the same dict, decorator and `make_*` function, and their error messages had
begun to drift. Why a params model per backend: a backend's settings arrive as a mapping from YAML, the environment
or `--param`; checked against the backend's own pydantic model, a misspelt key or a wrong type fails when the config
is read, with a message that names the backend, the key and the valid ones, instead of as a TypeError when the
backend is built. The model is also where each setting's default and trade-off are written down.

A backend registers itself where it is defined; the stage's package imports every built-in backend, so importing the
stage is enough to see them all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

__all__ = ["BackendParams", "Entry", "Registry"]

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., object])

Params = Mapping[str, Any] | BaseModel | None
"""What `Registry.validate` and `Registry.make` take: a mapping (from config), a params model instance, or nothing."""


class BackendParams(BaseModel):
    """Base of a backend's params model: unknown keys are errors and a validated instance is frozen. Fields mirror
    the backend's keyword arguments, with the same defaults; `protected_namespaces=()` because `model_path` and
    `model_id` are natural names here."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=(), arbitrary_types_allowed=True)


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered backend: its factory and the params model its settings are checked against."""

    name: str
    factory: Callable[..., T]
    params: type[BaseModel]


class Registry(Generic[T]):
    """Backends of one kind of stage (`kind` names it in errors), looked up by name."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def register(self, name: str, params: type[BaseModel]) -> Callable[[F], F]:
        """Decorator: `@DETECTORS.register("nanodet", params=NanoDetParams)` on a class (or factory function) makes
        it buildable by name, its keyword arguments checked against `params`. A second backend under a taken name
        is a mistake, not an override."""

        def decorate(factory: F) -> F:
            entry = Entry[T](name, factory, params)  # type: ignore[arg-type]
            taken = self._entries.get(name)
            if taken is not None and taken != entry:
                raise ValueError(f"{self.kind} {name!r} is already registered ({taken.factory!r})")
            self._entries[name] = entry
            return factory

        return decorate

    def entry(self, name: str) -> Entry[T]:
        """The named entry; ValueError naming the choices when there is none."""
        try:
            return self._entries[name]
        except KeyError:
            raise ValueError(f"unknown {self.kind} {name!r}; choose from {sorted(self._entries)}") from None

    def __getitem__(self, name: str) -> Callable[..., T]:
        """The factory; ValueError naming the choices when there is none."""
        return self.entry(name).factory

    def params_model(self, name: str) -> type[BaseModel]:
        """The params model of the named backend."""
        return self.entry(name).params

    def validate(self, name: str, params: Params = None) -> BaseModel:
        """`params` checked against the named backend's model: ValueError naming the backend and the unknown keys
        (with the valid ones), or each wrong field with what was wrong and the value given."""
        model = self.params_model(name)
        if type(params) is model:  # not a subclass: a subclass's extra fields are not this backend's
            return params
        if isinstance(params, BaseModel):
            raise ValueError(f"{self.kind} {name!r} takes {model.__name__}, not {type(params).__name__}")
        given = dict(params or {})
        unknown = sorted(str(key) for key in set(given) - set(model.model_fields))
        if unknown:
            listed = ", ".join(repr(key) for key in unknown)
            raise ValueError(
                f"{self.kind} {name!r} has no parameter {listed}; its parameters: {', '.join(model.model_fields)}"
            )
        try:
            return model.model_validate(given)
        except ValidationError as exc:
            problems = "; ".join(_describe(error) for error in exc.errors())
            raise ValueError(f"{self.kind} {name!r}: {problems}") from None

    def make(self, name: str, params: Params = None, /, **overrides: Any) -> T:
        """Build the named backend from `params` (a mapping or its model) and keyword `overrides` on top, validated
        by `validate`; the factory gets every field of the model as a keyword argument."""
        entry = self.entry(name)
        given = {**_as_dict(params), **overrides}
        return entry.factory(**dict(self.validate(name, given if overrides else params)))

    def entries(self) -> list[Entry[T]]:
        """Every backend, by name: for listings (`--help`, docs) of the backends and their parameters."""
        return [self._entries[name] for name in sorted(self._entries)]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._entries))

    def __len__(self) -> int:
        return len(self._entries)


def _as_dict(params: Params) -> dict[str, Any]:
    return dict(params) if isinstance(params, BaseModel) else dict(params or {})


def _describe(error: Mapping[str, Any]) -> str:
    """One pydantic error as `field: what is wrong (got value)`; a validator's own ValueError keeps its words."""
    where = ".".join(str(part) for part in error["loc"]) or "params"
    if error["type"] == "value_error":
        return f"{where}: {error['ctx']['error']}"
    return f"{where}: {error['msg']} (got {error['input']!r})"
