"""Importing the package or the command line loads only what is needed: paramiko,
cryptography, dask, rich, structlog and the actor system wait until a command (or a
public name) needs them. Checked in a fresh interpreter through ``sys.modules``."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cli_runner import cli_env

pytestmark = pytest.mark.timeout(60)

HEAVY = (
    "paramiko",
    "cryptography",
    "dask",
    "distributed",
    "rich",
    "structlog",
    "pykka",
    "cloudpickle",
    "asyncio",
    "actorcluster.actors",
    "actorcluster.runtimes",
    "actorcluster.groups",
    "actorcluster.ssh",
    "actorcluster.errors",
)
"""What neither ``import actorcluster`` nor the command line's entry point may load."""


def _loaded_after(code: str) -> list[str]:
    """The heavy modules ``code`` left in ``sys.modules`` of a fresh interpreter."""
    probe = (
        f"import sys\n{code}\n"
        "import json\n"
        f"heavy = {HEAVY!r}\n"
        "print(json.dumps(sorted({h for h in heavy for m in sys.modules "
        "if m == h or m.startswith(h + '.')})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, env=cli_env(), timeout=30, check=True
    )
    return list(json.loads(result.stdout.splitlines()[-1]))


@pytest.mark.parametrize(
    "code",
    [
        "import actorcluster",
        "import actorcluster.cli",
        "from actorcluster.cli import main",
        "from actorcluster.cli.app import cli, main",
    ],
)
def test_importing_the_package_or_the_cli_loads_nothing_heavy(code):
    assert _loaded_after(code) == []


@pytest.mark.parametrize("args", [["--version"], ["--help"]])
def test_version_and_help_load_nothing_heavy(args):
    code = f"from actorcluster.cli import main\nmain({args!r})\nsys.stdout.flush()"
    assert _loaded_after(code) == []


def test_the_keeper_client_needs_only_the_standard_library():
    code = "from actorcluster.cli import main\nimport actorcluster.cli.keeper_client"
    probe = f"import sys\n{code}\nprint(sorted(m for m in sys.modules if m.startswith('click')))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, env=cli_env(), timeout=30, check=True
    )
    assert result.stdout.strip() == b"[]"
    assert _loaded_after(code) == []


def test_a_public_name_is_imported_on_first_use():
    loaded = _loaded_after("import actorcluster\nactorcluster.Runtime")
    assert "paramiko" in loaded and "actorcluster.runtimes" in loaded


def test_lazycluster_import_paths_still_work_without_importing_them_first():
    code = (
        "import actorcluster\n"
        "assert actorcluster.runtimes.Runtime is actorcluster.Runtime\n"
        "assert actorcluster.exceptions.TaskExecutionError is actorcluster.TaskExecutionError\n"
        "from actorcluster.cluster.dask_cluster import DaskCluster\n"
        "from actorcluster import runtime_mgmt\n"
        "try:\n"
        "    actorcluster.no_such_thing\n"
        "except AttributeError:\n"
        "    pass\n"
        "else:\n"
        "    raise SystemExit('no AttributeError')\n"
        "assert 'Runtime' in dir(actorcluster)\n"
    )
    subprocess.run([sys.executable, "-c", code], env=cli_env(), timeout=30, check=True)


def test_the_help_lists_each_commands_own_short_help():
    import click

    from actorcluster.cli import app

    context = click.Context(app.cli)
    for name, (module, short_help) in app._LAZY_COMMANDS.items():
        command = app.cli.get_command(context, name)
        assert command is not None, name
        assert command.get_short_help_str(200) == short_help, name
        assert module == command.callback.__module__, name


THIN_ALLOWED = frozenset(
    {
        "__future__",
        "actorcluster",
        "actorcluster.cli",
        "actorcluster.cli.keeper_client",
        "actorcluster.keeper",
        "actorcluster.keeper.finder",
        "actorcluster.keeper.paths",
        "_socket",
        "json",
        "json.decoder",
        "json.encoder",
        "json.scanner",
        "_json",
        "_sha2",
        "_sha256",
    }
)
"""What a call through the keeper may import beyond what the interpreter's start did:
no ``socket`` or ``signal`` wrapper (their enum conversions), no ``hashlib`` (it loads
OpenSSL), no ``typing``, ``subprocess``, ``select`` or limits module (starting a keeper
needs those, not using one)."""


def test_a_call_through_the_keeper_imports_only_what_it_sends_with():
    probe = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "from actorcluster.cli import main\n"
        "from actorcluster.keeper.paths import identity, keeper_dir\n"
        "from actorcluster.keeper.paths import keeper_wanted, parse_call\n"
        "from actorcluster.cli.keeper_client import through_keeper\n"
        "keeper_wanted(parse_call(['run', 'host-1', '--', 'true']))\n"
        "identity(None)\n"
        "keeper_dir(create=False)\n"
        "import json\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))"
    )
    env = cli_env()
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, env=env, timeout=30, check=True
    )
    loaded = set(json.loads(result.stdout.splitlines()[-1]))
    assert loaded - THIN_ALLOWED == set()


def test_the_ssh_layer_imports_paramiko_without_invoke_until_a_match_exec_line(tmp_path):
    config = tmp_path / "ssh_config"
    config.write_text('Match exec "true"\n    User matched\nHost box\n    HostName 127.0.0.9\n')
    probe = (
        "import sys\n"
        "import actorcluster.ssh\n"
        "import paramiko\n"
        "print('invoke' in sys.modules)\n"
        "from actorcluster.ssh.config_files import load_config\n"
        f"config = load_config({str(config)!r})\n"
        "print(config.lookup('box').get('user'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, env=cli_env(), timeout=30, check=True
    )
    assert result.stdout.decode().split() == ["False", "matched"]


def test_a_cold_run_imports_neither_asyncio_nor_structlog_nor_invoke(ssh_bed):
    probe = (
        "import atexit, json, sys\n"
        "unwanted = ('asyncio', 'structlog', 'rich', 'invoke', 'cloudpickle')\n"
        "atexit.register(lambda: print(json.dumps([m for m in unwanted if m in sys.modules])))\n"
        "sys.argv = ['actorcluster', 'run', 'host-1', '--', 'echo ran']\n"
        "from actorcluster.cli import main\n"
        "sys.exit(main())\n"
    )
    env = cli_env(ssh_bed.ssh_config, ACTORCLUSTER_KEEPER="0")
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, env=env, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == b"ran"
    assert json.loads(result.stdout.splitlines()[-1]) == []


def test_the_command_lines_logging_imports_structlog_at_its_first_shown_event():
    probe = (
        "import sys\n"
        "from actorcluster.logconfig import configure_logging\n"
        "from actorcluster._logging import get_logger\n"
        "configure_logging('warning', json=True, on_first_event=True)\n"
        "log = get_logger('actorcluster.probe')\n"
        "log.info('not.shown', a=1)\n"
        "print('structlog' in sys.modules)\n"
        "log.warning('first.shown', host='h', n=2)\n"
        "log.warning('second.shown', n=3)\n"
        "print('structlog' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, env=cli_env(), timeout=30, check=True
    )
    assert result.stdout.split() == [b"False", b"True"]
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert [(line["event"], line["level"], line.get("n")) for line in lines] == [
        ("first.shown", "warning", 2),
        ("second.shown", "warning", 3),
    ]
    assert lines[0]["host"] == "h" and "timestamp" in lines[0]
