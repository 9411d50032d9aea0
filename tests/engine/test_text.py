"""Frozen text encoder (offline MiniLM) and the caption augmentation of docs/method.md §2.3."""

import random

import torch

from rdtf_engine.core.config import TextConfig
from rdtf_engine.model.text import NULL_PROMPT, TextEncoder, augment_caption, get_text_encoder


def test_token_states_are_fixed_length_and_masked():
    enc = get_text_encoder(TextConfig(), "cpu")
    states, mask = enc.encode(["grinning face bouncing", NULL_PROMPT])
    assert states.shape == (2, 32, 384) and mask.shape == (2, 32) and mask.dtype == torch.bool
    assert int(mask[0].sum()) > int(mask[1].sum()) == 2  # null prompt = [CLS][SEP]
    again, _ = enc.encode(["grinning face bouncing"])
    assert torch.equal(again[0], states[0])  # frozen and cached: identical


def test_cache_never_evicts_a_prompt_of_the_current_batch():
    enc = TextEncoder(TextConfig(), "cpu", cache_size=2)
    prompts = ["a red heart beating", "a cat waving", "a dog jumping", "a star spinning"]
    states, _ = enc.encode(prompts)  # more new prompts than the cache holds: must not KeyError
    assert states.shape[0] == 4 and len(enc._cache) == 2


def test_augment_caption_is_seeded_word_dropout_and_null_prompt():
    a = [augment_caption("a red heart beating fast", random.Random(3), 0.2, 0.1) for _ in range(1)]
    b = [augment_caption("a red heart beating fast", random.Random(3), 0.2, 0.1) for _ in range(1)]
    assert a == b
    rng = random.Random(0)
    outs = [augment_caption("one two three four five", rng, 0.2, 0.1) for _ in range(2000)]
    null = sum(o == NULL_PROMPT for o in outs) / len(outs)
    hashes = sum(o.split().count("#") for o in outs if o) / (5 * sum(1 for o in outs if o))
    assert 0.07 < null < 0.13 and 0.17 < hashes < 0.23
    assert augment_caption("cat", random.Random(1), 0.0, 0.0) == "cat"
