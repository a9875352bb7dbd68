"""A patrol route as a map page: the grid, the route in walking order (repeats dashed), the base, numbered stops,
and beside it the figures and the turn list. Printable (A4, the panel above the map) and readable on a phone.
Only Leaflet is loaded, from gridpatrol itself."""

from __future__ import annotations

from typing import Any

import folium
import shapely
from shapely.geometry import mapping

from maps.city import ATTRIBUTION, BASEMAP_JS, VENDOR, _Attribution, _page
from maps.text import page_text, safe_features, tooltip

ROUTE_COLOUR, REPEAT_COLOUR = "#1f5fbf", "#e07b00"

_STYLE = """
<style>
#gp-panel { position: fixed; top: 10px; right: 10px; z-index: 1000; background: #fff; border: 1px solid #999;
  border-radius: 4px; padding: 8px 12px; font: 14px/1.45 system-ui, sans-serif; max-width: 340px;
  max-height: 80vh; overflow-y: auto; }
#gp-panel h1 { font-size: 16px; margin: 0 0 6px; } #gp-panel ol { padding-left: 20px; margin: 4px 0; }
.gp-stop { background: #b00020; color: #fff; border-radius: 50%; width: 22px; height: 22px; line-height: 22px;
  text-align: center; font: bold 12px sans-serif; border: 2px solid #fff; box-shadow: 0 0 2px #000; }
.gp-base { background: #222; color: #fff; border-radius: 3px; padding: 1px 4px; font: bold 12px sans-serif; }
@media (max-width: 600px) { #gp-panel { left: 10px; right: 10px; max-width: none; max-height: 38vh; } }
@media print { #gp-panel { position: static; max-height: none; max-width: none; border: none; }
  .leaflet-control-zoom { display: none; } }
</style>
"""


def _grid_map(grid: shapely.Geometry, features: list[dict[str, Any]]) -> folium.Map:
    """A map fitted to the grid and ``features``, with the grid drawn; only gridpatrol's own Leaflet."""
    minx, miny, maxx, maxy = shapely.union_all(
        [grid, *[shapely.geometry.shape(f["geometry"]) for f in features]]).bounds
    fmap = folium.Map(location=[(miny + maxy) / 2, (minx + maxx) / 2], tiles=None, zoom_start=16,
                      control_scale=True, zoomSnap=0.25)
    fmap.default_js = [("leaflet", f"{VENDOR}/leaflet/leaflet.js"), ("basemap", BASEMAP_JS)]
    fmap.default_css = [("leaflet_css", f"{VENDOR}/leaflet/leaflet.css")]
    fmap.fit_bounds([[miny, minx], [maxy, maxx]], padding=(20, 20))
    folium.GeoJson(mapping(grid), name="grid", interactive=False,
                   style_function=lambda _f: {"color": "#222", "weight": 2, "fillColor": "#a6d96a",
                                              "fillOpacity": 0.15}).add_to(fmap)
    return fmap


def _finish(fmap: folium.Map, panel: str) -> folium.Map:
    _page(fmap).header.add_child(folium.Element(_STYLE))
    _page(fmap).html.add_child(folium.Element(panel))
    _Attribution(ATTRIBUTION).add_to(fmap)
    return fmap


