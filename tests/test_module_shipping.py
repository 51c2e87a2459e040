"""Functions whose modules live only on the client: the host is sent each pure-Python
module it lacks when a function imports it, once per session, from memory; compiled
modules, excluded ones and ones over the size limit are clear errors; the host's own
copy wins unless the runtime prefers the client's, and a version difference is logged.

Every package here is written into a folder on the test process's ``sys.path`` only,
and each test first checks (with shipping off) that the host really cannot import it.
"""

from __future__ import annotations

import concurrent.futures
from typing import TYPE_CHECKING, Any

import pytest

from actorcluster import RemoteFunctionError, Runtime, RuntimeGroup
from client_modules import client_path, compiled_module, distribution, write_tree
from logcapture import captured_logs
from waiting import wait_until

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from sshbed import SshBed

HOSTS = ["localhost", "host-1"]

CHAIN = {
    "shipme/__init__.py": """
        from .models import Thing
        __version__ = "0.3"
    """,
    "shipme/models.py": """
        class Thing:
            def __init__(self, value):
                self.value = value
    """,
    "shipme/chain.py": """
        from .sub import deeper
        def run(x):
            return deeper.run(x) + 1
    """,
    "shipme/sub/__init__.py": "",
    "shipme/sub/deeper.py": """
        import shipme_helper
        def run(x):
            return shipme_helper.double(x)
    """,
    "shipme_helper.py": """
        def double(x):
            return 2 * x
    """,
}


def _kwargs(bed: SshBed, host: str, **extra: Any) -> dict[str, Any]:
    return {**({} if host == "localhost" else bed.connection_kwargs), **extra}


@pytest.fixture(scope="module", params=HOSTS)
def host(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def runtime(ssh_bed: SshBed, host: str) -> Iterator[Runtime]:
    rt = Runtime(host, connection_kwargs=_kwargs(ssh_bed, host))
    yield rt
    rt.cleanup()


@pytest.fixture(scope="module")
def unshipped(ssh_bed: SshBed, host: str) -> Iterator[Runtime]:
    """The same host with shipping off: what the host itself can import."""
    rt = Runtime(host, connection_kwargs=_kwargs(ssh_bed, host, ship_modules=False))
    yield rt
    rt.cleanup()


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Path]:
    with client_path(tmp_path / "client") as root:
        root.mkdir()
        yield root


def _returns(runtime: Runtime, function: Any, **kwargs: Any) -> Any:
    return next(iter(runtime.execute_function(function, **kwargs).function_returns))


def _host_lacks(unshipped: Runtime, *names: str) -> None:
    def importable(names: tuple[str, ...]) -> list[str]:
        import importlib.util

        return [name for name in names if importlib.util.find_spec(name) is not None]

    assert _returns(unshipped, importable, names=names) == []


def _sent(logs: list[dict[str, Any]], module: str | None = None) -> list[dict[str, Any]]:
    return [
        event
        for event in logs
        if event["event"] == "modules.sent" and module in (None, event["module"])
    ]


def test_a_package_only_on_the_client_runs_on_a_host_that_lacks_it(
    runtime: Runtime, unshipped: Runtime, client: Path
) -> None:
    write_tree(client, CHAIN)
    _host_lacks(unshipped, "shipme", "shipme_helper")

    def use_package() -> tuple[int, str, str, str]:
        import shipme.chain

        return (
            shipme.chain.run(20),
            shipme.__version__,
            type(shipme.__spec__.loader).__name__,
            shipme.chain.__file__,
        )

    with captured_logs() as logs:
        value, version, loader, file = _returns(runtime, use_package)
        again = _returns(runtime, use_package)
    assert (value, version, loader) == (41, "0.3", "_ShippedLoader")
    assert file == str(client / "shipme" / "chain.py")  # where it lives on the client
    assert again[0] == 41
    shipped = sorted(event["module"] for event in _sent(logs))
    assert shipped == sorted(
        [
            "shipme",
            "shipme.chain",
            "shipme.models",
            "shipme.sub",
            "shipme.sub.deeper",
            "shipme_helper",
        ]
    )


