"""Which modules may be imported: fnmatch patterns on the module path, checked before any import."""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable
from fnmatch import fnmatchcase
from typing import Any

from airflowtask.connector_core.paths import UnknownAirflow2Path, to_airflow3

_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class NotAllowedError(Exception):
    """The module is not matched by the allowlist."""


class ImportFailedError(Exception):
    """The module or the name in it cannot be imported."""


class Allowlist:
    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = tuple(patterns)

    def allows(self, module: str) -> bool:
        return any(fnmatchcase(module, pattern) for pattern in self.patterns)

    def load(self, module: str, name: str) -> Any:
        """Map an Airflow 2 path, check the allowlist, then import ``module`` and return ``module.name``.

        The object must also be defined in an allowed module, so that a name an allowed module merely
        imports (``subprocess.Popen``, say) cannot be reached through it.
        """
        if not _MODULE.match(module) or not _NAME.match(name):
            raise ImportFailedError(f"{module}.{name} is not a valid Python path")
        try:
            module, name = to_airflow3(module, name)
        except UnknownAirflow2Path as exc:
            raise ImportFailedError(str(exc)) from exc
        self._check(module, f"{module}.{name}")
        try:
            loaded = importlib.import_module(module)
        except ImportError as exc:
            raise ImportFailedError(f"cannot import module {module}: {exc}") from exc
        except Exception as exc:
            raise ImportFailedError(f"importing module {module} failed: {type(exc).__name__}: {exc}") from exc
        try:
            obj = getattr(loaded, name)
        except AttributeError as exc:
            raise ImportFailedError(f"module {module} has no attribute {name}") from exc
        defined_in = getattr(obj, "__module__", None)
        if isinstance(defined_in, str) and defined_in != module:
            self._check(defined_in, f"{module}.{name} (defined in {defined_in})")
        return obj

    def _check(self, module: str, what: str) -> None:
        if not self.allows(module):
            raise NotAllowedError(
                f"{what} is not allowed: module {module} matches none of the allowed patterns "
                f"{', '.join(self.patterns) or '(none)'}"
            )
