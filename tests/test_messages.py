"""Messages and errors cross threads and hosts: they must survive pickling unchanged."""

from __future__ import annotations

import dataclasses
import inspect
import pickle

import cloudpickle
import pytest
from hypothesis import given
from hypothesis import strategies as st

import actorcluster.errors as errors_module
from actorcluster.messages import events, steps, tasks

MESSAGE_CLASSES = [
    cls
    for module in (steps, tasks, events)
    for _, cls in inspect.getmembers(module, inspect.isclass)
    if dataclasses.is_dataclass(cls) and cls.__module__ == module.__name__
]


@pytest.mark.parametrize("cls", MESSAGE_CLASSES, ids=lambda cls: cls.__name__)
def test_messages_are_frozen_slotted_and_keyword_only(cls):
    params = cls.__dataclass_params__
    assert params.frozen
    assert hasattr(cls, "__slots__")
    assert all(field.kw_only for field in dataclasses.fields(cls))


STEPS = st.one_of(
    st.builds(steps.RunCommand, command=st.text()),
    st.builds(steps.SendFile, local_path=st.text(), remote_path=st.none() | st.text()),
    st.builds(steps.GetFile, remote_path=st.text(), local_path=st.none() | st.text()),
    st.builds(steps.RunFunction, payload=st.binary(), name=st.text()),
)
EXPLICIT = {
    tasks.Task: st.builds(
        tasks.Task,
        name=st.text(),
        steps=st.lists(STEPS, max_size=4).map(tuple),
        env=st.lists(st.tuples(st.text(), st.text()), max_size=3).map(tuple),
    ),
}


@pytest.mark.parametrize("cls", MESSAGE_CLASSES, ids=lambda cls: cls.__name__)
@given(data=st.data())
def test_every_message_survives_a_cloudpickle_round_trip(cls, data):
    message = data.draw(EXPLICIT.get(cls, st.builds(cls)))
    assert cloudpickle.loads(cloudpickle.dumps(message)) == message


ERROR_CLASSES = [
    cls
    for _, cls in inspect.getmembers(errors_module, inspect.isclass)
    if issubclass(cls, errors_module.ActorClusterError)
]


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda cls: cls.__name__)
def test_every_error_survives_pickle_with_its_message(cls):
    arity = len(inspect.signature(cls.__init__).parameters) - 1
    args = tuple(f"arg{i}" for i in range(max(arity, 1)))
    try:
        error = cls(*args)
    except TypeError:
        error = cls("only")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is cls
    assert copy.args == error.args
    assert str(copy) == str(error)


def test_lazyclusters_base_name_is_ours():
    assert errors_module.LazyclusterError is errors_module.ActorClusterError


def test_errors_a_lazycluster_user_catches_as_valueerror_still_are():
    assert issubclass(errors_module.UsageError, ValueError)
    assert issubclass(errors_module.UnknownProcessKeyError, ValueError)
