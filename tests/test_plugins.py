"""Plugins: entry points of installed distributions, in-process plugins, and their failures."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import attrs
import pytest

import hutch
import hutch.plugins.auth as auth
import hutch.plugins.platform as platform
from hutch import BackendConfig, Changes, Persister, Snapshot
from hutch.plugin_manager import AUTOLOAD_OFF

FAKE_BACKEND = """
import hutch

class FakePersister(hutch.Persister):
    capabilities = hutch.Capabilities(durable=True)

    def __init__(self, config):
        self.config = config

    def load(self):
        return hutch.Snapshot(tables={"greetings": {"g1": {"text": "hello from a plugin"}}})

    def apply(self, changes):
        pass

@hutch.hookimpl
def hutch_register_backends(register):
    register("fake", FakePersister)
"""


def install_distribution(
    site: Path, name: str, module_source: str, group: str = "hutch", entry: str | None = None
) -> None:
    """Lay out an installed distribution as pip would: a module and its .dist-info, publishing
    the module in the entry-point ``group`` as ``entry`` (its own name unless given)."""
    (site / f"{name}.py").write_text(textwrap.dedent(module_source))
    info = site / f"{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{group}]\n{entry or name} = {name}\n")


def run_python(site: Path, code: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "HUTCH_DISABLE_PLUGIN_AUTOLOAD"}
    environ.update(env, PYTHONPATH=str(site))
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_an_installed_distribution_provides_a_backend(tmp_path: Path) -> None:
    install_distribution(tmp_path, "hutch_fake", FAKE_BACKEND)
    result = run_python(
        tmp_path,
        """
        import hutch
        with hutch.open("fake://anything") as db:
            print(db.store.get_cell("greetings", "g1", "text"), db.capabilities.durable)
            print(sorted(name for name, _ in db.plugins.list_name_plugin()))
        """,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "hello from a plugin True",
        "['file', 'hutch_fake', 'import_sql', 'jsonl', 'memory', 'postgres', 'sqlite']",
    ]


def test_the_unknown_scheme_error_lists_installed_schemes(tmp_path: Path) -> None:
    install_distribution(tmp_path, "hutch_fake", FAKE_BACKEND)
    result = run_python(
        tmp_path,
        """
        import hutch
        try:
            hutch.open("s3://bucket")
        except hutch.UnknownBackend as error:
            print(error)
        """,
    )
    assert (
        "installed schemes: fake, file, jsonl, memory, postgres, postgresql, sqlite"
        in result.stdout
    ), result.stderr


def test_autoload_can_be_switched_off(tmp_path: Path) -> None:
    install_distribution(tmp_path, "hutch_fake", FAKE_BACKEND)
    result = run_python(
        tmp_path,
        """
        import hutch, hutch_fake
        import hutch.backends.memory as memory
        try:
            hutch.open("fake://")
        except hutch.UnknownBackend as error:
            print(error)
        with hutch.open("fake://", plugins=[hutch_fake]) as db:
            print(db.store.get_row_ids("greetings"))
        with hutch.open("memory://", plugins=[memory]) as db:
            print("memory by hand")
        """,
        HUTCH_DISABLE_PLUGIN_AUTOLOAD="1",
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "installed schemes: none" in lines[0]
    assert "HUTCH_DISABLE_PLUGIN_AUTOLOAD is set" in lines[0]
    assert lines[1:] == ["['g1']", "memory by hand"]


def test_a_plugin_that_fails_to_import_is_named(tmp_path: Path) -> None:
    install_distribution(tmp_path, "hutch_broken", "raise ImportError('needs libfoo')\n")
    result = run_python(
        tmp_path,
        """
        import hutch
        try:
            hutch.open("memory://")
        except hutch.PluginError as error:
            print(error)
        """,
    )
    assert "'hutch_broken'" in result.stdout, result.stderr
    assert "hutch_broken 1.0" in result.stdout
    assert "needs libfoo" in result.stdout


class RecordingPersister(Persister):
    def __init__(self, config: BackendConfig) -> None:
        self.config = config

    def load(self) -> Snapshot:
        return Snapshot()

    def apply(self, changes: Changes) -> None:
        pass


class RecordingPlugin:
    @hutch.hookimpl
    def hutch_register_backends(self, register: hutch.RegisterBackend) -> None:
        register("rec", RecordingPersister)


def test_in_process_plugins_add_backends() -> None:
    with hutch.open("rec://x", plugins=[RecordingPlugin()], flavour="plain") as db:
        assert db.url == "rec://x"
        db.store.set_row("t", "r", {"a": 1})
        assert db.config.options == {"flavour": "plain"}


def test_each_database_has_its_own_plugin_manager() -> None:
    with hutch.open("rec://", plugins=[RecordingPlugin()]) as db:
        assert db.plugins is not None
        with pytest.raises(hutch.UnknownBackend):
            hutch.open("rec://")


def test_two_plugins_claiming_one_scheme_clash() -> None:
    class Impostor:
        @hutch.hookimpl
        def hutch_register_backends(self, register: hutch.RegisterBackend) -> None:
            register("memory", RecordingPersister)

    with pytest.raises(hutch.PluginError, match="two plugins register the backend scheme 'memory'"):
        hutch.open("memory://", plugins=[Impostor()])


@pytest.mark.parametrize(("scheme", "factory"), [("Bad_Scheme", RecordingPersister), ("ok", 42)])
def test_bad_registrations_are_refused(scheme: str, factory: Any) -> None:
    class Bad:
        @hutch.hookimpl
        def hutch_register_backends(self, register: hutch.RegisterBackend) -> None:
            register(scheme, factory)

    with pytest.raises(hutch.PluginError):
        hutch.open("memory://", plugins=[Bad()])


def test_a_factory_must_return_a_persister() -> None:
    class NotAPersister:
        @hutch.hookimpl
        def hutch_register_backends(self, register: hutch.RegisterBackend) -> None:
            register("odd", lambda config: object())  # type: ignore[arg-type,return-value]

    with pytest.raises(hutch.PluginError, match=r"not a hutch\.Persister"):
        hutch.open("odd://", plugins=[NotAPersister()])


def test_a_failing_load_is_a_storage_error_and_closes_the_backend() -> None:
    closed: list[bool] = []

    class Unreadable(RecordingPersister):
        def load(self) -> Snapshot:
            raise OSError("disk on fire")

        def close(self) -> None:
            closed.append(True)

    class Plugin:
        @hutch.hookimpl
        def hutch_register_backends(self, register: hutch.RegisterBackend) -> None:
            register("unreadable", Unreadable)

    with pytest.raises(hutch.StorageError, match="disk on fire") as caught:
        hutch.open("unreadable://", plugins=[Plugin()])
    assert isinstance(caught.value.__cause__, OSError)
    assert closed == [True]


# -- domain plugins: they act on a database only when it names them -------------------------------

BILLING = """
import attrs
import hutch

