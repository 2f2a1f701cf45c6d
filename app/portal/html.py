"""Staff-written HTML (knowledge-base articles, announcements) made safe to show:
a small allow-list of tags and attributes, links limited to http(s) and mailto.
Nothing a client types ever goes through here: that is printed as text."""
from __future__ import annotations

import nh3
from markupsafe import Markup

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "em", "h2", "h3", "h4", "h5", "hr", "i",
    "img", "kbd", "li", "ol", "p", "pre", "s", "small", "strong", "sub", "sup", "table",
    "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "abbr": {"title"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
}
URL_SCHEMES = {"http", "https", "mailto"}


def _local_images_only(tag: str, attribute: str, value: str) -> str | None:
    # The portal loads nothing from other sites: an image must be served by this app.
    if tag == "img" and attribute == "src":
        lowered = value.strip().lower()
        if lowered.startswith(("http:", "https:", "//", "mailto:")):
            return None
    return value


def safe_html(html: str | None) -> Markup:
    cleaned = nh3.clean(html or "", tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES,
                        url_schemes=URL_SCHEMES, link_rel="noopener noreferrer nofollow",
                        attribute_filter=_local_images_only)
    return Markup(cleaned)
