"""Walk and drive street networks, built by osmnx from an extract's streets.

``osmnx.graph_from_xml`` turns *every* way of a file into graph edges (buildings included), while its
Overpass downloads filter ways by network type. To get the same networks from a local file, the streets are
filtered here with osmnx's own Overpass filter for the network type (parsed from
``osmnx._overpass._get_network_filter``, so walk and drive mean exactly what they mean in osmnx), written to a
small OSM XML file, and handed to ``graph_from_xml``. The graph is then trimmed to the extract's bounds, keeping
edges that cross them. Disconnected pieces are kept (``retain_all``) and counted, never silently dropped.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import quoteattr

import geopandas as gpd
import networkx as nx
import osmnx as ox
from osmnx import _overpass  # the filter definitions osmnx itself sends to Overpass

from gis.errors import OsmFileError
from gis.geo.crs import WGS84
from gis.geo.osm import OsmExtract

NETWORK_TYPES = ("walk", "drive")

_CLAUSE = re.compile(r'\["([^"]+)"(?:(!?~)"([^"]*)")?\]')


@dataclass(frozen=True)
class Clause:
    key: str
    op: str | None  # None: the key must exist; "~": value matches; "!~": key absent or value does not match
    pattern: re.Pattern[str] | None

    def accepts(self, tags: dict[str, str]) -> bool:
        value = tags.get(self.key)
        if self.op is None:
            return value is not None
        assert self.pattern is not None
        if self.op == "~":
            return value is not None and self.pattern.search(value) is not None
        return value is None or self.pattern.search(value) is None


def way_filter(network_type: str) -> list[Clause]:
    """osmnx's Overpass way filter for ``network_type`` as a list of clauses that all must hold."""
    if network_type not in NETWORK_TYPES:
        raise ValueError(f"network type {network_type!r}; expected one of {', '.join(NETWORK_TYPES)}")
    text = _overpass._get_network_filter(network_type)
    clauses = [Clause(k, op, re.compile(p) if p is not None else None) for k, op, p in _CLAUSE.findall(text)]
    clauses = [Clause(c.key, c.op or None, c.pattern if c.op else None) for c in clauses]
    if not clauses or clauses[0].key != "highway":
        raise RuntimeError(f"unexpected osmnx network filter for {network_type}: {text}")
    return clauses


def graph_from_extract(extract: OsmExtract, network_type: str) -> nx.MultiDiGraph:
    """The ``network_type`` street network of an extract, simplified by osmnx and trimmed to its bounds.

    Edge ``length`` is in metres (osmnx's great-circle length). Walk networks are bidirectional, as in osmnx.

    Raises
    ------
    OsmFileError
        No street of this network type lies inside the bounds.
    """
    clauses = way_filter(network_type)
    ways = [(wid, refs, tags) for wid, refs, tags in extract.street_ways if all(c.accepts(tags) for c in clauses)]
    if not ways:
        raise OsmFileError(f"{extract.path} has no {network_type} streets inside its bounds")
    used = {r for _, refs, _ in ways for r in refs}
    with tempfile.TemporaryDirectory(prefix="gridpatrol-") as tmp:
        xml_path = Path(tmp) / f"{network_type}.osm"
        with xml_path.open("w", encoding="utf-8") as out:
            out.write('<?xml version="1.0" encoding="UTF-8"?>\n<osm version="0.6" generator="gridpatrol">\n')
            for node_id in used:
                lon, lat = extract.street_nodes[node_id]
                out.write(f'<node id="{node_id}" lat="{lat:.7f}" lon="{lon:.7f}"/>\n')
            for wid, refs, tags in ways:
                out.write(f'<way id="{wid}">')
                out.write("".join(f'<nd ref="{r}"/>' for r in refs))
                out.write("".join(f"<tag k={quoteattr(k)} v={quoteattr(v)}/>" for k, v in tags.items()))
                out.write("</way>\n")
            out.write("</osm>\n")
        bidirectional = network_type in ox.settings.bidirectional_network_types
        graph = ox.graph_from_xml(xml_path, bidirectional=bidirectional, simplify=False, retain_all=True)
    graph = ox.truncate.truncate_graph_polygon(graph, extract.bounds, truncate_by_edge=True)
    graph = ox.simplify_graph(graph)
    # truncate_by_edge keeps outside nodes next to inside ones, and with them some edges running wholly
    # outside between two such nodes: drop those, and the nodes they leave alone.
    edges = ox.graph_to_gdfs(graph, nodes=False, fill_edge_geometry=True)
    graph.remove_edges_from(edges.index[~edges.intersects(extract.bounds)])
    graph.remove_nodes_from(list(nx.isolates(graph)))
    if graph.number_of_edges() == 0:
        raise OsmFileError(f"{extract.path} has no {network_type} streets inside its bounds")
    graph.graph["network_type"] = network_type
    return graph


def component_count(graph: nx.MultiDiGraph) -> int:
    """Number of weakly connected pieces: more than one means some streets cannot be reached from others."""
    return nx.number_weakly_connected_components(graph)


def graph_to_frames(graph: nx.MultiDiGraph) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Nodes (``osmid``, point) and edges (``u``, ``v``, ``key``, ``osm_ids``, ``name``, ``highway``, ``oneway``,
    ``length_m``, line) of an osmnx graph, in WGS-84."""
    nodes, edges = ox.graph_to_gdfs(graph, nodes=True, edges=True, fill_edge_geometry=True)
    nodes = gpd.GeoDataFrame({"osmid": nodes.index.astype("int64")}, geometry=nodes.geometry.values, crs=WGS84)
    edges = edges.reset_index()

    # osmnx's simplification gathers the values of merged ways through sets, so their order follows Python's
    # per-process string hashing: sort them, or the same file would give different rows on every import.
    def joined(value: object) -> str | None:
        if isinstance(value, list):
            return ";".join(sorted({str(v) for v in value}))
        return None if value is None or value != value else str(value)  # NaN != NaN

    def id_list(value: object) -> list[int]:
        return sorted({int(v) for v in value}) if isinstance(value, list) else [int(value)]  # type: ignore[call-overload]

    columns = {
        "u": edges["u"].astype("int64"),
        "v": edges["v"].astype("int64"),
        "key": edges["key"].astype("int64"),
        "osm_ids": edges["osmid"].map(id_list),
        "name": edges.get("name", gpd.pd.Series(None, index=edges.index)).map(joined),
        "highway": edges["highway"].map(joined),
        "oneway": edges["oneway"].astype(bool),
        "length_m": edges["length"].astype(float).round(2),
    }
    frame = gpd.GeoDataFrame(columns, geometry=edges.geometry.values, crs=WGS84)
    return nodes, frame