def patrol_map(route: dict[str, Any], grid: shapely.Geometry, title: str) -> folium.Map:
    fmap = _grid_map(grid, route["features"])
    steps = [f for f in route["features"] if f["properties"]["kind"] == "step"]
    folium.GeoJson(
        safe_features({"type": "FeatureCollection", "features": steps}), name="route",
        style_function=lambda f: {"color": REPEAT_COLOUR if f["properties"]["repeat"] else ROUTE_COLOUR,
                                  "weight": 5, "opacity": 0.85,
                                  "dashArray": "6 6" if f["properties"]["repeat"] else None},
        tooltip=folium.GeoJsonTooltip(["seq", "name", "length_m", "repeat"],
                                      aliases=["step", "street", "metres", "walked again"]),
    ).add_to(fmap)
    for feature in route["features"]:
        props = feature["properties"]
        if feature["geometry"]["type"] != "Point":
            continue
        lon, lat = feature["geometry"]["coordinates"]
        if props["kind"] == "base":
            folium.Marker([lat, lon], tooltip="base 起点",
                          icon=folium.DivIcon(html='<span class="gp-base">起点 base</span>', icon_size=(80, 20),
                                              icon_anchor=(10, 10))).add_to(fmap)
        elif props["kind"] == "stop":
            label = props["name"] or props["place_kind"]
            folium.Marker([lat, lon], tooltip=tooltip(f"{props['number']}. {label} ({props['dwell_min']:.0f} min)"),
                          icon=folium.DivIcon(html=f'<div class="gp-stop">{props["number"]}</div>',
                                              icon_size=(26, 26), icon_anchor=(13, 13))).add_to(fmap)
    return _finish(fmap, _panel(route, title))


def _panel(route: dict[str, Any], title: str) -> str:
    p = route["properties"]
    stops = [f["properties"] for f in route["features"] if f["properties"]["kind"] == "stop"]
    turns = "".join(f"<li>{page_text(t['name'] or '(unnamed path)')}: {t['length_m']:,.0f} m</li>"
                    for t in p["turns"])
    stop_items = "".join(f"<li>{page_text(str(s['name'] or s['place_kind']))} · {s['dwell_min']:.0f} min</li>"
                         for s in stops)
    warning = (f"<p style='color:#b00020'>{len(p['unreachable'])} street segment(s) cannot be reached from the base"
               "</p>" if p["unreachable"] else "")
    return (
        f'<div id="gp-panel"><h1>{page_text(title)}</h1>'
        f"<b>{p['length_m']:,.0f} m</b> · {p['minutes']:.0f} min walking + {len(stops)} stop(s) = "
        f"<b>{p['minutes_with_stops']:.0f} min</b><br>"
        f"{p['covered_edges']}/{p['required_edges']} street segments · "
        f"<span style='color:{REPEAT_COLOUR}'>walked again</span> {p['deadhead_share']:.0%} · "
        f"{'optimal' if p['optimal'] else 'heuristic'}{warning}"
        f"{'<h2 style=font-size:14px>停靠点 Stops</h2><ol>' + stop_items + '</ol>' if stops else ''}"
        f"<h2 style='font-size:14px'>路线 Streets in order</h2><ol>{turns}</ol></div>"
    )


TOUR_COLOURS = ("#1f5fbf", "#b00020", "#2a9d3a", "#7b3fb5", "#e07b00", "#008b8b", "#8b4513", "#d63384")