@attrs.frozen
class Invoice(hutch.Model):
    __collection__ = "invoices"
    __indexed__ = ("customer",)

    customer: str

@hutch.hookimpl
def hutch_register_models(register):
    register(Invoice)
"""


@attrs.frozen
class Person(hutch.Model):
    """An application's own user, in the collection the platform's ``User`` uses."""

    __collection__ = "users"

    handle: str


@pytest.fixture
def autoloading(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(AUTOLOAD_OFF, raising=False)


def plugin_names(db: hutch.Database) -> list[str]:
    return sorted(name for name, _ in db.plugins.list_name_plugin())


@pytest.mark.usefixtures("autoloading")
def test_a_fresh_database_has_no_models_indexes_or_relationships() -> None:
    with hutch.open("memory://") as db:
        assert db.models.models() == []
        assert db.indexes.index_ids() == []
        assert db.relationships.relationship_ids() == []
        assert plugin_names(db) == ["file", "import_sql", "jsonl", "memory", "postgres", "sqlite"]


@pytest.mark.usefixtures("autoloading")
def test_an_application_owns_its_users_collection() -> None:
    with hutch.open("memory://") as db:
        people = db.repo(Person)
        ada = people.create(handle="ada")
        assert people.find(handle="ada") == [ada]
        assert db.indexes.index_ids() == []
    with (
        hutch.open("memory://", plugins=["platform"]) as db,
        pytest.raises(hutch.DefinitionError, match="both claim the collection 'users'"),
    ):
        db.repo(Person)


@pytest.mark.usefixtures("autoloading")
def test_named_domain_plugins_bring_their_models_from_the_open() -> None:
    with hutch.open("memory://", plugins=["platform", "auth"]) as db:
        assert set(db.models.models()) == {*platform.MODELS, *auth.MODELS}
        assert "users.email.key" in db.indexes.index_ids()
        assert "memberships.user_id" in db.relationships.relationship_ids()
        assert "sessions.user_id" in db.relationships.relationship_ids()
        assert plugin_names(db) == [
            "auth",
            "file",
            "import_sql",
            "jsonl",
            "memory",
            "platform",
            "postgres",
            "sqlite",
        ]


@pytest.mark.usefixtures("autoloading")
def test_auth_alone_brings_the_whole_platform() -> None:
    """It stores its users in the platform's ``User``, whose delete policies come with it."""
    with hutch.open("memory://", plugins=["auth"]) as db:
        assert set(db.models.models()) == {*platform.MODELS, *auth.MODELS}