def test_shipped_modules_are_never_written_on_the_host(
    runtime: Runtime, unshipped: Runtime, client: Path
) -> None:
    write_tree(client, {"memonly/__init__.py": "VALUE = 7\n"})

    def use() -> tuple[int, list[str]]:
        import os

        import memonly

        return memonly.VALUE, os.listdir(".")

    value, listing = _returns(runtime, use)
    assert value == 7
    assert not any("memonly" in name for name in listing)
    _host_lacks(unshipped, "memonly")  # the host still has none


def test_a_class_pickled_by_reference_is_shipped_to_unpickle_an_argument(
    runtime: Runtime, client: Path
) -> None:
    write_tree(
        client,
        {"refpkg/__init__.py": "class Box:\n    def __init__(self, v):\n        self.v = v\n"},
    )
    import refpkg  # the client has it imported: cloudpickle sends Box by reference

    def unbox(box: Any) -> int:
        return int(box.v) * 2

    assert _returns(runtime, unbox, box=refpkg.Box(21)) == 42


def test_concurrent_calls_fetch_a_module_once_and_later_calls_fetch_nothing(
    runtime: Runtime, client: Path
) -> None:
    write_tree(client, {"oncepkg.py": "import time\nSTAMP = time.time()\n"})

    def stamp() -> float:
        import oncepkg

        return float(oncepkg.STAMP)

    with captured_logs() as logs:
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            stamps = list(pool.map(lambda _: _returns(runtime, stamp), range(6)))
        later = _returns(runtime, stamp)
    assert len(set(stamps)) == 1  # one module, run once on the host
    assert later == stamps[0]
    assert len(_sent(logs, "oncepkg")) == 1


def test_a_compiled_extension_module_is_a_clear_error_naming_it_and_the_clients_version(
    runtime: Runtime, unshipped: Runtime, client: Path
) -> None:
    write_tree(client, {"natpkg/__init__.py": "PURE = True\n"})
    compiled_module(client / "natpkg" / "_speed")
    compiled_module(client / "natmod")
    distribution(client, "natpkg", "1.2.3")
    _host_lacks(unshipped, "natpkg", "natmod")

    def pure_part() -> bool:
        import natpkg

        return bool(natpkg.PURE)

    def native_part() -> None:
        import natpkg._speed  # noqa: F401

    def native_module() -> None:
        import natmod  # noqa: F401

    assert _returns(runtime, pure_part) is True  # the package itself is pure Python
    with pytest.raises(RemoteFunctionError) as caught:
        runtime.execute_function(native_part)
    assert caught.value.exc_type == "builtins.ModuleNotFoundError"
    message = str(caught.value.__cause__)
    assert "'natpkg._speed'" in message
    assert "compiled extension module" in message
    assert "install natpkg on the host (the client has natpkg 1.2.3)" in message
    with pytest.raises(RemoteFunctionError) as caught:
        runtime.execute_function(native_module)
    assert "install natmod on the host" in str(caught.value.__cause__)


def _write_host_copy(source: str) -> str:
    """On the host: put a module of its own where its functions import from (the
    working directory, first on the agent's path)."""
    import os

    with open("skewmod.py", "w", encoding="utf-8") as file:
        file.write(source)
    return os.getcwd()


def _skew_version() -> tuple[str, str]:
    import skewmod

    return skewmod.__version__, type(skewmod.__spec__.loader).__name__


