"""An error kept past its except block holds no frames (codec.detached): a poison record's dead
letter, waiting for its batch's sends, must not keep the record alive in a reference cycle."""

from __future__ import annotations

import gc
import weakref
from dataclasses import dataclass

from services.shared.codec import PoisonRecord, detached
from services.tension.rekey import route


@dataclass
class Record:  # what the stages read of an aiokafka ConsumerRecord
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: tuple = ()


def test_a_detached_error_keeps_its_class_and_message_only():
    try:
        try:
            raise ValueError("inner")
        except ValueError as inner:
            raise PoisonRecord("severity: not an integer") from inner
    except PoisonRecord as exc:
        kept = detached(exc)
    assert type(kept) is PoisonRecord and str(kept) == "severity: not an integer"
    assert kept.__traceback__ is None and kept.__context__ is None and kept.__cause__ is None


def test_a_poison_records_dead_letter_does_not_keep_it_alive_in_a_cycle():
    gc.disable()  # a cycle would be freed only by the collector: it must not be needed
    try:
        records = [Record("incidents.events.v1", 0, 7, b"k", b"\xff not json"),
                   Record("incidents.events.v1", 0, 8, b"k", b'{"event_type": "IncidentReported"}')]
        alive = [weakref.ref(r) for r in records]
        dead: list = []
        route(records, sources=6, partitions=3, dead=dead)
        assert [r.offset for r, _ in dead] == [7, 8]
        assert all(isinstance(e, PoisonRecord) and e.__traceback__ is None for _, e in dead)
        del records, dead
        assert [ref() for ref in alive] == [None, None]
    finally:
        gc.enable()


async def test_a_batchs_dead_letters_go_a_bounded_number_at_a_time_and_all_of_them():
    import asyncio

    from services.shared.stage import DEAD_LETTERS_IN_FLIGHT, dead_letter_all

    class Sink:
        def __init__(self):
            self.sent, self.now, self.most = [], 0, 0

        async def dead_letter(self, record, error, input_name):
            self.now += 1
            self.most = max(self.most, self.now)
            await asyncio.sleep(0)
            self.now -= 1
            self.sent.append(record.offset)

    sink = Sink()
    dead = [(Record("incidents.events.v1", 0, n, None, b"x"), "why", "incidents") for n in range(1_234)]
    await dead_letter_all(sink, dead)
    assert sorted(sink.sent) == list(range(1_234))
    assert sink.most == DEAD_LETTERS_IN_FLIGHT
