"""A host cannot use module shipping to read the client's files: the client answers
only for names of modules importable here, with the ``.py`` source of a pure-Python
module, never a path the host gives; secrets in other files, excluded modules, the
standard library and compiled modules are never sent. Checked with a hostile agent
over a real session, and as a law over arbitrary names."""

from __future__ import annotations

import ast
import os
import sys
import textwrap
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actorcluster import Runtime, RuntimeTask
from actorcluster.remote.module_lookup import ModulePolicy, answer_for, client_spec
from agent_harness import SRC
from client_modules import client_path, compiled_module, write_tree
from waiting import wait_until

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

SECRET = "s3cr3t-token-never-sent"

CLIENT_FILES = {
    "shipok.py": "VALUE = 1\n",
    "hidden.py": f"TOKEN = {SECRET!r}\n",
    "secret.txt": SECRET,
    "private.key": SECRET,
    "conf/.env": f"TOKEN={SECRET}\n",
    "conf/settings.json": f'{{"token": "{SECRET}"}}\n',
    "pkg/__init__.py": "",
    "pkg/data.txt": SECRET,
}

HOSTILE_NAMES: list[Any] = [
    "shipok",
    "hidden",
    "hidden.TOKEN",
    "secret.txt",
    "secret",
    "private.key",
    "../secret.txt",
    "/etc/passwd",
    "conf/.env",
    "conf..env",
    "conf.settings",
    "pkg.data",
    "pkg/data.txt",
    "os",
    "os.path",
    "_json",
    "natpkg._speed",
    "shipok\x00.txt",
    "",
    ".",
    "a" * 5000,
    12345,
    b"shipok",
    None,
    ["shipok"],
]


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "client"
    write_tree(root, CLIENT_FILES)
    compiled_module(root / "natpkg" / "_speed")
    with client_path(root):
        yield root


POLICY = ModulePolicy(exclude=("hidden",))


def _assert_safe(answer: dict[str, Any]) -> None:
    """An answer holds the ``.py`` source of the module it names, or nothing."""
    assert SECRET not in repr(answer)
    if answer.get("found"):
        source, origin = answer["source"], answer["origin"]
        if origin == "":
            assert (source, answer["package"]) == (b"", True)  # a namespace package
        else:
            assert origin.endswith(".py")
            spec = client_spec(answer["name"])
            assert spec is not None and spec.origin == origin
            with open(origin, "rb") as file:
                assert file.read() == source


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=repr)
def test_no_name_a_host_can_send_reads_anything_but_a_modules_source(
    client: Path, name: object
) -> None:
    answer = answer_for(name, POLICY)
    _assert_safe(answer)
    if name == "shipok":
        assert answer["found"] and answer["source"] == b"VALUE = 1\n"
    elif name == "hidden":
        assert "excluded" in answer["refused"]
    elif name in ("os", "os.path", "_json"):
        assert "standard library" in answer["refused"]
    elif name == "natpkg._speed":
        assert "compiled extension module" in answer["refused"]
    else:
        assert not answer["found"]


_NAME_CHARACTERS = st.sampled_from(
    [
        *"abcdefghijklmnopqrstuvwxyz_.0/\\\x00 -~",
        "shipok",
        "pkg",
        "conf",
        "hidden",
        "secret",
        "..",
        "os",
    ]
)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(parts=st.lists(_NAME_CHARACTERS, max_size=8))
def test_any_name_gets_a_safe_answer_and_never_an_error(client: Path, parts: list[str]) -> None:
    _assert_safe(answer_for("".join(parts), POLICY))