def tours_map(plan: dict[str, Any], grid: shapely.Geometry, title: str) -> folium.Map:
    """Tours as a map page: a full inspection (each tour, a day or a member, in its own colour) or a time-budgeted
    round. Stops are numbered in walking order (tooltip: what to visit there), places a budgeted round leaves out
    are grey, the base is marked, and a panel gives each tour's figures. Printable and readable on a phone, like
    the patrol page."""
    fmap = _grid_map(grid, plan["features"])
    base_at = None
    for feature in plan["features"]:
        props = feature["properties"]
        if props["kind"] == "dropped":
            lon, lat = feature["geometry"]["coordinates"]
            folium.CircleMarker([lat, lon], radius=7, color="#777", fill=True, fill_opacity=0.5, weight=1,
                                tooltip=tooltip(f"left out (no time): {props['label']}")).add_to(fmap)
            continue
        colour = TOUR_COLOURS[(props["tour"] - 1) % len(TOUR_COLOURS)]
        if props["kind"] == "start":  # a shared patrol's part starts from its member's own place
            lon, lat = feature["geometry"]["coordinates"]
            folium.Marker([lat, lon], tooltip=tooltip(props["label"]),
                          icon=folium.DivIcon(html=f'<div class="gp-stop" style="background:{colour}">'
                                                   f'{props["tour"]}</div>',
                                              icon_size=(26, 26), icon_anchor=(13, 13))).add_to(fmap)
            continue
        if props["kind"] == "tour":
            folium.GeoJson(safe_features(feature), name=f"tour {props['tour']}",
                           style_function=lambda _f, c=colour: {"color": c, "weight": 4, "opacity": 0.8},
                           tooltip=tooltip(f"tour {props['tour']}: {props['label']}")).add_to(fmap)
            base_at = feature["geometry"]["coordinates"][0]
        else:
            lon, lat = feature["geometry"]["coordinates"]
            folium.Marker([lat, lon], tooltip=tooltip(f"tour {props['tour']}, stop {props['seq']}: {props['label']}"),
                          icon=folium.DivIcon(html=f'<div class="gp-stop" style="background:{colour}">'
                                                   f'{props["seq"]}</div>',
                                              icon_size=(26, 26), icon_anchor=(13, 13))).add_to(fmap)
    if base_at is not None:
        folium.Marker([base_at[1], base_at[0]], tooltip="base 起点",
                      icon=folium.DivIcon(html='<span class="gp-base">起点 base</span>', icon_size=(80, 20),
                                          icon_anchor=(10, 10))).add_to(fmap)
    return _finish(fmap, _tours_panel(plan, title))


def _tours_panel(plan: dict[str, Any], title: str) -> str:
    p = plan["properties"]
    tours = [f["properties"] for f in plan["features"] if f["properties"]["kind"] == "tour"]

    def item(t: dict[str, Any]) -> str:
        stops = "" if "streets" in t else f" · {t['stops']} stops"  # a shared patrol's parts have no stops
        return (f"<li><span style='color:{TOUR_COLOURS[(t['tour'] - 1) % len(TOUR_COLOURS)]}'>■</span> "
                f"{page_text(t['label'])}{stops}</li>")
    items = "".join(item(t) for t in tours)
    if "lower_bound_m" in p:  # a basic patrol shared among members
        head = (f"<b>{p['k']}</b> parts · the longest <b>{p['longest_m']:,.0f} m</b> "
                f"({p['ratio_to_lower_bound']:.2f}× the lower bound of {p['lower_bound_m']:,.0f} m) · one member "
                f"alone: {p['single_route_m']:,.0f} m")
        return (f'<div id="gp-panel"><h1>{page_text(title)}</h1>{head}'
                f"<h2 style='font-size:14px'>分段 Parts (a member or a shift each)</h2><ol>{items}</ol></div>")
    if "budget_min" in p:  # a time-budgeted round
        share = f"{p['risk_share']:.0%}" if p["risk_share"] is not None else "–"
        head = (f"<b>{p['minutes']:.0f} of {p['budget_min']:.0f} min</b> · {p['length_m']:,.0f} m · "
                f"risk covered <b>{share}</b> ({p['risk']:g} of {p['risk_total']:g}: {p['key_places']} key places, "
                f"{p['events']} events of the last {p['events_since_days']} days) · {p['dwell_min']:g} min per stop"
                f"{'; ' + str(p['dropped']) + ' place(s) left out (grey)' if p['dropped'] else ''}")
        return f'<div id="gp-panel"><h1>{page_text(title)}</h1>{head}<ol>{items}</ol></div>'
    missing = p["unreachable_buildings"]
    warning = (f"<p style='color:#b00020'>{len(missing)} building(s) cannot be reached on the street network</p>"
               if missing else "")
    return (
        f'<div id="gp-panel"><h1>{page_text(title)}</h1>'
        f"<b>{p['buildings']}</b> buildings · <b>{p['length_m']:,.0f} m</b> in {p['tours']} tour(s) of at most "
        f"{p['shift_min']:.0f} min ({p['minutes_per_building']:g} min per building){warning}"
        f"<h2 style='font-size:14px'>巡查班次 Tours (a day or a member each)</h2><ol>{items}</ol></div>"
    )
