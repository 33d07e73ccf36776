"""PackedMapping (the handshake's query and headers, one string each) behaves as a dict."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from roomactors.engineio.httpmessages import PackedMapping

texts = st.text(max_size=12)  # ":" and digits included: the packing must not care


@given(st.lists(st.tuples(texts, texts), max_size=8), texts)
def test_a_packed_mapping_reads_like_the_dict_of_its_items(pairs: list[tuple[str, str]], probe: str) -> None:
    expected = dict(pairs)  # the last of equal keys wins, as for dict
    packed = PackedMapping(pairs)
    assert dict(packed) == expected
    assert list(packed) == list(expected) and len(packed) == len(expected)
    assert list(packed.items()) == list(expected.items())
    assert list(packed.values()) == list(expected.values())
    assert (probe in packed) == (probe in expected)
    assert packed.get(probe) == expected.get(probe)
    assert PackedMapping(expected) == expected  # Mapping equality, from a dict too