FAKE_AGENT = textwrap.dedent(
    """
    #!{python}
    import os, pickle, sys, tempfile
    sys.path.insert(0, {src!r})
    from actorcluster.remote.agent import frames
    from actorcluster.remote.agent.frames import Kind

    NAMES = {names!r}
    FLOOD = {flood}
    stdin, out = sys.stdin.buffer, sys.stdout.buffer
    for _ in range(2):  # the real agent's second stage and its modules: ignored
        stdin.read(int(stdin.readline()))

    def send(kind, rid, payload):
        out.write(frames.encode_frame(kind, rid, payload))
        out.flush()

    out.write(frames.READY_MARKER)
    python = "%d.%d.%d" % sys.version_info[:3]  # functions may run: it is the client's
    send(Kind.HELLO, 0, {{"pid": os.getpid(), "python": python, "cwd": "/", "hostname": "evil"}})
    reader = frames.FrameReader(stdin.read1)
    answers, probe = {{}}, None
    while (frame := reader.read_frame()) is not None:
        kind, rid, body = frame
        if kind == Kind.PING:
            send(Kind.PONG, rid, {{}})
        elif kind == Kind.FS and body.get("op") == "mkdtemp":
            send(Kind.RESULT, rid, {{"value": tempfile.mkdtemp()}})
        elif kind == Kind.SETUP:
            send(Kind.RESULT, rid, {{"value": body["working_dir"]}})
        elif kind == Kind.RUN and body["cmd"] == "flood":
            for number in range(FLOOD):
                send(Kind.MODULE, 1000 + number, {{"name": "flood_%d" % number}})
                send(Kind.MODULE_VERSION, 0, {{"name": "flood_%d" % number, "version": "1"}})
            send(Kind.EXIT, rid, {{"code": 0}})
        elif kind in (Kind.RUN, Kind.CALL):  # asked during a command: all refused
            probe, probe_kind = rid, kind
            answers.clear()
            for number, name in enumerate(NAMES, 1):
                send(Kind.MODULE, number, {{"name": name}})
        elif kind == Kind.MODULE_SOURCE and rid >= 1000:
            pass  # answers to the flood
        elif kind == Kind.MODULE_SOURCE:
            answers[rid] = body
            if len(answers) == len(NAMES):
                listed = [answers[number] for number in range(1, len(NAMES) + 1)]
                send(Kind.OUTPUT, probe, {{"fd": 1, "data": repr(listed).encode()}})
                if probe_kind == Kind.CALL:
                    send(Kind.RESULT, probe, {{"value": pickle.dumps(None)}})
                else:
                    send(Kind.EXIT, probe, {{"code": 0}})
        elif kind not in (Kind.ACK, Kind.CLOSE, Kind.CANCEL):
            send(Kind.RESULT, rid, {{"value": None}})
    """
).lstrip()


def test_a_hostile_agent_asking_over_a_real_session_gets_no_file_but_module_sources(
    client: Path, tmp_path: Path
) -> None:
    names = [name for name in HOSTILE_NAMES if isinstance(name, (str, int, type(None)))]
    names.append("__main__")  # the client's main script: never sent
    fake = tmp_path / "python3"
    fake.write_text(FAKE_AGENT.format(python=sys.executable, src=SRC, names=names, flood=0))
    fake.chmod(0o755)
    kwargs = {"python": str(fake), "ship_modules_exclude": ["hidden"]}
    runtime = Runtime("localhost", connection_kwargs=kwargs)
    try:  # modules are sent only while a function call is in flight
        task = RuntimeTask("probe").run_function(len, obj=[])
        runtime.execute_task(task, execute_async=False)
        during_command = RuntimeTask("probe").run_command("probe")
        runtime.execute_task(during_command, execute_async=False)
    finally:
        runtime.cleanup()
    refused = ast.literal_eval(during_command.execution_log[0])
    assert all("no function call is in flight" in answer["refused"] for answer in refused)
    answers = ast.literal_eval(task.execution_log[0])
    assert len(answers) == len(names)
    for answer in answers:
        _assert_safe(answer)
    by_name = dict(zip(names, answers, strict=True))
    assert by_name["shipok"]["source"] == b"VALUE = 1\n"  # the one legitimate request
    assert "excluded" in by_name["hidden"]["refused"]
    assert "main script is not sent" in by_name["__main__"]["refused"]
    assert "not a module name" in by_name["/etc/passwd"]["refused"]
    assert os.path.basename(by_name["shipok"]["origin"]) == "shipok.py"


def test_a_flood_of_module_requests_is_bounded_and_the_runtime_stays_responsive(
    client: Path, tmp_path: Path
) -> None:
    from actorcluster.remote.modules import QUEUE_LIMIT

    flood = 3000
    fake = tmp_path / "python3"
    fake.write_text(FAKE_AGENT.format(python=sys.executable, src=SRC, names=[], flood=flood))
    fake.chmod(0o755)
    runtime = Runtime("localhost", connection_kwargs={"python": str(fake)})
    try:
        runtime.execute_task(RuntimeTask("flood").run_command("flood"), execute_async=False)
        session = runtime._handle.context.session
        assert session is not None
        server = session.on_request.__self__  # type: ignore[union-attr]
        assert server.waiting <= QUEUE_LIMIT
        wait_until(
            lambda: server.taken == 2 * flood and server.waiting == 0, 30, "the flood handled"
        )
        assert server.asked + server.dropped <= 2 * flood
        runtime.handle.client().ping().result(5)  # the session still answers at once
    finally:
        runtime.cleanup()
