"""An application's own models, named by import path: what ``hutch --models`` takes.

``module`` names every model the module defines (a class deriving from
:class:`hutch.Model` with a collection, defined there rather than imported);
``module:name`` names one of its attributes: a model, or a list or tuple of
models. Modules are imported as from the working folder, which joins the
import path as it would for ``python -m``.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

from hutch.errors import ConfigError
from hutch.models import Model


def models_at(path: str) -> list[type[Model]]:
    """The models ``path`` (``module`` or ``module:name``) names, or a ConfigError saying why
    there are none."""
    module_name, colon, name = path.partition(":")
    if not module_name or (colon and not name):
        raise ConfigError(
            f"--models takes module[:name], such as myapp.models or myapp.models:MODELS; "
            f"not {path!r}"
        )
    module = _imported(module_name)
    if not colon:
        return [
            value
            for value in vars(module).values()
            if _is_model(value) and value.__module__ == module.__name__
        ]
    found: Any = getattr(module, name, _MISSING)
    if found is _MISSING:
        raise ConfigError(f"--models {path}: {module_name} has no {name}")
    given = list(found) if isinstance(found, list | tuple) else [found]
    if not given or not all(_is_model(each) for each in given):
        raise ConfigError(
            f"--models {path}: {name} is not a hutch.Model, nor a list or tuple of them"
        )
    return given


_MISSING: Any = object()


def _is_model(value: object) -> bool:
    """A model class with a collection (a base class without one stores nothing)."""
    return (
        isinstance(value, type)
        and issubclass(value, Model)
        and value is not Model
        and hasattr(value, "__collection__")
    )


def _imported(module_name: str) -> Any:
    here = os.getcwd()
    if here not in sys.path and "" not in sys.path:
        sys.path.insert(0, here)
    try:
        return importlib.import_module(module_name)
    except ImportError as error:
        raise ConfigError(
            f"--models: cannot import {module_name} ({error}); run hutch in the folder it "
            "is imported from, or add that folder to PYTHONPATH"
        ) from error
    except Exception as error:
        raise ConfigError(
            f"--models: importing {module_name} failed: {type(error).__name__}: {error}"
        ) from error
