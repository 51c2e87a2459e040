"""lazycluster's exceptions, built with lazycluster's positional arguments, expose
lazycluster's attributes, and survive pickle (ml-tooling/lazycluster
``src/lazycluster/exceptions.py`` and ``cluster/exceptions.py`` are the oracle)."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actorcluster.cluster.exceptions import MasterStartError
from actorcluster.exceptions import (
    InvalidRuntimeError,
    LazyclusterError,
    NoPortsLeftError,
    NoRuntimesDetectedError,
    PathCreationError,
    PortInUseError,
    TaskExecutionError,
)

pytestmark = pytest.mark.timeout(120)

texts = st.text(max_size=40)
ports = st.integers(min_value=1, max_value=65535)
causes = st.one_of(st.none(), texts.map(ValueError), texts.map(OSError))


class _Task:
    """What lazycluster hands TaskExecutionError: a RuntimeTask (here: its name)."""

    def __init__(self, name: str) -> None:
        self.name = name


@given(msg=texts, predecessor=causes)
def test_lazycluster_error_takes_msg_and_predecessor(msg, predecessor):
    error = LazyclusterError(msg, predecessor)
    assert error.msg == msg
    assert error.predecessor_excp is predecessor
    expected = msg + " Predecessor Exception: " + str(predecessor) if predecessor else msg
    assert str(error) == expected
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.msg, str(copy)) == (msg, expected)
    assert type(copy.predecessor_excp) is type(predecessor)


@given(values=st.tuples(st.integers(0, 50), texts, texts, texts, texts, causes))
def test_task_execution_error_takes_lazyclusters_arguments(values):
    step, name, host, path, output, pre = values
    task = _Task(name)
    error = TaskExecutionError(step, task, host, path, output, pre)
    assert error.task_step_index == step
    assert error.task is task
    assert error.host == host and error.output == output
    assert error.execution_log_file_path == (path or None)
    assert error.predecessor_excp is pre
    assert isinstance(error, LazyclusterError) and error.msg == str(error)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.task_step_index, copy.task, copy.host, copy.output) == (step, name, host, output)
    assert str(copy) == str(error)
    five = TaskExecutionError(step, task, host, path, output)  # predecessor_excp defaults
    assert five.predecessor_excp is None


@given(host=texts, port=ports, cause=texts)
def test_master_start_error_takes_host_port_cause(host, port, cause):
    error = MasterStartError(host, port, cause)
    assert (error.host, error.port, error.cause) == (host, port, cause)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.host, copy.port, copy.cause, str(copy)) == (host, port, cause, str(error))


@given(port=ports, host=texts.filter(bool))
def test_port_errors_and_the_rest_take_lazyclusters_arguments(port, host):
    group, runtime = object(), type("R", (), {"host": host})()
    assert PortInUseError(port).port == port
    with_group = PortInUseError(port, group)
    assert (with_group.port, with_group.group, with_group.runtime) == (port, group, None)
    with_runtime = PortInUseError(port, None, runtime)
    assert (with_runtime.group, with_runtime.runtime) == (None, runtime)
    assert pickle.loads(pickle.dumps(with_group)).port == port
    assert isinstance(NoPortsLeftError(), LazyclusterError)
    assert str(pickle.loads(pickle.dumps(NoPortsLeftError()))) == str(NoPortsLeftError())
    assert InvalidRuntimeError(host).host == host
    assert pickle.loads(pickle.dumps(InvalidRuntimeError(host))).host == host
    path = PathCreationError("/data/x", host)
    assert (path.path, path.host) == ("/data/x", host)
    assert PathCreationError("/data/x").host is None
    cause = OSError("no ssh config")
    detected = NoRuntimesDetectedError(cause)
    assert detected.predecessor_excp is cause
    assert NoRuntimesDetectedError().predecessor_excp is None
