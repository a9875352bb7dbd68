"""The database a benchmark runs in: ``DATABASE_URL`` when set, else a fresh one on the embedded server."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import text

from api.settings import Settings
from gis.db.embedded import SERVICE_ROLE, SUPERUSER, EmbeddedPostgres
from gis.db.engine import make_engine
from gis.db.migrate import upgrade
from gis.geo.cities import city_from_options
from gis.planning.store.divisions import divide_and_store
from gis.planning.store.importer import import_osm

ROOT = Path(__file__).resolve().parents[1]
BENCH_CITIES: dict[str, dict[str, object]] = {
    "nanjing": {"code": "320100"},
    "beijing": {"code": "110000"},
    "liechtenstein": {"default_storeys": 2, "outside_china": True},
}
"""The benchmarks' cities, as ``gridpatrol city add`` options: Nanjing's name and district codes come from
GB/T 2260 (Beijing: the municipality); Liechtenstein is outside China, of low houses."""


@contextmanager
def bench_database(name: str, *, reuse: bool = False) -> Iterator[str]:
    """URL of a migrated database for one benchmark. On the embedded server it is dropped and created afresh
    (kept as it is with ``reuse``, to iterate quickly), and a server started here is stopped afterwards."""
    settings = Settings()
    if settings.database_url:
        url, started = settings.database_url, None
    else:
        server = EmbeddedPostgres.for_data_dir(ROOT / settings.data_dir, port=settings.pg_port)
        started = server if server.start() else None
        if not reuse:
            server.drop_database(name)
        server.create_database(name)
        server.create_extension(name, "pgrouting")  # a patrol reference, where Debian's package is installed
        url = server.url(name)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        if started is not None:
            started.stop()


def upkeep_url(url: str) -> str:
    """``url`` as the embedded server's superuser (for CHECKPOINT and such upkeep between timed runs) when it is the
    service's role on the embedded server; otherwise ``url`` itself."""
    prefix = f"postgresql+psycopg2://{SERVICE_ROLE}@/"
    return url.replace(prefix, f"postgresql+psycopg2://{SUPERUSER}@/", 1) if url.startswith(prefix) else url


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {mem_gb:.0f} GiB RAM, {platform.system()} {platform.release()}, " \
           f"Python {platform.python_version()}"


def city_id_of(engine, path: Path, key: str) -> int:  # type: ignore[no-untyped-def]
    """The city imported from ``path`` and divided, in the benchmark's database (imported and divided once)."""
    city = city_from_options(key, **BENCH_CITIES[key])
    with engine.connect() as conn:
        found = conn.execute(text("SELECT id FROM admin_units WHERE level = 'city' AND name = :n"),
                             {"n": city.name}).scalar()
        grids = found and conn.execute(text("SELECT count(*) FROM grids g JOIN admin_units c ON "
                                            "c.id = g.community_id WHERE c.city_id = :c"), {"c": found}).scalar()
    if found and grids:
        return int(found)
    started = time.perf_counter()
    import_osm(engine, path, city=city)
    with engine.connect() as conn:
        found = conn.execute(text("SELECT id FROM admin_units WHERE level = 'city' AND name = :n"),
                             {"n": city.name}).scalar_one()
    divide_and_store(engine, found)
    print(f"   (set-up: {key} imported and divided in {time.perf_counter() - started:.0f} s)", flush=True)
    return int(found)
