"""Text on a page: the one way anything a user typed or a city's file holds reaches HTML.

A name from OpenStreetMap (anyone may edit it upstream), a grid's note or a unit's name can land in three places on
a folium page: in the HTML itself, inside a JavaScript template literal (folium's ``Tooltip`` writes its text
between backticks), and through ``innerHTML`` (``GeoJsonTooltip`` writes feature properties so). ``html.escape``
is enough for the first and the last but leaves `` ` `` and ``$`` alone, which end a template literal or open a
``${…}`` in it. :func:`page_text` escapes for all three: HTML's five characters, and the backtick, the dollar sign
and the backslash as numeric character references, which a browser shows as the characters themselves and
JavaScript sees as plain text.

Inline scripts carry the page's nonce (:func:`with_nonce`), so that the Content-Security-Policy the API sends runs
those and nothing injected.
"""

from __future__ import annotations

import html
import re
from typing import Any

import folium
import geopandas as gpd
import pandas as pd

_MORE = str.maketrans({"`": "&#96;", "$": "&#36;", "\\": "&#92;"})


def page_text(value: Any) -> str:
    """``value`` as text that is inert in HTML, in an attribute, in a JavaScript template literal and through
    ``innerHTML`` (see the module docstring)."""
    return html.escape("" if value is None else str(value), quote=True).translate(_MORE)


def safe_frame(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """A copy whose text columns (the properties a ``GeoJsonTooltip`` shows) are :func:`page_text`."""
    out = frame.copy()
    for column in out.columns:
        if column != out.geometry.name and (out[column].dtype == object or pd.api.types.is_string_dtype(out[column])):
            out[column] = out[column].map(lambda v: page_text(v) if isinstance(v, str) else v)
    return out


def safe_features(collection: dict[str, Any]) -> dict[str, Any]:
    """A GeoJSON FeatureCollection (or Feature) whose string properties are :func:`page_text`."""
    def props(feature: dict[str, Any]) -> dict[str, Any]:
        return {**feature, "properties": {k: page_text(v) if isinstance(v, str) else v
                                          for k, v in (feature.get("properties") or {}).items()}}
    if collection.get("type") == "Feature":
        return props(collection)
    return {**collection, "features": [props(f) for f in collection.get("features", [])]}


def tooltip(text: Any) -> folium.Tooltip:
    """A tooltip showing ``text`` as text."""
    return folium.Tooltip(page_text(text))


_INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc\s*=)(?![^>]*\bnonce\s*=)(?=[\s>])", re.I)
_NONCE = re.compile(r"^[A-Za-z0-9+/=_-]{16,}$")


def with_nonce(page: str, nonce: str | None) -> str:
    """Every inline ``<script>`` of ``page`` marked with ``nonce`` (scripts with a ``src`` are allowed by origin)."""
    if nonce is None:
        return page
    if not _NONCE.match(nonce):
        raise ValueError("a nonce is 16 or more base64 characters")
    return _INLINE_SCRIPT.sub(f'<script nonce="{nonce}"', page)
