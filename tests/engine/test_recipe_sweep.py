"""tools/recipe_sweep.py: a variant is a recipe's request with named fields replaced, and nothing else."""

from __future__ import annotations

import pytest


@pytest.fixture
def sweep(load_script):
    return load_script("tools/recipe_sweep.py")


def test_variants_parse_typed_fields_and_refuse_unknown_ones(sweep):
    assert sweep.parse_variant("base:") == ("base", {})
    name, fields = sweep.parse_variant("all3:trainable=all,lr=3e-4,steps=3000,max_minutes=3.5,mixed_precision=no")
    assert name == "all3" and fields == {"trainable": "all", "lr": 3e-4, "steps": 3000, "max_minutes": 3.5,
                                         "mixed_precision": "no"}
    assert isinstance(fields["steps"], int) and isinstance(fields["lr"], float)
    assert sweep.parse_variant("more:steps=3600,resume=1") == ("more", {"steps": 3600, "resume": True})
    assert sweep.parse_variant("c:continue_curriculum=1,word_dropout=0,curriculum=none") == (
        "c", {"continue_curriculum": True, "word_dropout": 0.0, "curriculum": "none"})
    with pytest.raises(SystemExit, match="unknown field"):
        sweep.parse_variant("x:nonsense=1")
    with pytest.raises(SystemExit, match="NAME"):
        sweep.parse_variant("../etc:lr=1")  # a variant names a folder under --out: plain names only
    with pytest.raises(ValueError):
        sweep.parse_variant("x:steps=many")
