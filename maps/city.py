"""The city overview map: buildings coloured by households, key places, district lines.

Government intranets have no internet, so every script and stylesheet the page loads is served by gridpatrol
itself (``maps/static/vendor``: Leaflet 1.9.3; d3 3.5.5 for branca's colour-scale legends), and the page needs
no basemap: it is drawn from the city's own data on a plain background. A tile URL may add a basemap (an intranet tile
server). :func:`map_to_html` refuses to produce a page that would still fetch anything from another host.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any

import folium
import geopandas as gpd
import mapclassify
import numpy as np
from branca.element import Figure, MacroElement
from jinja2 import Template

from gis.geo.crs import require_crs
from maps.text import page_text, safe_frame, tooltip

STATIC_URL = "/static"
VENDOR = f"{STATIC_URL}/vendor"
BASEMAP_JS = f"{STATIC_URL}/basemap.js"
"""The intranet basemap under every map page (GET /basemap.json says which): see that file."""

# CDN assets folium/branca reference → the copies gridpatrol serves. Anything else remote is an error.
LOCAL_ASSETS: dict[str, str] = {
    "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.js": f"{VENDOR}/leaflet/leaflet.js",
    "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.css": f"{VENDOR}/leaflet/leaflet.css",
    "https://cdnjs.cloudflare.com/ajax/libs/d3/3.5.5/d3.min.js": f"{VENDOR}/d3/d3.min.js",
    # folium.plugins.HeatMap's Leaflet.heat (the copy folium ships, with its weights patch)
    "https://cdn.jsdelivr.net/gh/python-visualization/folium@main/folium/templates/leaflet_heat.min.js":
        f"{VENDOR}/leaflet-heat/leaflet-heat.min.js",
}

KIND_COLOURS: dict[str, str] = {
    "police": "#1f4e9c", "school": "#e08a00", "kindergarten": "#f2b134", "university": "#b35c00",
    "hospital": "#d62728", "clinic": "#ff6f6f", "market": "#2ca02c", "elderly_home": "#9467bd",
    "community_centre": "#17becf", "townhall": "#0b6e75", "fire_station": "#8c1c13",
    "construction_site": "#7f7f7f",
}
HOUSEHOLD_PALETTE = ["#f1eef6", "#d0d1e6", "#a6bddb", "#74a9cf", "#2b8cbe", "#045a8d"]
NON_RESIDENTIAL_COLOUR = "#d9d9d9"
ATTRIBUTION = "Map data © OpenStreetMap contributors (ODbL)"


class RemoteAssetError(RuntimeError):
    """The rendered page would load a script or stylesheet from another host."""


def quantile_bounds(data: np.ndarray, k: int) -> list[float]:
    """Upper bounds of up to ``k`` quantile classes of ``data`` (mapclassify); with ``k`` or fewer distinct values,
    one class each. (Quantiles of values that repeat can tie: mapclassify then makes fewer classes, as wanted.)"""
    distinct = np.unique(data)
    if distinct.size <= k:
        return [float(v) for v in distinct]
    with warnings.catch_warnings():  # "not enough unique values to form k classes": fewer classes is the point
        warnings.simplefilter("ignore", UserWarning)
        return sorted({float(b) for b in mapclassify.Quantiles(data, k=k).bins})


def _household_classes(values: np.ndarray, k: int = 6) -> list[float]:
    """Upper bounds of up to ``k`` quantile classes of the buildings that hold households."""
    positive = values[values > 0]
    return quantile_bounds(positive, k) if positive.size else [1.0]


def city_map(
    buildings: gpd.GeoDataFrame,
    places: gpd.GeoDataFrame,
    districts: gpd.GeoDataFrame,
    *,
    title: str,
    grids: gpd.GeoDataFrame | None = None,
    communities: gpd.GeoDataFrame | None = None,
    extent: Any | None = None,
    tile_url: str | None = None,
    tile_attribution: str = "",
) -> folium.Map:
    """A folium map of one city (all frames in WGS-84).

    Only Leaflet is loaded (folium's jQuery/Bootstrap/Font Awesome defaults are dropped): key places are circle
    markers, not icon markers, which would need those.
    """
    for frame, what in ((buildings, "buildings"), (places, "key places"), (districts, "districts"),
                        (grids, "grids"), (communities, "communities")):
        if frame is not None:
            require_crs(frame, what=what)
    minx, miny, maxx, maxy = (extent.bounds if extent is not None else buildings.total_bounds)
    fmap = folium.Map(location=[(miny + maxy) / 2, (minx + maxx) / 2], tiles=None, zoom_start=15,
                      control_scale=True, prefer_canvas=True,
                      zoomSnap=0.25)  # fit the city snugly rather than at the next whole zoom level
    fmap.default_js = [("leaflet", f"{VENDOR}/leaflet/leaflet.js"), ("basemap", BASEMAP_JS)]
    fmap.default_css = [("leaflet_css", f"{VENDOR}/leaflet/leaflet.css")]
    if tile_url:
        folium.TileLayer(tiles=tile_url, attr=tile_attribution or ATTRIBUTION, name="basemap").add_to(fmap)
    fmap.fit_bounds([[miny, minx], [maxy, maxx]])

    if extent is not None:
        folium.GeoJson(
            gpd.GeoSeries([extent], crs=buildings.crs).__geo_interface__, name="data extent",
            style_function=lambda _f: {"color": "#555", "weight": 1, "fill": False,
                                       "dashArray": "4 4"},  # the basemap shows through
            interactive=False,
        ).add_to(fmap)

    bounds = _household_classes(buildings["households"].to_numpy(dtype=float))
    colours = HOUSEHOLD_PALETTE[-len(bounds):]

    def colour(households: float) -> str:
        if households <= 0:
            return NON_RESIDENTIAL_COLOUR
        for upper, c in zip(bounds, colours, strict=True):
            if households <= upper:
                return c
        return colours[-1]

    shown = buildings[["id", "name", "building_type", "use", "levels", "households", "households_source",
                       "geometry"]].copy()
    shown["name"] = shown["name"].fillna("")
    shown["fill"] = shown["households"].map(colour)
    folium.GeoJson(
        safe_frame(shown), name="buildings (households)",
        style_function=lambda f: {"color": "#4d4d4d", "weight": 0.5, "fillColor": f["properties"]["fill"],
                                  "fillOpacity": 0.9},
        highlight_function=lambda _f: {"weight": 2, "color": "#000"},
        tooltip=folium.GeoJsonTooltip(
            fields=["name", "building_type", "use", "levels", "households", "households_source"],
            aliases=["name", "type", "use", "levels", "households", "count is"],
        ),
    ).add_to(fmap)
    _page(fmap).html.add_child(folium.Element(_legend(bounds, colours)))

    if grids is not None and not grids.empty:
        shown_grids = grids[["code", "households", "buildings", "note", "geometry"]].assign(
            note=grids["note"].fillna("in the band"))
        folium.GeoJson(
            safe_frame(shown_grids), name=f"grids ({len(grids)})",
            style_function=lambda f: {"color": "#252525" if f["properties"]["note"] == "in the band" else "#d7191c",
                                      "weight": 1.5, "fill": True, "fillOpacity": 0.0},
            highlight_function=lambda _f: {"weight": 3, "fillOpacity": 0.1},
            tooltip=folium.GeoJsonTooltip(fields=["code", "households", "buildings", "note"],
                                          aliases=["grid", "households", "buildings", ""]),
        ).add_to(fmap)
    if communities is not None and not communities.empty:
        folium.GeoJson(
            safe_frame(communities[["name", "code", "geometry"]].assign(code=communities["code"].fillna(""))),
            name=f"communities ({len(communities)})",
            style_function=lambda _f: {"color": "#e66101", "weight": 3.5, "fill": False},
            tooltip=folium.GeoJsonTooltip(fields=["name", "code"], aliases=["community", "code"]),
        ).add_to(fmap)
    if not districts.empty:
        folium.GeoJson(
            safe_frame(districts[["name", "code", "geometry"]].assign(code=districts["code"].fillna(""))),
            name="districts",
            style_function=lambda _f: {"color": "#c51b7d", "weight": 3, "fill": False, "dashArray": "8 6"},
            tooltip=folium.GeoJsonTooltip(fields=["name", "code"], aliases=["district", "code"]),
        ).add_to(fmap)

    for kind, group in places.groupby("kind", sort=True):
        layer = folium.FeatureGroup(name=page_text(f"{kind.replace('_', ' ')} ({len(group)})"))
        colour_ = KIND_COLOURS.get(str(kind), "#333")
        for row in group.itertuples():
            label = f"{kind.replace('_', ' ')}: {row.name}" if row.name else kind.replace("_", " ")
            folium.CircleMarker([row.geometry.y, row.geometry.x], radius=6, color="#fff", weight=1.5,
                                fill=True, fill_color=colour_, fill_opacity=1.0, tooltip=tooltip(label)).add_to(layer)
        layer.add_to(fmap)

    folium.LayerControl(collapsed=False).add_to(fmap)
    _page(fmap).html.add_child(folium.Element(_title_box(title, buildings, places, grids)))
    _Attribution(ATTRIBUTION).add_to(fmap)
    return fmap


class _Attribution(MacroElement):
    """Adds the ODbL credit to Leaflet's own attribution control (there is no tile layer to carry it)."""

    _template = Template(
        "{% macro script(this, kwargs) %}"
        "{{ this._parent.get_name() }}.attributionControl.addAttribution({{ this.text_json }});"
        "{% endmacro %}"
    )

    def __init__(self, text: str) -> None:
        super().__init__()
        self._name = "Attribution"
        self.text_json = json.dumps(page_text(text))


def _page(fmap: folium.Map) -> Figure:
    root = fmap.get_root()
    assert isinstance(root, Figure)
    return root


def _legend(bounds: list[float], colours: list[str]) -> str:
    """Discrete classes (mapclassify quantiles of the buildings with households), one swatch each."""
    rows = [(NON_RESIDENTIAL_COLOUR, "0 (not homes)")]
    lower = 1
    for upper, c in zip(bounds, colours, strict=True):
        rows.append((c, f"{lower:,}–{int(upper):,}" if int(upper) > lower else f"{lower:,}"))
        lower = int(upper) + 1
    items = "".join(
        f'<div><span style="display:inline-block;width:14px;height:14px;background:{c};'
        f'border:1px solid #666;margin-right:6px;vertical-align:middle"></span>{page_text(label)}</div>'
        for c, label in rows
    )
    return (
        '<div id="gp-legend" style="position:fixed;bottom:70px;left:10px;z-index:1000;background:#fff;'
        'padding:6px 10px;border:1px solid #999;border-radius:4px;font:13px/1.5 sans-serif">'
        "<b>Households per building</b><br><small>estimated unless confirmed</small>"
        f"{items}</div>"
    )


def _title_box(title: str, buildings: gpd.GeoDataFrame, places: gpd.GeoDataFrame,
               grids: gpd.GeoDataFrame | None) -> str:
    households = int(buildings["households"].sum())
    confirmed = int((buildings["households_source"] == "confirmed").sum())
    grid_line = ""
    if grids is not None and not grids.empty:
        in_band = int(grids["note"].isna().sum())
        grid_line = (f"<br>{len(grids):,} grids, {in_band:,} within the household band "
                     "(outlined red: outside it, see the tooltip)")
    return (
        '<div id="gp-title" style="position:fixed;top:10px;left:60px;z-index:1000;background:#fff;'
        'padding:8px 12px;border:1px solid #999;border-radius:4px;font:14px/1.4 sans-serif;max-width:420px">'
        f"<b>{page_text(title)}</b><br>{len(buildings):,} buildings · {households:,} households "
        f"({'all estimated' if confirmed == 0 else f'{confirmed:,} buildings confirmed'}) · "
        f"{len(places):,} key places{grid_line}</div>"
    )


_REMOTE = re.compile(r"""<(?:script|link)\b[^>]*?(?:src|href)\s*=\s*["'](https?:)?//[^"']+["']""", re.I)


def map_to_html(fmap: folium.Map) -> str:
    """The page as HTML with every asset served locally. (The API marks its inline scripts with the request's
    Content-Security-Policy nonce as it sends it: ``api.headers``.)

    Raises
    ------
    RemoteAssetError
        A script or stylesheet would still come from another host (a folium element gridpatrol does not
        vendor yet): vendor it into ``maps/static/vendor`` and add it to :data:`LOCAL_ASSETS`.
    """
    page = _page(fmap).render()
    for remote, local in LOCAL_ASSETS.items():
        page = page.replace(remote, local)
    leftover = _REMOTE.search(page)
    if leftover:
        raise RemoteAssetError(f"map page would load a remote asset: {leftover.group(0)}")
    return page


def message_page(title: str, message: str, *, status_hint: str = "") -> str:
    """A plain page for when there is nothing to draw: says why and what to do, never a blank map."""
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>gridpatrol</title></head>"
        "<body style='font:16px/1.5 sans-serif;margin:3em'>"
        f"<h1>{page_text(title)}</h1><p>{page_text(message)}</p>"
        f"{f'<p><code>{page_text(status_hint)}</code></p>' if status_hint else ''}</body></html>"
    )


CITY_PAGE = Path(__file__).resolve().parent / "static" / "city" / "index.html"


def tiled_city_page(title: str, bounds: tuple[float, float, float, float], buildings: int,
                    classes: list[float]) -> str:
    """The city map of a city too large to hold its layers in the page: the page carries its title, its bounds and
    the colour classes; ``maps/static/city/city.js`` draws every layer from the vector tiles. ``classes``: the upper
    bounds of the household classes (``gis.planning.store.city.household_classes``)."""
    config = {"bounds": [round(v, 6) for v in bounds], "classes": classes,
              "palette": HOUSEHOLD_PALETTE[-len(classes):], "non_residential": NON_RESIDENTIAL_COLOUR,
              "kinds": KIND_COLOURS}
    data = json.dumps(config).replace("<", "\\u003c")  # inert inside <script>
    summary = f"{buildings:,} buildings · drawn from vector tiles"
    return (CITY_PAGE.read_text(encoding="utf-8").replace("{config}", data)
            .replace("{summary}", page_text(summary)).replace("{title}", page_text(title)))
