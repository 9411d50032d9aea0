"""Reserved evaluation faces and pack-evaluation themes are decided by code point, variants included."""

import pytest

from rdtf_engine.data.fluent_split import PACK_EVAL_SETS, code_points, is_reserved, pack_eval_set


@pytest.mark.parametrize("name", ["1f600", "1f64f", "1f910", "1f92f", "1f970", "1f97a", "1f62e-200d-1f4a8",
                                  "1f44b-1f600"])
def test_reserved_faces_and_their_variants(name):
    assert is_reserved(code_points(name))


@pytest.mark.parametrize("name", ["1f5ff", "1f650", "1f90f", "1f930", "1f96f", "1f97b", "1f44b-1f3fd", "2764-fe0f"])
def test_neighbours_are_not_reserved(name):
    assert not is_reserved(code_points(name))


def test_pack_sets_are_disjoint_full_and_not_reserved():
    seen = set()
    for name, members in PACK_EVAL_SETS.items():
        assert len(members) == 24 and not seen & set(members)
        seen |= set(members)
        assert not any(is_reserved((cp,)) for cp in members)
        assert pack_eval_set((members[0], 0x1F3FD)) == name
    assert pack_eval_set((0x1F44B,)) is None


@pytest.mark.parametrize("bad", ["", "xyz", "1f44b--1f3fd", "1234567", "../1f600"])
def test_bad_names_raise(bad):
    with pytest.raises(ValueError):
        code_points(bad)
