"""The command line, on the local runtime."""

from __future__ import annotations

import structlog

from actorcluster.cli import main


def test_run_streams_the_output_and_returns_the_exit_code(capsys):
    try:
        assert main(["run", "localhost", "--", "echo", "from the cli"]) == 0
        assert "from the cli" in capsys.readouterr().out
        assert main(["run", "localhost", "--", "exit 7"]) == 7
    finally:
        structlog.reset_defaults()


def test_info_prints_the_facts(capsys):
    try:
        assert main(["info", "localhost"]) == 0
        assert "cpu_cores" in capsys.readouterr().out
    finally:
        structlog.reset_defaults()


def test_an_unreachable_host_is_exit_status_2_with_a_message(capsys):
    try:
        assert main(["run", "no-such-host.invalid", "--", "true"]) == 2
        assert "no-such-host.invalid" in capsys.readouterr().err
    finally:
        structlog.reset_defaults()
