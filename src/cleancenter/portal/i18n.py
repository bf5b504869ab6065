"""Languages of the portal: Japanese (the default, as at CCC) and English.

The language comes from ``?lang=ja|en``, else the browser's Accept-Language, else
Japanese. Every text a page shows is a key of `MESSAGES`, merged from the area modules of
`cleancenter.portal.messages`; both languages hold the same keys (a test checks), so a
page never falls back to the other language half-way.
"""

from __future__ import annotations

from collections.abc import Mapping

from cleancenter.portal.messages import AREAS

LANGS = ("ja", "en")
DEFAULT_LANG = "ja"

def _merge(lang: str) -> dict[str, str]:
    merged: dict[str, str] = {}
    for area in AREAS:
        texts: dict[str, str] = getattr(area, lang.upper())
        clash = merged.keys() & texts.keys()
        if clash:
            raise RuntimeError(f"{area.__name__}: keys defined twice: {sorted(clash)}")
        merged.update(texts)
    return merged


MESSAGES: Mapping[str, Mapping[str, str]] = {lang: _merge(lang) for lang in LANGS}


def pick_lang(query_lang: str | None, accept_language: str | None) -> tuple[str, bool]:
    """The page's language, and whether the visitor chose it explicitly (``?lang=``)."""
    if query_lang in LANGS:
        return query_lang, True
    return _from_accept_language(accept_language or ""), False


def _from_accept_language(header: str) -> str:
    """The best of our languages by the header's q-values; ties go to the header's order."""
    best: tuple[float, int, str] | None = None
    for position, part in enumerate(header.split(",")[:32]):
        fields = part.strip().split(";")
        tag = fields[0].strip().lower()
        quality = 1.0
        for param in fields[1:]:
            name, _, value = param.strip().partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        primary = tag.split("-")[0]
        if primary not in LANGS or not 0 < quality <= 1:
            continue
        if best is None or quality > best[0]:  # a tie keeps the earlier one
            best = (quality, position, primary)
    return best[2] if best else DEFAULT_LANG
