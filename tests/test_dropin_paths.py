"""Point 9 of issue 13: paths get ``~`` and ``$VAR`` expanded as lazycluster's shell did,
with the runtime's environment on the host, and nothing else (nothing is executed).

The expansion is checked against ``sh``'s own, on generated paths where the two must
agree, and end to end on a real host.
"""

from __future__ import annotations

import os
import pwd
import re
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actorcluster import Runtime, UsageError
from actorcluster.runtimes.paths import expand_path, needs_expansion, tilde_user

NAMES = ["A", "b_2", "_x", "LONG_NAME", "HOME"]
"""Variable names the generated paths use (all set in the environment)."""


def _home_of(user: str) -> str | None:
    try:
        return pwd.getpwnam(user).pw_dir
    except KeyError:
        return None


def _shell_expansion(word: str, env: dict[str, str]) -> str:
    """What ``sh`` makes of ``word`` unquoted, without field splitting or globbing."""
    script = f'set -f; IFS=""; printf "%s" {word}'
    done = subprocess.run(
        ["/bin/sh", "-c", script], env=env, capture_output=True, text=True, check=True, timeout=10
    )
    return done.stdout


literal = st.text(alphabet="abcXYZ019._-/", min_size=1, max_size=6)
"""Characters the shell gives no meaning to."""
variable = st.sampled_from(NAMES).flatmap(
    lambda name: st.sampled_from([f"${name}", f"${{{name}}}"])
)
tilde = st.sampled_from(["", "~", "~/", "~root", "~root/", "~no-such-user-xyz/"])
paths = st.builds(
    lambda head, parts: head + "".join(parts),
    tilde,
    st.lists(st.one_of(literal, variable), max_size=6),
).filter(bool)
values = st.text(alphabet="abc/._- *?'\"$`()\\", max_size=8)
"""Values the variables take: a value is not expanded further, whatever it holds."""


@settings(max_examples=150, deadline=None)
@given(path=paths, env_values=st.lists(values, min_size=len(NAMES), max_size=len(NAMES)))
def test_paths_expand_as_the_shell_expands_them(path, env_values):
    env = dict(zip(NAMES, env_values, strict=True))
    env["HOME"] = env["HOME"] or "/home/someone"  # an empty HOME: the shell differs by shell
    env["PATH"] = os.defpath
    for match in re.finditer(r"\$(\w+)|\$\{(\w+)\}", path):  # "$A" + "0": the name is A0
        env.setdefault(match.group(1) or match.group(2), "set")
    assert expand_path(path, env, _home_of) == _shell_expansion(path, env)


@given(
    path=st.text(alphabet="ab /'\"`()$;|&*?[]\\\n~{}", max_size=20).filter(
        lambda text: not needs_expansion(text) and tilde_user(text) is None
    )
)
def test_everything_else_stays_literal(path):
    assert expand_path(path, {"HOME": "/h"}, _home_of) == path


def test_an_unset_variable_is_an_error_naming_it_not_an_empty_string():
    with pytest.raises(UsageError, match=r"\$NOT_SET.*not set on host-9"):
        expand_path("$NOT_SET/x", {}, _home_of, "host-9")


# --- on a real host -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def runtime(ssh_bed):
    rt = Runtime("host-1", connection_kwargs=ssh_bed.connection_kwargs)
    yield rt
    rt.cleanup()


def test_create_dir_expands_variables_and_the_tilde_on_the_host(runtime, tmp_path):
    runtime.add_env_variables({"BASE": str(tmp_path)})
    assert runtime.create_dir("$BASE/plain") == str(tmp_path / "plain")
    assert runtime.create_dir("${BASE}/braced/deeper") == str(tmp_path / "braced" / "deeper")
    assert (tmp_path / "plain").is_dir() and (tmp_path / "braced" / "deeper").is_dir()
    home = pwd.getpwuid(os.getuid()).pw_dir
    assert runtime.create_dir("$HOME") == home  # the host's own environment
    assert runtime.create_dir("~") == home
    assert runtime.delete_dir("$BASE/braced")
    assert not (tmp_path / "braced").exists()


def test_paths_agree_with_what_the_hosts_shell_echoes(runtime, tmp_path):
    runtime.add_env_variables({"BASE": str(tmp_path), "SUB": "a-b"})
    for path in ("$BASE/$SUB", "${BASE}/x_${SUB}.d", "~/.", "$WORKING_DIR/$SUB"):
        assert runtime.create_dir(path) == os.path.normpath(runtime.echo(path).strip())


def test_nothing_in_a_path_is_executed(runtime, tmp_path):
    runtime.add_env_variables({"BASE": str(tmp_path)})
    marker = tmp_path / "executed"
    for trap in (f"$(touch {marker})", f"`touch {marker}`", "a b", "'q'", '"dq"', "x;y"):
        created = runtime.create_dir(f"$BASE/{trap}")
        assert created == f"{tmp_path}/{trap}" and os.path.isdir(created)
    assert not marker.exists()


def test_an_unset_variable_in_a_path_names_it(runtime):
    with pytest.raises(UsageError, match=r"\$DROPIN_UNSET.*not set on host-1"):
        runtime.create_dir("$DROPIN_UNSET/x")
    with pytest.raises(UsageError, match=r"\$DROPIN_UNSET"):
        runtime.delete_dir("$DROPIN_UNSET/")


def test_a_working_dir_with_a_variable_is_expanded_on_the_host(ssh_bed, tmp_path):
    home = pwd.getpwuid(os.getuid()).pw_dir
    with Runtime("host-1", working_dir="$HOME", connection_kwargs=ssh_bed.connection_kwargs) as rt:
        assert rt.working_dir == home
        assert rt.echo("$PWD").strip() == home
        rt.add_env_variables({"BASE": str(tmp_path)})
        rt.working_dir = "${BASE}/moved"
        assert rt.working_dir == str(tmp_path / "moved") and (tmp_path / "moved").is_dir()
        assert rt.echo("$PWD").strip() == str(tmp_path / "moved")
        assert rt.create_dir("relative") == str(tmp_path / "moved" / "relative")


def test_the_local_runtime_expands_paths_the_same_way(tmp_path, monkeypatch):
    monkeypatch.setenv("DROPIN_BASE", str(tmp_path))
    with Runtime("localhost", working_dir="${DROPIN_BASE}/wd") as rt:
        assert rt.working_dir == str(tmp_path / "wd")
        assert rt.create_dir("$DROPIN_BASE/made") == str(tmp_path / "made")
