"""Export a city's grids to a file, and replace a community's grids from one (validated, versioned)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import geopandas as gpd
from sqlalchemy import text
from sqlalchemy.engine import Connection

from gis.errors import InputError, NotFoundError
from gis.geo.crs import WGS84
from gis.planning.exchange import grids_from_file
from gis.planning.queries import GRID_TOTALS
from gis.planning.store.editing import ChangeResult, edit_grids


def grids_frame(conn: Connection, city_id: int) -> gpd.GeoDataFrame:
    """A city's grids with community code, households and buildings, ordered by code."""
    frame = gpd.read_postgis(text(f"""
        SELECT g.code, g.name, c.code AS community, g.note, {GRID_TOTALS}, g.geom
        FROM grids g JOIN admin_units c ON c.id = g.community_id WHERE c.city_id = :city ORDER BY g.code
    """), conn, geom_col="geom", params={"city": city_id}, crs=WGS84)
    return frame.rename_geometry("geometry")


def import_grids(conn: Connection, path: str | Path, *, community_code: str, author: str, reason: str,
                 dry_run: bool = False) -> ChangeResult:
    """Replace the grids of one community by the polygons of a file.

    A feature whose ``code`` is a grid of the community updates that grid (a new version, same code); a feature
    without a code becomes a new grid with a new code; grids of the community absent from the file are retired.
    The result must tile the community, as for any edit; a dry run reports the impact and stores nothing.
    """
    frame = grids_from_file(path)
    rows = conn.execute(text(
        "SELECT g.code, g.version FROM grids g JOIN admin_units c ON c.id = g.community_id "
        "WHERE c.code = :c AND c.level = 'community' ORDER BY g.code"), {"c": community_code}).all()
    if not rows:
        raise NotFoundError(f"no community {community_code} with grids; divide first, then import over it")
    features: list[tuple[str | None, dict[str, Any]]] = [
        (code, json.loads(gpd.GeoSeries([geom], crs=WGS84).to_json())["features"][0]["geometry"])
        for code, geom in zip(frame["code"], frame.geometry, strict=True)
    ]
    if not features:
        raise InputError(f"{path} holds no grid")
    return edit_grids(conn, "import", codes=[r[0] for r in rows], versions=[r[1] for r in rows],
                      geometry=features, author=author, reason=reason, dry_run=dry_run)
