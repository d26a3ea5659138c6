from dataclasses import dataclass

import orjson
import pytest

from services.escalation.packing import pack, unpack
from services.shared.codec import PoisonRecord


@dataclass
class Rec:
    offset: int
    key: bytes | None
    value: bytes | None


def test_a_pack_keeps_each_fact_with_its_offset_and_key_in_order():
    records = [Rec(7, b"a", b'{"x": 1}'), Rec(8, b"b", b'{"y": "\\u00e9"}'), Rec(9, None, b"[]")]
    packs, dead = pack(records)
    assert dead == []
    assert [unpack(p) for p in packs] == [[(7, "a", '{"x": 1}'), (8, "b", '{"y": "\\u00e9"}'), (9, None, "[]")]]


def test_a_value_that_is_not_json_still_travels_so_the_agent_can_dead_letter_it_with_its_offset():
    packs, dead = pack([Rec(3, b"junk", b"\x00not json")])
    assert dead == [] and unpack(packs[0]) == [(3, "junk", "\x00not json")]


def test_bytes_that_are_not_text_and_tombstones_are_dead_at_the_pack_stage():
    bad, empty = Rec(1, b"k", b"\xff\xfe"), Rec(2, b"k", None)
    packs, dead = pack([bad, empty, Rec(3, b"k", b"{}")])
    assert [(r.offset, type(e).__name__) for r, e in dead] == [(1, "PoisonRecord"), (2, "PoisonRecord")]
    assert "UTF-8" in str(dead[0][1]) and "tombstone" in str(dead[1][1])
    assert [row[0] for p in packs for row in unpack(p)] == [3]


def test_packs_close_at_the_size_limit_and_keep_the_order():
    records = [Rec(i, b"k", b'{"n": "' + b"x" * 100 + b'"}') for i in range(50)]
    packs, _ = pack(records, limit=1000)
    assert len(packs) > 1
    assert [row[0] for p in packs for row in unpack(p)] == list(range(50))


def test_nothing_to_pack_gives_no_pack():
    assert pack([]) == ([], [])


@pytest.mark.parametrize("value", [b"not json", b'{"a": 1}', orjson.dumps([[1, "k"]]), orjson.dumps([["1", "k", "{}"]])])
def test_a_record_that_is_not_a_pack_is_poison_naming_the_problem(value):
    with pytest.raises(PoisonRecord, match="packed record"):
        unpack(value)
