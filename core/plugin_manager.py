"""The plugin manager: one per ``Database``, so apps and tests never leak plugins into each other.

Plugins come from the ``hutch`` entry-point group (unless the environment
variable ``HUTCH_DISABLE_PLUGIN_AUTOLOAD`` is set) and from
``hutch.open(..., plugins=[...])``. Built-in backends are entry points too:
core never imports a backend by name.
"""

from __future__ import annotations

import inspect
import os
import re
from collections.abc import Callable, Iterable, Mapping
from importlib.metadata import EntryPoint, entry_points

import pluggy

from hutch import hookspecs
from hutch.errors import ConfigError, PluginError
from hutch.models import Model
from hutch.persister import BackendConfig, Persister

GROUP = "hutch"
AUTOLOAD_OFF = "HUTCH_DISABLE_PLUGIN_AUTOLOAD"

Factory = Callable[[BackendConfig], Persister]

_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*").fullmatch


def autoload_enabled() -> bool:
    """Whether entry-point plugins load (``HUTCH_DISABLE_PLUGIN_AUTOLOAD`` unset or empty)."""
    return not os.environ.get(AUTOLOAD_OFF)


def make_manager(plugins: Iterable[object] = ()) -> pluggy.PluginManager:
    """A new plugin manager holding the entry-point plugins (if autoloading) and ``plugins``."""
    manager = pluggy.PluginManager(GROUP)
    manager.add_hookspecs(hookspecs)
    if autoload_enabled():
        for entry_point in entry_points(group=GROUP):
            _load(manager, entry_point)
    for plugin in _checked(plugins):
        if not manager.is_registered(plugin):
            _register(manager, plugin)
    return manager


def _checked(plugins: object) -> list[object]:
    """``hutch.open(plugins=...)``: a list of plugins, each with a hook implementation."""
    if isinstance(plugins, str | bytes | Mapping) or not isinstance(plugins, Iterable):
        raise ConfigError(
            f"plugins takes a list of plugins (modules or objects with @hutch.hookimpl "
            f"functions), not {plugins!r}"
        )
    plugins = list(plugins)
    for plugin in plugins:
        hooks = [name for name in dir(plugin) if name.startswith("hutch_")]
        marked = [name for name in hooks if _is_hookimpl(plugin, name)]
        if marked:
            continue
        if hooks:
            raise PluginError(
                f"the plugin {plugin!r} has {', '.join(hooks)} but none is marked "
                "@hutch.hookimpl, so hutch would never call it; decorate each hook with it"
            )
        raise ConfigError(
            f"{plugin!r} is not a hutch plugin: a plugin is a module or an object with "
            "hook functions (hutch_register_backends, hutch_register_models, ...) marked "
            "@hutch.hookimpl; see docs/plugins.md"
        )
    return plugins


def _is_hookimpl(plugin: object, name: str) -> bool:
    return hasattr(inspect.getattr_static(plugin, name, None), "hutch_impl")


def _register(manager: pluggy.PluginManager, plugin: object, name: str | None = None) -> None:
    """Register a plugin; a hook that does not fit its spec is a :class:`PluginError`."""
    try:
        manager.register(plugin, name=name)
        manager.check_pending()
    except (pluggy.PluginValidationError, ValueError) as error:
        if manager.is_registered(plugin):
            manager.unregister(plugin)
        raise PluginError(
            f"the plugin {name or plugin!r} does not fit hutch's hooks: {error}; see "
            "docs/plugins.md for each hook's arguments"
        ) from None


def _load(manager: pluggy.PluginManager, entry_point: EntryPoint) -> None:
    if manager.get_plugin(entry_point.name) is not None:
        return  # the same distribution seen twice on sys.path
    where = f"entry point {entry_point.name!r} ({entry_point.value})"
    if entry_point.dist is not None:
        where += f" of {entry_point.dist.name} {entry_point.dist.version}"
    try:
        plugin = entry_point.load()
        _register(manager, plugin, entry_point.name)
    except Exception as error:
        raise PluginError(
            f"the hutch plugin {where} failed to load: {type(error).__name__}: {error}; "
            f"fix or uninstall it, or set {AUTOLOAD_OFF}=1 and pass plugins=[...] to hutch.open"
        ) from error


def backends(manager: pluggy.PluginManager) -> dict[str, Factory]:
    """Every backend the plugins register, by URL scheme."""
    found: dict[str, Factory] = {}

    def register(scheme: str, factory: Factory) -> None:
        if not isinstance(scheme, str) or not _SCHEME(scheme):
            raise PluginError(
                f"a plugin registered the backend scheme {scheme!r}; a scheme is lower-case "
                "letters, digits, '+', '-' or '.', starting with a letter"
            )
        if not callable(factory):
            raise PluginError(f"the backend for {scheme!r} must be callable, not {factory!r}")
        if scheme in found and found[scheme] is not factory:
            raise PluginError(
                f"two plugins register the backend scheme {scheme!r}: {_name(found[scheme])} and "
                f"{_name(factory)}; uninstall one, or set {AUTOLOAD_OFF}=1 and pass the one "
                "you want in plugins=[...]"
            )
        found[scheme] = factory

    manager.hook.hutch_register_backends(register=register)
    return found


def _name(factory: object) -> str:
    module = getattr(factory, "__module__", "?")
    return f"{module}.{getattr(factory, '__qualname__', repr(factory))}"


def models_of(manager: pluggy.PluginManager, names: Iterable[str]) -> list[type[Model]]:
    """The models the plugins ``names`` (entry-point names, such as ``platform``) register."""
    found: list[type[Model]] = []
    for name in names:
        plugin = manager.get_plugin(name)
        register = getattr(plugin, "hutch_register_models", None)
        if register is None:
            with_models = sorted(
                plugin_name
                for plugin_name, each in manager.list_name_plugin()
                if hasattr(each, "hutch_register_models")
            )
            raise ConfigError(
                f"no plugin named {name!r} registers models; the ones that do: "
                f"{', '.join(with_models) or 'none'}"
            )
        register(register=found.append)
    return list(dict.fromkeys(found))
