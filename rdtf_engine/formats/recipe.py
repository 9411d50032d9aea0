"""The generation recipe (prompt, seed, model, engine version...) stored inside exported files.

One JSON object, embedded where each format has a standard text slot, so a sticker found in a chat can be
traced back and regenerated: PNG/APNG ``iTXt`` (keyword ``rdtf:recipe``), WebP XMP, GIF comment extension,
WebM/Matroska tag ``RDTF_RECIPE``. ``check`` reads it back from the raw container, not through Pillow.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping
from typing import Any

from rdtf_engine import __version__
from rdtf_engine.core.errors import InputError
from rdtf_engine.core.requests import LOCAL_FIELDS

PNG_KEYWORD = "rdtf:recipe"
GIF_PREFIX = "rdtf-recipe "
WEBM_TAG = "RDTF_RECIPE"
MAX_RECIPE_BYTES = 16 * 1024
_XMP_NS = "urn:rdtf-sticker-studio:recipe:1"
_XMP_RE = re.compile(r"<rdtf:recipe>(.*?)</rdtf:recipe>", re.DOTALL)
# Never written into a file: they name things on the author's machine (a recipe from an older gallery entry may
# still carry ``model_path``).
PRIVATE_KEYS = frozenset(LOCAL_FIELDS) | {"model_path"}


def normalise_recipe(recipe: Mapping[str, Any] | None) -> dict | None:
    """A JSON-safe copy with ``engine_version`` filled in and local paths left out, or None when there is
    nothing to store."""
    if not recipe:
        return None
    if not isinstance(recipe, Mapping):
        raise InputError("recipe must be a JSON object (prompt, seed, model, ...)")
    out = {str(k): v for k, v in recipe.items() if str(k) not in PRIVATE_KEYS and not str(k).startswith("_")}
    out.setdefault("engine_version", __version__)
    text = json.dumps(out, sort_keys=True, ensure_ascii=True, default=str)
    if len(text) > MAX_RECIPE_BYTES:
        raise InputError(f"recipe is over {MAX_RECIPE_BYTES:,} bytes of JSON")
    return json.loads(text)


def recipe_text(recipe: Mapping[str, Any]) -> str:
    # ASCII-only JSON: GIF comments are 7-bit text by spec and every other slot accepts it unchanged.
    return json.dumps(dict(recipe), sort_keys=True, ensure_ascii=True, separators=(",", ":"), default=str)


def gif_comment(recipe: Mapping[str, Any]) -> bytes:
    return (GIF_PREFIX + recipe_text(recipe)).encode("ascii")


def xmp_packet(recipe: Mapping[str, Any]) -> bytes:
    body = html.escape(recipe_text(recipe), quote=False)
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        f'<rdf:Description rdf:about="" xmlns:rdtf="{_XMP_NS}"><rdtf:recipe>{body}</rdtf:recipe>'
        '</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="r"?>'
    ).encode()


def parse_recipe(texts: Mapping[str, str]) -> dict | None:
    """Find the recipe in a container's text slots: PNG text chunks, GIF comment, WebP XMP, WebM tags."""
    candidates = []
    for key, value in texts.items():
        if not isinstance(value, str):
            continue
        k = key.lower()
        if k == PNG_KEYWORD or k == WEBM_TAG.lower():
            candidates.append(value)
        elif k == "comment" and value.startswith(GIF_PREFIX):
            candidates.append(value[len(GIF_PREFIX) :])
        elif k == "xmp":
            m = _XMP_RE.search(value)
            if m:
                candidates.append(html.unescape(m.group(1)))
    for text in candidates:
        try:
            doc = json.loads(text[: MAX_RECIPE_BYTES * 2])
        except (ValueError, RecursionError):
            continue
        if isinstance(doc, dict):
            return doc
    return None
