"""RUN with stdin: STDIN frames reach the command in order, STDIN_EOF closes its stdin,
every chunk is answered with STDIN_TAKEN (the client's credit), and input a command
does not take never blocks the agent."""

from __future__ import annotations

from typing import TYPE_CHECKING

from actorcluster.remote.agent.frames import Kind

if TYPE_CHECKING:
    from agent_harness import AgentProcess


def _run_with_input(agent: AgentProcess, cmd: str) -> int:
    return agent.start(Kind.RUN, {"cmd": cmd, "env": {}, "cwd": None, "stdin": True})


def _split(frames: list) -> tuple[bytes, bytes, list[int]]:
    out = b"".join(
        f.payload["data"] for f in frames if f.kind == Kind.OUTPUT and f.payload["fd"] == 1
    )
    err = b"".join(
        f.payload["data"] for f in frames if f.kind == Kind.OUTPUT and f.payload["fd"] == 2
    )
    taken = [f.payload["size"] for f in frames if f.kind == Kind.STDIN_TAKEN]
    return out, err, taken


def test_input_reaches_the_command_in_order_and_eof_ends_it(agent: AgentProcess) -> None:
    request = _run_with_input(agent, "cat; echo done >&2")
    chunks = [f"line {n}\n".encode() for n in range(200)]
    for chunk in chunks:
        agent.send(Kind.STDIN, request, {"data": chunk})
    agent.send(Kind.STDIN_EOF, request, {})
    frames, final = agent.replies(request)
    out, err, taken = _split(frames)
    assert (final.kind, final.payload) == (Kind.EXIT, {"code": 0})
    assert out == b"".join(chunks)
    assert err == b"done\n"
    assert taken == [len(chunk) for chunk in chunks]


def test_input_sent_right_after_the_run_is_not_lost(agent: AgentProcess) -> None:
    request = agent.next_id()
    agent._queue(request)
    agent.send(Kind.RUN, request, {"cmd": "wc -c", "env": {}, "cwd": None, "stdin": True})
    agent.send(Kind.STDIN, request, {"data": b"x" * 100_000})
    agent.send(Kind.STDIN_EOF, request, {})
    frames, final = agent.replies(request)
    assert final.payload == {"code": 0}
    assert _split(frames)[0].strip() == b"100000"


def test_binary_input_arrives_byte_exact(agent: AgentProcess) -> None:
    data = bytes(range(256)) * 1024
    request = _run_with_input(agent, "od -An -tx1 -v | tr -d ' \\n' | head -c 64; echo")
    agent.send(Kind.STDIN, request, {"data": data})
    agent.send(Kind.STDIN_EOF, request, {})
    frames, final = agent.replies(request)
    assert final.payload == {"code": 0}
    assert _split(frames)[0].strip() == data[:32].hex().encode()


def test_input_to_a_command_that_closed_its_stdin_is_dropped_and_answered(
    agent: AgentProcess,
) -> None:
    request = _run_with_input(agent, "exec 0<&-; sleep 0.5; echo alive")
    for _ in range(40):  # 2.5 MB: more than a pipe holds
        agent.send(Kind.STDIN, request, {"data": b"y" * 65536})
    frames, final = agent.replies(request)
    out, _, taken = _split(frames)
    assert (out, final.payload) == (b"alive\n", {"code": 0})
    assert taken == [65536] * 40


def test_a_command_that_reads_nothing_does_not_hold_the_agent_up(agent: AgentProcess) -> None:
    request = _run_with_input(agent, "sleep 30")
    for _ in range(20):  # far more than the pipe holds: the writer thread waits, not the reader
        agent.send(Kind.STDIN, request, {"data": b"z" * 65536})
    out, _, final = agent.run("echo meanwhile")
    assert (out, final.payload) == (b"meanwhile\n", {"code": 0})
    agent.send(Kind.CANCEL, 0, {"target": request})
    _, final = agent.replies(request)
    assert (final.kind, final.payload["type"]) == (Kind.ERROR, "cancelled")


def test_input_for_a_finished_or_unknown_command_is_ignored(agent: AgentProcess) -> None:
    request = _run_with_input(agent, "true")
    _, final = agent.replies(request)
    assert final.payload == {"code": 0}
    agent.send(Kind.STDIN, request, {"data": b"late"})
    agent.send(Kind.STDIN_EOF, request, {})
    agent.send(Kind.STDIN, 99_999, {"data": b"nobody"})
    out, _, final = agent.run("echo still fine")
    assert (out, final.payload) == (b"still fine\n", {"code": 0})
    assert agent.queued(request) == []


def test_without_stdin_a_command_reads_an_empty_input_whatever_arrives(
    agent: AgentProcess,
) -> None:
    request = agent.start(Kind.RUN, {"cmd": "cat; echo end", "env": {}, "cwd": None})
    agent.send(Kind.STDIN, request, {"data": b"ignored"})
    frames, final = agent.replies(request)
    assert (_split(frames)[0], final.payload) == (b"end\n", {"code": 0})
