"""The leaders' map: a unit's children coloured by a chosen measure, with a drill-down, a breadcrumb, an event heat
map, key places, response circles, a grid's patrol route, and the figures as a sortable table beside the map.

Pure drawing: it takes the units and figures (:mod:`gis.oversight.store.leaders`) and returns a folium map; no queries.
Classes come from mapclassify (quantiles of the values present; fewer classes when few distinct values); a unit
without a value is grey and says "no data" in its tooltip; a measure with no value anywhere says so on the page.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import folium
import folium.plugins
import mapclassify
import numpy as np
import shapely
import shapely.geometry
from folium.utilities import JsCode

from maps.city import (
    ATTRIBUTION,
    BASEMAP_JS,
    KIND_COLOURS,
    LOCAL_ASSETS,
    VENDOR,
    _Attribution,
    _page,
    map_to_html,
    quantile_bounds,
)
from maps.text import page_text, tooltip

GOOD_HIGH = ["#d73027", "#fc8d59", "#fee08b", "#d9ef8b", "#91cf60", "#1a9850"]  # red (low) → green (high)
BAD_HIGH = ["#fff5eb", "#fdd0a2", "#fd8d3c", "#e6550d", "#a63603", "#7f2704"]  # light → dark (more is worse)
NO_DATA = "#bdbdbd"
PANEL_PX = 460
STATIC_ROOT = Path(__file__).resolve().parent / "static"


TABLE_COLUMNS: tuple[tuple[str, str, str], ...] = (  # key, header, format
    ("households", "households", "int"), ("grids", "grids", "int"), ("households_per_grid", "hh/grid", "num"),
    ("walked_share", "walked", "share"), ("buildings_visited_share", "bldgs visited", "share"),
    ("households_police_share", "police circle", "share"), ("households_base_share", "base circle", "share"),
    ("reported", "events", "int"), ("on_time_closure_rate", "on time", "share"),
    ("open_overdue", "overdue", "int"), ("events_per_1000_households", "per 1k hh", "num"),
)


def fmt(value: Any, kind: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if kind == "share":
        return f"{100 * float(value):.1f}%"
    if kind == "int":
        return f"{int(value):,}"
    return f"{float(value):,.1f}"


SHARE_BINS = [0.5, 0.7, 0.8, 0.9, 0.95, 1.0]  # rates are judged against targets (≥ 90–99 %), not each other


def classes(values: Sequence[float], k: int = 5, *, share: bool = False) -> list[float]:
    """Upper bounds of the classes (mapclassify): shares in the fixed classes of :data:`SHARE_BINS` (the same
    colour means the same rate on every map), counts in up to ``k`` quantile classes of the values present."""
    data = np.array([v for v in values if v is not None], dtype=float)
    if data.size == 0:
        return []
    if share:
        return [float(b) for b in mapclassify.UserDefined(data, bins=SHARE_BINS).bins]
    return quantile_bounds(data, k)


def leaders_map(view: dict[str, Any], *, links: dict[str, str], tile_url: str | None = None,
                tile_attribution: str = "") -> folium.Map:
    """The page's map and panel. ``view``: ``unit``, ``breadcrumb``, ``level``, ``units`` (with ``figures`` and
    ``href``), ``measure`` (:class:`gis.oversight.store.leaders.Measure`), ``missing``, ``areas`` (response circles),
    ``events``, ``places``, ``outline``, ``route`` (a grid's basic patrol, GeoJSON), ``params`` (the form's values),
    ``measures``, ``categories``. ``links``: ``csv``, ``export``, ``self`` URLs."""
    measure = view["measure"]
    units = view["units"]
    outline = view["outline"] or {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": u["geometry"], "properties": {}} for u in units]}
    bounds = _bounds([u["geometry"] for u in units] or [outline])
    fmap = folium.Map(location=[(bounds[1] + bounds[3]) / 2, (bounds[0] + bounds[2]) / 2], tiles=None,
                      zoom_start=13, control_scale=True, prefer_canvas=True, zoomSnap=0.25)
    fmap.default_js = [("leaflet", f"{VENDOR}/leaflet/leaflet.js"), ("basemap", BASEMAP_JS)]
    fmap.default_css = [("leaflet_css", f"{VENDOR}/leaflet/leaflet.css")]
    if tile_url:
        folium.TileLayer(tiles=tile_url, attr=tile_attribution or ATTRIBUTION, name="basemap").add_to(fmap)
    fmap.fit_bounds([[bounds[1], bounds[0]], [bounds[3], bounds[2]]], padding=(10, 10))
    folium.GeoJson(outline, name="unit", interactive=False,
                   style_function=lambda _f: {"color": "#555", "weight": 1.5, "fill": False}  # the basemap shows
                   ).add_to(fmap)

    values = [u["figures"].get(measure.key) for u in units]
    bins = classes(values, share=measure.share)
    palette = GOOD_HIGH if measure.higher_is_better else BAD_HIGH
    colours = palette if len(bins) >= len(palette) else [  # fewer classes: spread them over the palette
        palette[round(i * (len(palette) - 1) / max(1, len(bins) - 1))] for i in range(len(bins))]

    def colour(value: Any) -> str:
        if value is None:
            return NO_DATA
        for upper, c in zip(bins, colours, strict=False):
            if value <= upper:
                return c
        return colours[-1]

    kind = "share" if measure.share else "num"
    features = []
    for u in units:
        value = u["figures"].get(measure.key)
        features.append({"type": "Feature", "geometry": u["geometry"], "properties": {
            "code": page_text(u["code"]), "name": page_text(u["name"]),
            "value": fmt(value, kind) if value is not None else "no data",
            "households": f"{u['households']:,}", "grids": u["grids"], "fill": colour(value),
            "href": u.get("href") or ""}})
    leaf = view["level"] == "grid" and view["unit"].level == "grid"
    folium.GeoJson(
        {"type": "FeatureCollection", "features": features},
        name=f"{view['level']}s by {measure.label}",
        style_function=lambda f: {"color": "#333", "weight": 1 if view["level"] == "grid" else 2,
                                  "fillColor": f["properties"]["fill"],
                                  "fillOpacity": 0.3 if leaf else 0.55},  # the basemap's streets read through
        highlight_function=lambda _f: {"weight": 3, "color": "#000"},
        tooltip=folium.GeoJsonTooltip(fields=["name", "code", "value", "households", "grids"],
                                      aliases=[view["level"], "code", measure.label, "households", "grids"]),
        on_each_feature=JsCode("""function(feature, layer) {
            if (feature.properties.href) {
                layer.on('click', function() { window.location.href = feature.properties.href; });
            }
        }"""),
    ).add_to(fmap)

    for name, area in view["areas"].items():
        if area is None or area.is_empty:
            continue
        source, minutes = name.split("_")
        colour_ = "#1f4e9c" if source == "police" else "#0b6e75"
        folium.GeoJson(area.__geo_interface__, name=f"{minutes} response circle: "
                       f"{'police stations' if source == 'police' else 'grid bases'}", show=source == "police",
                       interactive=False,
                       style_function=lambda _f, c=colour_: {"color": c, "weight": 1, "fillColor": c,
                                                             "fillOpacity": 0.12, "dashArray": "4 3"}).add_to(fmap)

    if view["events"]:
        # at city and district level the choropleth comes first: the heat map is one click away in the layers
        shown = view["unit"].level in ("street", "community", "grid") or bool(view["params"].get("category"))
        folium.plugins.HeatMap([[round(lat, 5), round(lon, 5), 1.0 if is_open else 0.5]
                                for lon, lat, _c, is_open in view["events"]],
                               name=f"events ({len(view['events']):,}; open ones weigh double)", radius=18, blur=14,
                               min_opacity=0.3, show=shown).add_to(fmap)
    if view["places"]:
        layer = folium.FeatureGroup(name=f"key places ({len(view['places'])})")
        for lon, lat, kind_, name in view["places"]:
            label = f"{kind_.replace('_', ' ')}: {name}" if name else kind_.replace("_", " ")
            folium.CircleMarker([lat, lon], radius=5, color="#fff", weight=1.2, fill=True,
                                fill_color=KIND_COLOURS.get(kind_, "#333"), fill_opacity=1.0,
                                tooltip=tooltip(label)).add_to(layer)
        layer.add_to(fmap)
    if view.get("route"):
        steps = [f for f in view["route"]["features"] if f["properties"]["kind"] == "step"]
        route = folium.FeatureGroup(name="basic patrol route")
        for f in steps:
            folium.PolyLine([[y, x] for x, y in f["geometry"]["coordinates"]],
                            color="#e66101" if f["properties"]["repeat"] else "#5e3c99", weight=4,
                            opacity=0.85, dash_array="6 6" if f["properties"]["repeat"] else None).add_to(route)
        route.add_to(fmap)

    folium.LayerControl(collapsed=True, position="topleft").add_to(fmap)
    page = _page(fmap)
    page.header.add_child(folium.Element(_style()))
    page.html.add_child(folium.Element(_panel(view, bins, colours, kind, links)))
    page.html.add_child(folium.Element(_sort_script()))
    _Attribution(ATTRIBUTION).add_to(fmap)
    return fmap


def _bounds(geometries: Sequence[dict[str, Any]]) -> tuple[float, float, float, float]:
    """(minx, miny, maxx, maxy) of GeoJSON geometries and FeatureCollections; zeros when there is nothing."""
    shapes = [shapely.geometry.shape(f["geometry"]) for g in geometries
              for f in (g["features"] if g.get("type") == "FeatureCollection" else [{"geometry": g}])]
    if not shapes:
        return (0.0, 0.0, 0.0, 0.0)
    minx, miny, maxx, maxy = shapely.total_bounds(shapes)
    return float(minx), float(miny), float(maxx), float(maxy)


def _style() -> str:
    return (f"<style>.folium-map{{position:absolute!important;left:0;top:0;bottom:0;right:{PANEL_PX}px;"
            "width:auto!important;height:auto!important}"
            f"#gp-panel{{position:absolute;top:0;right:0;bottom:0;width:{PANEL_PX}px;overflow:auto;"
            "box-sizing:border-box;padding:10px 12px;font:13px/1.4 sans-serif;background:#fff;"
            "border-left:1px solid #999}"
            "#gp-panel h1{font-size:17px;margin:4px 0}#gp-panel table{border-collapse:collapse;width:100%}"
            "#gp-panel th,#gp-panel td{border-bottom:1px solid #ddd;padding:2px 4px;text-align:right;"
            "white-space:nowrap}#gp-panel th{cursor:pointer;background:#f2f2f2;position:sticky;top:0}"
            "#gp-panel td:first-child,#gp-panel th:first-child{text-align:left}"
            ".gp-note{background:#fff3cd;border:1px solid #e0c060;padding:4px 8px;margin:6px 0}"
            ".gp-crumbs a{color:#1f4e9c}.gp-form label{display:inline-block;margin:2px 6px 2px 0}"
            ".gp-legend span{display:inline-block;width:14px;height:14px;border:1px solid #666;"
            "margin-right:6px;vertical-align:middle}</style>")


def _panel(view: dict[str, Any], bins: list[float], colours: list[str], kind: str, links: dict[str, str]) -> str:
    e = page_text
    measure = view["measure"]
    crumbs = " › ".join(
        f'<a href="{e(c["href"])}">{e(c["name"])}</a>' if c.get("href") else f"<b>{e(c['name'])}</b>"
        for c in view["breadcrumb"])
    params = view["params"]
    options = "".join(f'<option value="{e(k)}"{" selected" if k == measure.key else ""}>{e(m.label)}</option>'
                      for k, m in view["measures"].items())
    cats = '<option value="">all categories</option>' + "".join(
        f'<option value="{e(c)}"{" selected" if c == params.get("category") else ""}>{e(c)} {e(n)}</option>'
        for c, n in view["categories"])
    modes = "".join(f'<option{" selected" if m == params["mode"] else ""}>{m}</option>'
                    for m in ("walk", "ebike", "drive"))
    hidden = "".join(f'<input type="hidden" name="{e(k)}" value="{e(str(v))}">'
                     for k, v in (("unit", params.get("unit")), ("city", params.get("city"))) if v)
    form = (f'<form class="gp-form" method="get">{hidden}'
            f'<label>measure <select name="measure" id="gp-measure">{options}</select></label><br>'
            f'<label>from <input type="date" name="start" value="{e(params["start"])}"></label>'
            f'<label>to <input type="date" name="end" value="{e(params["end"])}"></label><br>'
            f'<label>events <select name="category">{cats}</select></label>'
            f'<label>circles <select name="mode">{modes}</select></label>'
            f'<label><input type="number" name="minutes" min="1" max="60" step="1" style="width:3em" '
            f'value="{params["minutes"]:g}"> min</label>'
            f'<label><input type="checkbox" name="grids" value="1"{" checked" if params.get("grids") else ""}>'
            " every grid</label> <button>show</button></form>")
    notes = "".join(f'<div class="gp-note">{e(n)}</div>' for n in view["notes"])
    legend_rows = []
    lower: float | None = None
    for upper, c in zip(bins, colours, strict=False):
        label = f"≤ {fmt(upper, kind)}" if lower is None else f"{fmt(lower, kind)} – {fmt(upper, kind)}"
        legend_rows.append(f'<div><span style="background:{c}"></span>{e(label)}</div>')
        lower = upper
    legend_rows.append(f'<div><span style="background:{NO_DATA}"></span>no data</div>')
    how = "mapclassify, fixed classes" if measure.share else "mapclassify quantiles"
    legend = (f'<div class="gp-legend"><b>{e(measure.label)}</b> ({how})'
              f'{"".join(legend_rows)}</div>')
    head = "".join(f'<th data-kind="{k}">{e(h)}</th>' for _key, h, k in TABLE_COLUMNS)
    rows = []
    for u in view["units"]:
        cells = "".join(f'<td data-v="{_sort_value(u["figures"].get(key))}">{fmt(u["figures"].get(key), k)}</td>'
                        for key, _h, k in TABLE_COLUMNS)
        name = f'<a href="{e(u["href"])}">{e(u["name"])}</a>' if u.get("href") else e(u["name"])
        rows.append(f'<tr><td data-v="{e(u["code"])}">{name}<br><small>{e(u["code"])}</small></td>{cells}</tr>')
    unit = view["unit"]
    summary = view["summary"]
    mine = urlencode({"city": unit.id} if unit.level == "city" else {"unit": unit.code})
    return (
        f'<div id="gp-panel"><div class="gp-crumbs">{crumbs}</div>'
        f'<h1>{e(unit.name)} <small>{e(unit.code or "")}</small></h1>'
        f'<div>{summary}</div>{form}{notes}{legend}'
        f'<p><a href="{e(links["csv"])}" download>download the table (CSV)</a> · '
        f'<a href="{e(links["export"])}">save this map as one HTML file</a> · '
        f'<a href="/leaders/grids?{e(mine)}">{e(unit.name)}: every grid, from tiles 本单位网格</a> · '
        '<a href="/leaders/grids">every grid of the jurisdiction, from tiles 网格总览</a></p>'
        f'<table id="gp-table"><thead><tr><th data-kind="text">{e(view["level"])}</th>{head}</tr></thead>'
        f'<tbody>{"".join(rows)}</tbody></table>'
        f'<p><small>{e(view["footnote"])}</small></p></div>')


def _sort_value(value: Any) -> str:
    return "" if value is None else repr(float(value))


def _sort_script() -> str:
    return """<script>
