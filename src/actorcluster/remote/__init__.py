"""Talking to the agent on a host.

:class:`AgentClient` is the typed client (a method per request, typed results, each a
:class:`Call`); :class:`AgentSession` multiplexes requests over one byte stream;
:mod:`~actorcluster.remote.bootstrap` gets the agent onto a host;
:class:`ModuleServer` answers an agent that asks for a module its host lacks
(:mod:`~actorcluster.remote.modules`); the agent itself is
the package :mod:`actorcluster.remote.agent`, shipped to the host at connect time. The
wire protocol is spoken here and nowhere else.
"""

from __future__ import annotations

from actorcluster.remote.bootstrap import (
    attach_command,
    first_stage,
    kill_command,
    remote_command,
    source_stage,
    stage_two,
)
from actorcluster.remote.client import (
    AgentClient,
    Call,
    CallOutcome,
    CallRaised,
    CallReturned,
    CommandInput,
    PathInfo,
    Upload,
    Written,
    functions_run_on,
)
from actorcluster.remote.command_input import INPUT_CHUNK, INPUT_WINDOW
from actorcluster.remote.module_lookup import ModulePolicy
from actorcluster.remote.modules import ModuleServer
from actorcluster.remote.session import AgentSession
from actorcluster.remote.streams import ByteStream, PipeStream

__all__ = [
    "INPUT_CHUNK",
    "INPUT_WINDOW",
    "AgentClient",
    "AgentSession",
    "ByteStream",
    "Call",
    "CallOutcome",
    "CallRaised",
    "CallReturned",
    "CommandInput",
    "ModulePolicy",
    "ModuleServer",
    "PathInfo",
    "PipeStream",
    "Upload",
    "Written",
    "attach_command",
    "first_stage",
    "functions_run_on",
    "kill_command",
    "remote_command",
    "source_stage",
    "stage_two",
]
