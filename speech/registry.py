"""A registry by name for each backend kind (VAD, wake word, ASR, speaker, TTS)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from speech.errors import SpeechError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps a backend name to a factory; ``create(name, **cfg)`` builds it."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._factories: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator: register a factory (usually the class) under ``name``."""

        def deco(factory: Callable[..., T]) -> Callable[..., T]:
            self._factories[name] = factory
            return factory

        return deco

    def names(self) -> list[str]:
        """Registered backend names, sorted."""
        return sorted(self._factories)

    def create(self, name: str, **cfg: Any) -> T:
        """Build the backend ``name`` with keyword config; SpeechError for an unknown name."""
        if name not in self._factories:
            raise SpeechError(
                f"unknown {self.kind} backend {name!r}; choose one of {', '.join(self.names())}"
            )
        return self._factories[name](**cfg)


def require(module: str, extra: str, what: str) -> Any:
    """Import an optional dependency or raise SpeechError naming the pip extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise SpeechError(
            f"{what} needs the optional package {module!r}: pip install '.[{extra}]' ({exc})"
        ) from None
