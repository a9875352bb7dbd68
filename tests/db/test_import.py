from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from gis.db.engine import check_database, make_engine
from gis.errors import DatabaseUnavailableError, OsmFileError
from gis.geo.cities import city_from_options
from gis.planning.store import load
from gis.planning.store.importer import ImportReport, import_osm
from tests.conftest import BEIJING, BEIJING_CITY, NANJING


def table_counts(engine: Engine) -> dict[str, int]:
    tables = ("admin_units", "buildings", "key_places", "road_nodes", "road_edges", "imports")
    with engine.connect() as conn:
        return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in tables}


def snapshot(engine: Engine) -> list[tuple]:
    with engine.connect() as conn:
        return conn.execute(text(
            "SELECT id, osm_type, osm_id, households_est, households_override, ST_AsText(geom) FROM buildings "
            "ORDER BY id")).all()


def test_beijing_import_loads_everything(beijing_db: tuple[str, ImportReport], beijing_engine: Engine) -> None:
    _, report = beijing_db
    counts = table_counts(beijing_engine)
    assert counts["buildings"] == report.counts["buildings"].total > 200
    assert counts["key_places"] == report.counts["key places"].total > 10
    assert counts["road_edges"] == report.counts["walk edges"].total + report.counts["drive edges"].total
    assert counts["admin_units"] == 1  # the city; the community boundary cannot be closed from this file
    assert any("矿业大学社区居委会" in w for w in report.warnings)
    with beijing_engine.connect() as conn:
        city = conn.execute(text("SELECT name, code, level FROM admin_units WHERE level = 'city'")).one()
        assert tuple(city) == ("北京市", "110000", "city")
        lengths = conn.execute(text(
            "SELECT min(length_m), bool_and(abs(length_m - ST_Length(geom::geography)) < 0.05 * length_m + 1) "
            "FROM road_edges")).one()
        assert lengths[0] > 0 and lengths[1]  # stored metres agree with PostGIS's geodesic length
        households = conn.execute(text("SELECT sum(households), sum(households_est) FROM buildings")).one()
        assert households[0] == households[1] == report.households > 0
        assert conn.execute(text("SELECT count(*) FROM buildings WHERE NOT ST_IsValid(geom)")).scalar() == 0


def test_reimporting_the_same_file_changes_nothing(fresh_engine: Engine) -> None:
    first = import_osm(fresh_engine, BEIJING, city=BEIJING_CITY)
    before, counts_before = snapshot(fresh_engine), table_counts(fresh_engine)
    second = import_osm(fresh_engine, BEIJING, city=BEIJING_CITY)
    assert snapshot(fresh_engine) == before  # same ids, same rows
    counts_after = table_counts(fresh_engine)
    assert counts_after["imports"] == counts_before["imports"] + 1
    assert {k: v for k, v in counts_after.items() if k != "imports"} == \
        {k: v for k, v in counts_before.items() if k != "imports"}
    for table, count in second.counts.items():
        assert (count.new, count.changed, count.removed) == (0, 0, 0), table
        assert count.total == first.counts[table].total


def test_nanjing_gets_its_three_districts_with_codes(fresh_engine: Engine) -> None:
    import_osm(fresh_engine, NANJING, city=city_from_options("南京市"))
    with fresh_engine.connect() as conn:
        rows = conn.execute(text("""
            SELECT d.name, d.code, d.parent_id = c.id, ST_Area(d.geom::geography) / 1e6
            FROM admin_units d JOIN admin_units c ON c.level = 'city'
            WHERE d.level = 'district' ORDER BY d.code""")).all()
        inside = conn.execute(text("""
            SELECT count(*) FROM buildings b
            WHERE NOT EXISTS (SELECT 1 FROM admin_units d WHERE d.level = 'district'
                              AND ST_Intersects(d.geom, ST_PointOnSurface(b.geom)))""")).scalar()
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("玄武区", "320102", True), ("秦淮区", "320104", True), ("鼓楼区", "320106", True)]
    assert sum(r[3] for r in rows) == pytest.approx(6.28, abs=0.02)
    assert inside == 0  # every building lies in a district


def test_real_household_counts_override_the_estimate_and_survive_reimport(fresh_engine: Engine,
                                                                           tmp_path: Path) -> None:
    import_osm(fresh_engine, BEIJING, city=BEIJING_CITY)
    with fresh_engine.connect() as conn:
        osm_type, osm_id, est = conn.execute(text(
            "SELECT osm_type, osm_id, households_est FROM buildings WHERE households_est > 0 ORDER BY id LIMIT 1"
        )).one()
    csv = tmp_path / "counts.csv"
    csv.write_text(f"osm_id,households,residents\n{osm_type}/{osm_id},{est + 7},{3 * (est + 7)}\nway/1,5,\n")
    report = import_osm(fresh_engine, BEIJING, city=BEIJING_CITY, households_csv=csv)
    assert any("1 of 2 household counts" in w for w in report.warnings)
    assert report.households == report.households_est + 7
    import_osm(fresh_engine, BEIJING, city=BEIJING_CITY)  # a plain re-import keeps the planner's count
    with fresh_engine.connect() as conn:
        row = conn.execute(text(
            "SELECT households, households_est, households_source, residents FROM buildings "
            "WHERE osm_type = :t AND osm_id = :i"), {"t": osm_type, "i": osm_id}).one()
    assert tuple(row) == (est + 7, est, "confirmed", 3 * (est + 7))


def test_a_failure_while_writing_leaves_the_database_as_it_was(fresh_engine: Engine,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import_osm(fresh_engine, BEIJING, city=BEIJING_CITY)
    before, counts_before = snapshot(fresh_engine), table_counts(fresh_engine)

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")  # after admin units and buildings were already written

    monkeypatch.setattr(load, "sync_key_places", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        import_osm(fresh_engine, NANJING, city=BEIJING_CITY)  # would replace every Beijing building
    assert snapshot(fresh_engine) == before
    assert table_counts(fresh_engine) == counts_before


def test_a_bad_file_writes_nothing(fresh_engine: Engine, tmp_path: Path) -> None:
    cut = tmp_path / "cut.osm"
    cut.write_bytes(BEIJING.read_bytes()[:300_000])
    with pytest.raises(OsmFileError):
        import_osm(fresh_engine, cut, city=BEIJING_CITY)
    assert table_counts(fresh_engine) == dict.fromkeys(
        ("admin_units", "buildings", "key_places", "road_nodes", "road_edges", "imports"), 0)


def test_an_unreachable_database_says_what_to_do() -> None:
    engine = make_engine("postgresql+psycopg2://gridpatrol@127.0.0.1:1/gridpatrol")
    with pytest.raises(DatabaseUnavailableError, match="gridpatrol db start"):
        check_database(engine)
    with pytest.raises(DatabaseUnavailableError):
        import_osm(engine, BEIJING, city=BEIJING_CITY)