@pytest.mark.usefixtures("autoloading")
def test_a_plugin_named_twice_or_also_given_as_a_module_is_registered_once() -> None:
    given: list[object] = ["platform", platform, "platform", "memory"]
    with hutch.open("memory://", plugins=given) as db:
        assert plugin_names(db) == [
            "file",
            "import_sql",
            "jsonl",
            "memory",
            "platform",
            "postgres",
            "sqlite",
        ]
    with hutch.open("memory://", plugins=[platform, "platform"]) as db:
        assert db.plugins.get_plugin("platform") is None  # known under the module's name
        assert set(db.models.models()) == set(platform.MODELS)


def test_a_named_plugin_loads_with_autoloading_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(AUTOLOAD_OFF, "1")
    with hutch.open("memory://", plugins=["memory", "auth"]) as db:
        assert plugin_names(db) == ["auth", "memory"]
        assert set(db.models.models()) == {*platform.MODELS, *auth.MODELS}


@pytest.mark.usefixtures("autoloading")
def test_an_unknown_name_is_refused_with_the_names_there_are() -> None:
    unknown = "no installed hutch plugin is named 'platfrom'"
    with pytest.raises(hutch.ConfigError, match=unknown) as caught:
        hutch.open("memory://", plugins=["platfrom"])
    message = str(caught.value)
    assert "domain plugins (they act only when named): auth, fastapi_users, platform;" in message
    assert "file, import_sql, jsonl, memory, postgres, sqlite" in message


def test_an_installed_domain_plugin_acts_only_when_named(tmp_path: Path) -> None:
    install_distribution(tmp_path, "hutch_billing", BILLING, "hutch.domains", "billing")
    broken = "raise ImportError('needs libfoo')\n"
    install_distribution(tmp_path, "hutch_broken", broken, "hutch.domains", "broken")
    result = run_python(
        tmp_path,
        """
        import hutch
        with hutch.open("memory://") as db:
            print(db.models.models(), db.indexes.index_ids())
        with hutch.open("memory://", plugins=["billing"]) as db:
            print([model.__qualname__ for model in db.models.models()], db.indexes.index_ids())
        try:
            hutch.open("memory://", plugins=["broken"])
        except hutch.PluginError as error:
            print(error)
        """,
    )
    assert result.returncode == 0, result.stderr
    unnamed, named, failed = result.stdout.splitlines()
    assert unnamed == "[] []"
    assert named == "['Invoice'] ['invoices.customer']"
    assert "'broken'" in failed
    assert "hutch_broken 1.0" in failed
    assert "needs libfoo" in failed
    assert "leave 'broken' out of plugins=[...]" in failed


def test_two_installed_plugins_of_one_name_are_refused(tmp_path: Path) -> None:
    install_distribution(tmp_path, "hutch_billing", BILLING, "hutch.domains", "billing")
    install_distribution(tmp_path, "hutch_invoices", BILLING, "hutch.domains", "billing")
    install_distribution(tmp_path, "hutch_imposter", BILLING, "hutch", "platform")
    result = run_python(
        tmp_path,
        """
        import hutch
        for name in ("billing", "platform"):
            try:
                hutch.open("memory://", plugins=[name])
            except hutch.PluginError as error:
                print(error)
        """,
    )
    assert result.returncode == 0, result.stderr
    billing, platform_ = result.stdout.splitlines()
    assert "two installed plugins are named 'billing'" in billing
    assert "hutch_billing 1.0" in billing
    assert "hutch_invoices 1.0" in billing
    assert "hutch_imposter 1.0" in platform_
    assert "hutch.plugins.platform" in platform_
