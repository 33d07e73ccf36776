"""Sans-IO outbox: order, newest-wins replacement, overflow."""

import pytest

from roomactors.engineio.outbox import Outbox, OutboxOverflow
from roomactors.engineio.packets import SharedMessage


def m(text: str) -> SharedMessage:
    return SharedMessage(text)


def texts(outbox: Outbox) -> list[str]:
    return [item.data if isinstance(item, SharedMessage) else f"<{item}>" for item in outbox.take_all()]


def test_fifo() -> None:
    outbox = Outbox(10, 1000)
    for text in "abc":
        outbox.append((m(text),))
    assert texts(outbox) == ["a", "b", "c"]
    assert not outbox and outbox.messages == 0 and outbox.bytes == 0


def test_replace_key_newest_wins_and_moves_to_the_end() -> None:
    outbox = Outbox(10, 1000)
    outbox.append((m("list1"),), replace_key="rooms")
    outbox.append((m("a"),))
    outbox.append((m("list2"),), replace_key="rooms")
    outbox.append((m("b"),))
    outbox.append((m("other"),), replace_key="x")
    assert texts(outbox) == ["a", "list2", "b", "other"]


def test_replace_after_delivery_appends_again() -> None:
    outbox = Outbox(10, 1000)
    outbox.append((m("list1"),), replace_key="rooms")
    assert texts(outbox) == ["list1"]
    outbox.append((m("list2"),), replace_key="rooms")
    outbox.append((m("list3"),), replace_key="rooms")
    assert texts(outbox) == ["list3"]


def test_overflow_by_messages() -> None:
    outbox = Outbox(3, 1000)
    for text in "abc":
        outbox.append((m(text),))
    with pytest.raises(OutboxOverflow):
        outbox.append((m("d"),))
    assert outbox.messages == 3


def test_overflow_by_bytes() -> None:
    outbox = Outbox(100, 10)
    outbox.append((m("12345"),))
    outbox.append((m("67890"),))
    with pytest.raises(OutboxOverflow):
        outbox.append((m("x"),))


def test_replacement_keeps_one_entry_per_key() -> None:
    outbox = Outbox(2, 1000)
    outbox.append((m("a"),))
    outbox.append((m("l1"),), replace_key="k")
    outbox.append((m("l2"),), replace_key="k")
    assert texts(outbox) == ["a", "l2"]


def test_keyed_entries_do_not_count_against_the_limits() -> None:
    """A room list bigger than the byte limit is shared by every session and
    bounded by its key: it must not disconnect the clients it is sent to."""
    outbox = Outbox(2, 10)
    outbox.append((m("x" * 1000),), replace_key="rooms")
    outbox.append((m("y" * 2000),), replace_key="rooms")
    outbox.append((m("a"),))
    outbox.append((m("b"),))
    with pytest.raises(OutboxOverflow):
        outbox.append((m("c"),))
    assert texts(outbox) == ["y" * 2000, "a", "b"]


def test_groups_stay_together_and_count_each_message() -> None:
    outbox = Outbox(3, 1000)
    outbox.append((m("head"), SharedMessage(b"\x01")))
    outbox.append((m("x"),))
    with pytest.raises(OutboxOverflow):
        outbox.append((m("y"), m("z")))
    assert texts(outbox) == ["head", b"\x01", "x"]


def test_control_packets_are_not_counted() -> None:
    outbox = Outbox(1, 1)
    outbox.append((m("a"),))
    outbox.append_control("2")
    outbox.append_control("1")
    assert texts(outbox) == ["a", "<2>", "<1>"]
