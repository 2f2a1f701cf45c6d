"""The portal's translations: the catalogue holds every string the code and the
templates mark, German translates them all, and the compiled .mo matches the .po."""
from __future__ import annotations

from pathlib import Path

from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
PORTAL = ROOT / "app" / "portal"
GERMAN = PORTAL / "translations" / "de" / "LC_MESSAGES"


def marked_strings() -> set:
    with open(PORTAL / "babel.cfg") as config:
        method_map, options_map = parse_mapping_cfg(config)
    keywords = {**DEFAULT_KEYWORDS, "_l": None}
    return {message if isinstance(message, str) else tuple(message)
            for _, _, message, _, _ in extract_from_dir(str(ROOT), method_map, options_map,
                                                        keywords=keywords)}


def catalogue_ids(catalog) -> set:
    return {message_id for message_id, _ in pairs(catalog)}


def test_german_translates_every_marked_string():
    with open(GERMAN / "portal.po", "rb") as po:
        german = read_po(po)
    marked = marked_strings()
    assert len(marked) > 250
    assert marked - catalogue_ids(german) == set(), "run the pybabel steps in babel.cfg"
    untranslated = [message.id for message in german if message.id and (
        message.fuzzy or not all(message.string if isinstance(message.string, tuple)
                                 else [message.string]))]
    assert untranslated == []


def pairs(catalog) -> set:
    def frozen(value):
        return value if isinstance(value, str) else tuple(value)

    return {(frozen(message.id), frozen(message.string)) for message in catalog if message.id}


def test_the_compiled_catalogue_matches_the_po_file():
    with open(GERMAN / "portal.po", "rb") as po, open(GERMAN / "portal.mo", "rb") as mo:
        assert pairs(read_po(po)) == pairs(read_mo(mo))
