"""The plugin manager: one per ``Database``, so apps and tests never leak plugins into each other.

Plugins of the ``hutch`` entry-point group (backends, and what a user installed
to act on every database) load on every open, unless the environment variable
``HUTCH_DISABLE_PLUGIN_AUTOLOAD`` is set. Plugins of the ``hutch.domains`` group
model one application's domain (``platform``, ``auth``): they load only when an
application names them, ``hutch.open(url, plugins=["platform", "auth"])``, so
another application's own ``users`` collection stays its own. Built-in backends
are entry points too: core never imports a backend by name.
"""

from __future__ import annotations

import inspect
import os
import re
from collections.abc import Callable, Iterable, Mapping
from importlib.metadata import EntryPoint, EntryPoints, entry_points

import pluggy

from hutch import hookspecs
from hutch.errors import ConfigError, PluginError
from hutch.models import Model
from hutch.persister import BackendConfig, Persister

GROUP = "hutch"
#: The entry-point group of plugins that act on a database only when it names them.
DOMAINS = "hutch.domains"
AUTOLOAD_OFF = "HUTCH_DISABLE_PLUGIN_AUTOLOAD"

Factory = Callable[[BackendConfig], Persister]

_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*").fullmatch


def autoload_enabled() -> bool:
    """Whether entry-point plugins load (``HUTCH_DISABLE_PLUGIN_AUTOLOAD`` unset or empty)."""
    return not os.environ.get(AUTOLOAD_OFF)


def make_manager(plugins: Iterable[object] = ()) -> pluggy.PluginManager:
    """A new plugin manager: the ``hutch`` group's plugins (if autoloading), then ``plugins``.

    A name in ``plugins`` loads the installed plugin of that name, autoloading
    or not (it was asked for); an unknown name is refused before anything loads.
    """
    given = _checked(plugins)
    names = [plugin for plugin in given if isinstance(plugin, str)]
    autoload = autoload_enabled()
    installed = _installed() if autoload or names else EntryPoints(())
    named = {name: _named(installed, name) for name in names}
    manager = _new_manager()
    if autoload:
        for entry_point in installed.select(group=GROUP):
            _load(manager, entry_point, named=False)
    for plugin in given:
        if isinstance(plugin, str):
            _load(manager, named[plugin], named=True)
        elif not manager.is_registered(plugin):
            _register(manager, plugin)
    return manager


def _installed() -> EntryPoints:
    """The entry points of hutch's two groups, in one pass over the installed distributions."""
    found = entry_points()
    return EntryPoints([*found.select(group=GROUP), *found.select(group=DOMAINS)])


def _new_manager() -> pluggy.PluginManager:
    manager = pluggy.PluginManager(GROUP)
    manager.add_hookspecs(hookspecs)
    return manager


def _checked(plugins: object) -> list[object]:
    """``hutch.open(plugins=...)``: a list of names of installed plugins, and of plugins, each
    with a hook implementation."""
    if isinstance(plugins, str | bytes | Mapping) or not isinstance(plugins, Iterable):
        hint = f" (to name one plugin: plugins=[{plugins!r}])" if isinstance(plugins, str) else ""
        raise ConfigError(
            f"plugins takes a list of plugins: names of installed ones (such as "
            f"['platform', 'auth']), modules or objects with @hutch.hookimpl functions; "
            f"not {plugins!r}{hint}"
        )
    plugins = list(plugins)
    for plugin in plugins:
        if isinstance(plugin, str):
            continue  # a name: looked up among the installed plugins
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
            f"{plugin!r} is not a hutch plugin: a plugin is the name of an installed one "
            "(such as 'platform'), or a module or an object with hook functions "
            "(hutch_register_backends, hutch_register_models, ...) marked @hutch.hookimpl; "
            "see docs/plugins.md"
        )
    return plugins


def _is_hookimpl(plugin: object, name: str) -> bool:
    return hasattr(inspect.getattr_static(plugin, name, None), "hutch_impl")


def _named(installed: EntryPoints, name: str) -> EntryPoint:
    """The installed plugin called ``name``: a domain plugin, or one of the ``hutch`` group."""
    found = {
        entry_point.value: entry_point
        for group in (DOMAINS, GROUP)
        for entry_point in installed.select(group=group, name=name)
    }
    if len(found) == 1:
        return next(iter(found.values()))
    if found:
        raise PluginError(
            f"two installed plugins are named {name!r}: "
            f"{' and '.join(_where(each) for each in found.values())}; uninstall one, or pass "
            "the one you want as a module: plugins=[module]"
        )
    domains = sorted(installed.select(group=DOMAINS).names)
    others = sorted(installed.select(group=GROUP).names)
    raise ConfigError(
        f"no installed hutch plugin is named {name!r}; domain plugins (they act only when "
        f"named): {', '.join(domains) or 'none'}; the others (backends; they load anyway "
        f"unless {AUTOLOAD_OFF} is set): {', '.join(others) or 'none'}. A plugin that is "
        "not installed goes in as its module: plugins=[module]"
    )


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


def _load(manager: pluggy.PluginManager, entry_point: EntryPoint, *, named: bool) -> object:
    """Load and register an entry point's plugin (once); return it.

    ``named``: the application named it, so the way out of a failure is to
    leave it out, not to switch autoloading off.
    """
    known = manager.get_plugin(entry_point.name)
    if known is not None:
        return known  # named twice, or autoloaded and named as well
    if named:
        way_out = f"install what it needs, or leave {entry_point.name!r} out of plugins=[...]"
    else:
        way_out = (
            f"fix or uninstall it, or set {AUTOLOAD_OFF}=1 and pass plugins=[...] to hutch.open"
        )
    try:
        plugin = entry_point.load()
        if not manager.is_registered(plugin):  # (given as a module as well)
            _register(manager, plugin, entry_point.name)
    except Exception as error:
        raise PluginError(
            f"the hutch plugin {_where(entry_point)} failed to load: "
            f"{type(error).__name__}: {error}; {way_out}"
        ) from error
    return plugin


def _where(entry_point: EntryPoint) -> str:
    where = f"entry point {entry_point.name!r} ({entry_point.value})"
    if entry_point.dist is not None:
        where += f" of {entry_point.dist.name} {entry_point.dist.version}"
    return where


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


def models_of(names: Iterable[str]) -> list[type[Model]]:
    """The models the installed plugins ``names`` (such as ``platform``) register, loaded for
    this call whether a database named them or not (the ``hutch`` command's ``--plugin``)."""
    manager = _new_manager()
    installed = _installed()
    found: list[type[Model]] = []
    for name in names:
        plugin = _load(manager, _named(installed, name), named=True)
        register = getattr(plugin, "hutch_register_models", None)
        if register is None:
            domains = ", ".join(sorted(installed.select(group=DOMAINS).names)) or "none"
            raise ConfigError(
                f"the plugin {name!r} registers no models; the domain plugins, which do: {domains}"
            )
        register(register=found.append)
    return list(dict.fromkeys(found))