@pytest.mark.parametrize("prefer_client", [False, True])
def test_the_hosts_own_newer_version_wins_unless_the_runtime_prefers_the_clients(
    ssh_bed: SshBed, host: str, client: Path, prefer_client: bool
) -> None:
    write_tree(client, {"skewmod.py": '__version__ = "1.0"\n'})
    kwargs = _kwargs(ssh_bed, host, ship_modules_prefer_client=prefer_client)
    runtime = Runtime(host, connection_kwargs=kwargs)
    try:
        _returns(runtime, _write_host_copy, source='__version__ = "2.0"\n')
        with captured_logs() as logs:
            first = _returns(runtime, _skew_version)
            second = _returns(runtime, _skew_version)
            if not prefer_client:
                wait_until(lambda: any(e["event"] == "modules.version_skew" for e in logs))
    finally:
        runtime.cleanup()
    assert first == second
    skews = [event for event in logs if event["event"] == "modules.version_skew"]
    if prefer_client:
        assert first == ("1.0", "_ShippedLoader")
        assert len(_sent(logs, "skewmod")) == 1
    else:
        assert first == ("2.0", "SourceFileLoader")
        assert _sent(logs, "skewmod") == []
        assert len(skews) == 1  # once, however many calls
        assert skews[0]["host_version"] == "2.0"
        assert skews[0]["client_version"] == "1.0"
        assert skews[0]["module"] == "skewmod"


def test_excluded_and_oversized_modules_are_clear_errors_and_shipping_can_be_off(
    client: Path,
) -> None:
    write_tree(
        client,
        {
            "expkg/__init__.py": "OPEN = 1\n",
            "expkg/private.py": "TOKEN = 'kept on the client'\n",
            "bigmod.py": "DATA = '" + "x" * 5000 + "'\n",
        },
    )
    kwargs = {"ship_modules_exclude": ["expkg.private"], "ship_modules_max_size": 2000}
    runtime = Runtime("localhost", connection_kwargs=kwargs)
    off = Runtime("localhost", connection_kwargs={"ship_modules": False})

    def open_part() -> int:
        import expkg

        return int(expkg.OPEN)

    def private_part() -> str:
        import expkg.private

        return str(expkg.private.TOKEN)

    def big() -> int:
        import bigmod

        return len(bigmod.DATA)

    try:
        assert _returns(runtime, open_part) == 1
        with pytest.raises(RemoteFunctionError) as caught:
            runtime.execute_function(private_part)
        assert "excluded from shipping (ship_modules_exclude)" in str(caught.value.__cause__)
        with pytest.raises(RemoteFunctionError) as caught:
            runtime.execute_function(big)
        assert "over the 2000 byte limit" in str(caught.value.__cause__)
        with pytest.raises(RemoteFunctionError) as caught:
            off.execute_function(open_part)
        assert str(caught.value.__cause__) == "No module named 'expkg'"
    finally:
        runtime.cleanup()
        off.cleanup()


def test_a_group_broadcast_ships_to_every_host_once_each(ssh_bed: SshBed, client: Path) -> None:
    write_tree(
        client,
        {"grouppkg/__init__.py": "from .inner import VALUE\n", "grouppkg/inner.py": "VALUE = 5\n"},
    )

    def use(factor: int) -> int:
        import grouppkg

        return int(grouppkg.VALUE) * factor

    hosts = [host.name for host in ssh_bed.hosts]
    kwargs = ssh_bed.connection_kwargs
    with captured_logs() as logs, RuntimeGroup(hosts=hosts, connection_kwargs=kwargs) as group:
        tasks = group.execute_function(use, broadcast=True, execute_async=False, factor=2)
        again = group.execute_function(use, broadcast=True, execute_async=False, factor=3)
    assert [next(iter(task.function_returns)) for task in tasks] == [10] * len(hosts)
    assert [next(iter(task.function_returns)) for task in again] == [15] * len(hosts)
    sent = sorted((event["host"], event["module"]) for event in _sent(logs))
    assert sent == sorted(
        (host, module) for host in hosts for module in ("grouppkg", "grouppkg.inner")
    )


def test_bad_shipping_options_are_configuration_errors_naming_the_key() -> None:
    from actorcluster import ConfigurationError

    cases = {
        "ship_modules": "yes",
        "ship_modules_prefer_client": 1,
        "ship_modules_exclude": ["ok", "../etc"],
        "ship_modules_max_size": 0,
    }
    for key, value in cases.items():
        with pytest.raises(ConfigurationError, match=key):
            Runtime("localhost", connection_kwargs={key: value})
