"""The database a benchmark runs in: ``DATABASE_URL`` when set, else a fresh one on the embedded server."""

from __future__ import annotations

import os
import platform
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from api.settings import Settings
from gis.db.embedded import EmbeddedPostgres
from gis.db.engine import make_engine
from gis.db.migrate import upgrade

ROOT = Path(__file__).resolve().parents[1]
BENCH_CITIES: dict[str, dict[str, object]] = {
    "nanjing": {"code": "320100"},
    "liechtenstein": {"default_storeys": 2, "outside_china": True},
}
"""The benchmarks' cities, as ``gridpatrol city add`` options: Nanjing's name and district codes come from
GB/T 2260; Liechtenstein is outside China, of low houses."""


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
