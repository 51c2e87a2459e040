"""The session ledger keeps the books a re-attach needs: data frames numbered as sent,
kept until the agent acknowledges them (the rest resent in order), an ACK due every
``ACK_EVERY`` bytes received, and a window past which a sender waits."""

from __future__ import annotations

import pytest

from actorcluster.remote.ledger import ACK_EVERY, WINDOW, SessionLedger

pytestmark = pytest.mark.timeout(30)


def test_frames_are_kept_until_acknowledged_and_the_rest_resent_in_order() -> None:
    ledger = SessionLedger()
    for data in (b"one", b"two", b"three"):
        ledger.keep(data)
    assert ledger.sent == 3 and ledger.kept_bytes == 11
    ledger.forget_acknowledged(1)
    assert ledger.unacknowledged() == [b"two", b"three"]
    assert ledger.kept_bytes == 8
    ledger.forget_acknowledged(1)  # an old acknowledgement changes nothing
    assert ledger.unacknowledged() == [b"two", b"three"]
    ledger.forget_acknowledged(3)
    assert ledger.unacknowledged() == [] and ledger.kept_bytes == 0
    ledger.keep(b"four")
    assert ledger.sent == 4 and ledger.unacknowledged() == [b"four"]


def test_the_window_is_full_past_its_bytes_until_acknowledged() -> None:
    ledger = SessionLedger()
    ledger.keep(b"x" * WINDOW)
    assert not ledger.full
    ledger.keep(b"y")
    assert ledger.full
    ledger.forget_acknowledged(1)
    assert not ledger.full


def test_an_ack_is_due_every_ack_every_bytes_received() -> None:
    ledger = SessionLedger()
    chunk = ACK_EVERY // 4
    due = [ledger.count_received(chunk) for _ in range(8)]
    assert ledger.received == 8
    assert due.count(True) == 2 and due[3] and due[7]


def test_clearing_forgets_everything_kept() -> None:
    ledger = SessionLedger()
    ledger.keep(b"data")
    ledger.clear()
    assert ledger.unacknowledged() == [] and ledger.kept_bytes == 0 and not ledger.full
    assert "sent=1" in repr(ledger)


def test_frames_kept_after_a_resend_began_are_told_apart_from_those_it_resent() -> None:
    """A re-attach resends what was kept when it began; senders do not wait for it, so
    what they kept meanwhile must still go out after it (else it waits, unsent, for the
    next re-attach)."""
    ledger = SessionLedger()
    for data in (b"a", b"b"):
        ledger.keep(data)
    ledger.forget_acknowledged(1)
    resent, began = ledger.unacknowledged(), ledger.sent
    ledger.keep(b"c")  # a sender, during the resend
    assert resent == [b"b"]
    assert ledger.after(began) == [b"c"]
    assert ledger.after(0) == [b"b", b"c"]
