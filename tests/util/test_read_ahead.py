"""``read_ahead``: an iterator pulled in a thread of its own, errors raised where they happened,
and the iterator closed in that thread when the consumer stops early."""

from __future__ import annotations

import threading

import pytest

from skfleet.util.read_ahead import read_ahead


def test_an_error_comes_out_after_the_items_before_it():
    def items():
        yield 1
        yield 2
        raise ValueError("third item unreadable")

    got = []
    with pytest.raises(ValueError, match="third"), read_ahead(items()) as ahead:
        for item in ahead:
            got.append(item)
    assert got == [1, 2]


def test_stopping_early_closes_the_iterator_in_its_own_thread():
    closed_in = []
    consumer = threading.get_ident()

    def items():
        try:
            yield from range(1_000)
        finally:
            closed_in.append(threading.get_ident())

    with read_ahead(items()) as ahead:
        assert next(ahead) == 0
    assert len(closed_in) == 1 and closed_in[0] != consumer
    assert not [t for t in threading.enumerate() if t.name == "skfleet-read-ahead"]


def test_it_reads_ahead_while_the_consumer_works():
    pulled = threading.Event()

    def items():
        yield "first"
        pulled.set()  # reached while the consumer still holds the first item
        yield "second"

    with read_ahead(items()) as ahead:
        assert next(ahead) == "first"
        assert pulled.wait(5)
        assert list(ahead) == ["second"]