document.querySelectorAll('#gp-table th').forEach(function (th, column) {
  th.addEventListener('click', function () {
    var body = document.querySelector('#gp-table tbody');
    var rows = Array.from(body.rows);
    var down = th.dataset.sorted !== 'down';
    document.querySelectorAll('#gp-table th').forEach(function (h) { delete h.dataset.sorted; });
    th.dataset.sorted = down ? 'down' : 'up';
    rows.sort(function (a, b) {
      var x = a.cells[column].dataset.v, y = b.cells[column].dataset.v;
      if (th.dataset.kind !== 'text') {
        x = x === '' ? -Infinity : parseFloat(x); y = y === '' ? -Infinity : parseFloat(y);
      }
      return (x < y ? -1 : x > y ? 1 : 0) * (down ? -1 : 1);
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
var measure = document.getElementById('gp-measure');  // no inline handler: the page's CSP runs none
if (measure) measure.addEventListener('change', function () { measure.form.submit(); });
</script>"""


def standalone_html(fmap: folium.Map) -> str:
    """The page as one self-contained file: every local script and stylesheet inlined, so it opens from a disk
    or a mail attachment with no server (its drill-down links still point at the service)."""
    page = map_to_html(fmap)
    for local in {*LOCAL_ASSETS.values(), f"{VENDOR}/leaflet/leaflet.js", f"{VENDOR}/leaflet/leaflet.css", BASEMAP_JS}:
        path = STATIC_ROOT / local.removeprefix("/static/")
        if not path.exists():
            continue
        body = path.read_text(encoding="utf-8")
        if local.endswith(".js"):
            page = page.replace(f'<script src="{local}"></script>', f"<script>{body}</script>")
        else:
            page = page.replace(f'<link rel="stylesheet" href="{local}"/>', f"<style>{body}</style>")
    return page
