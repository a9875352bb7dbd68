"""GPX 1.1 in and out: patrol routes and tours for phone navigation apps, and walked tracks read back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import gpxpy
import gpxpy.gpx

from gis.errors import InputError


def to_gpx(collection: dict[str, Any]) -> str:
    """GPX 1.1: the route as one track (the path walked, in order), the base and stops as waypoints."""
    gpx = gpxpy.gpx.GPX()
    gpx.creator = "gridpatrol"
    props = collection["properties"]
    track = gpxpy.gpx.GPXTrack(name=f"网格 {props['grid']} 基础巡查 basic patrol",
                               description=f"{props['length_m']:.0f} m, about {props['minutes_with_stops']:.0f} min")
    segment = gpxpy.gpx.GPXTrackSegment()
    for feature in collection["features"]:
        props_f = feature["properties"]
        if props_f["kind"] == "step":
            coords = feature["geometry"]["coordinates"]
            for x, y in coords if not segment.points else coords[1:]:
                segment.points.append(gpxpy.gpx.GPXTrackPoint(latitude=y, longitude=x))
        else:
            x, y = feature["geometry"]["coordinates"]
            label = ("base" if props_f["kind"] == "base"
                     else f"{props_f['number']}. {props_f['name'] or props_f['place_kind']}")
            gpx.waypoints.append(gpxpy.gpx.GPXWaypoint(latitude=y, longitude=x, name=label))
    track.segments.append(segment)
    gpx.tracks.append(track)
    return gpx.to_xml(version="1.1")


def tours_to_gpx(collection: dict[str, Any]) -> str:
    """GPX 1.1 of tours (a full inspection's days or members, a budgeted round, a basic patrol's shared parts): one
    track per tour, each stop a waypoint named tour.seq and described by its label (what to visit there), each
    part's start a waypoint."""
    gpx = gpxpy.gpx.GPX()
    gpx.creator = "gridpatrol"
    grid, title = collection["properties"]["grid"], collection["properties"]["title"]
    for feature in collection["features"]:
        props = feature["properties"]
        if props["kind"] == "tour":
            track = gpxpy.gpx.GPXTrack(name=f"网格 {grid} {title}, tour {props['tour']}", description=props["label"])
            segment = gpxpy.gpx.GPXTrackSegment(
                [gpxpy.gpx.GPXTrackPoint(latitude=y, longitude=x) for x, y in feature["geometry"]["coordinates"]])
            track.segments.append(segment)
            gpx.tracks.append(track)
        elif props["kind"] == "start":  # a shared patrol's part: where its member starts and ends
            x, y = feature["geometry"]["coordinates"]
            gpx.waypoints.append(gpxpy.gpx.GPXWaypoint(latitude=y, longitude=x, name=f"start {props['tour']}",
                                                       description=props["label"]))
        elif props["kind"] == "stop":
            x, y = feature["geometry"]["coordinates"]
            gpx.waypoints.append(gpxpy.gpx.GPXWaypoint(latitude=y, longitude=x, name=f"{props['tour']}.{props['seq']}",
                                                       description=props["label"]))
    return gpx.to_xml(version="1.1")


def track_from_gpx(data: bytes) -> tuple[list[tuple[float, float]], datetime | None, datetime | None,
                                         list[float] | None]:
    """The points of a GPX file's tracks (or its route, when it has no track), with its first and last times and
    each point's time in Unix seconds (None unless every point has one)."""
    try:
        gpx = gpxpy.parse(data.decode("utf-8-sig"))
    except (gpxpy.gpx.GPXException, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"the track is not a readable GPX file: {exc}") from None
    points: list[Any] = [p for t in gpx.tracks for s in t.segments for p in s.points]
    points = points or [p for r in gpx.routes for p in r.points]
    times = [p.time for p in points if p.time is not None]
    each = [(t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp() for t in times] \
        if points and len(times) == len(points) else None
    return ([(p.longitude, p.latitude) for p in points], (min(times) if times else None),
            (max(times) if times else None), each)
