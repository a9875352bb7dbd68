"""Settings, from the environment (``GRIDPATROL_*``, and ``DATABASE_URL``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from gis.db.embedded import DEFAULT_PORT


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GRIDPATROL_", extra="ignore")

    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "GRIDPATROL_DATABASE_URL")
    )
    """An existing PostGIS to use. Unset: the embedded server under ``data_dir`` is started and used."""
    data_dir: Path = Path("var")
    """Where the embedded PostgreSQL cluster lives (git-ignored), relative to the working directory."""
    pg_port: int = DEFAULT_PORT
    db_name: str = "gridpatrol"
    host: str = "127.0.0.1"
    port: int = 8000
    default_city: str = "nanjing"
    tile_url: str | None = None
    """A tile server for a basemap, e.g. an intranet one: ``https://tiles.example.gov/{z}/{x}/{y}.png``.
    Unset: no basemap; the map is drawn from the city's own data and needs no network."""
    tile_attribution: str = "© OpenStreetMap contributors"
    tile_crs: Literal["wgs84", "gcj02"] = "wgs84"
    """The basemap's coordinate system: ``wgs84`` (Tianditu: CGCS2000, WGS-84 for map purposes) or ``gcj02``
    (Amap-style tiles: the pages shift them onto the service's WGS-84 overlays, ``maps/static/basemap.js``)."""
    tile_max_zoom: int = Field(default=18, ge=1, le=22)
    city_map_inline_max: int = Field(default=20_000, ge=0)
    """The city map (``/``) holds its layers in the page up to this many buildings; above it, it draws them from
    the vector tiles (a city of 200,000 buildings would otherwise be a page of hundreds of megabytes)."""
    leaders_inline_grids_max: int = Field(default=2_000, ge=0)
    """The leaders' map with every grid of a unit (``/leaders?…&grids=1``) holds them in the page up to this many;
    above it, it opens the tiled page of that unit's grids (``/leaders/grids?unit=…``): 7,181 grids inline were a
    7 MB page that took 6.6 s to draw."""
    auto_dispatch: bool = True
    """Intake accepts and dispatches each report at once (as the system), so its deadline clock starts."""
    nearest_grid_m: float = Field(default=50.0, ge=0, le=1000)
    """A report outside every grid goes to the nearest grid within this distance, else to its street's queue."""
    timezone: str = "Asia/Shanghai"
    """The local time the duty roster is written in."""
    escalate_every_s: float = 60.0
    """How often the service escalates events whose deadline has passed (0: never; run it by hand)."""
    fold_every_s: float = 2.0
    """How often the service folds the cases' changes into the grids' figures (``gis.planning.store.figures``; 0:
    never). Readers are exact either way; folding keeps what they add small."""
    read_url: str | None = None
    """Replicas for the heavy reads (maps, tiles, the leaders' figures, KPIs, coverage, bulletins, Open311 GETs):
    a libpq URL, multi-host for several (``?host=a:5432&host=b:5432``; ``gridpatrol cluster status`` prints the
    local cluster's). Unset: every read goes to ``DATABASE_URL``."""
    replica_max_lag_s: float = Field(default=5.0, ge=0, le=3600)
    """How stale a replica may be (seconds behind the primary) and still answer reads; past it, reads go to the
    primary. A reader's own changes are never missing either way (``api.consistency``)."""
    read_connections: int = Field(default=4, ge=1, le=200)
    """Database connections each worker keeps open to each replica."""
    db_connections: int = Field(default=8, ge=1, le=200)
    """Database connections each worker process keeps open. Requests beyond that wait their turn for one: a
    queue in front of the database, instead of opening and closing a connection per request (a PostGIS backend
    costs milliseconds to start) and more concurrent queries than the cores can run."""
    intake_lanes: int = Field(default=1, ge=1, le=64)
    """Batches of reports each worker process stores at the same time (``POST /events``, Open311 ``POST``); the
    rest wait in order (``api.intake``). A batch is one short database call, so more lanes than the database has
    cores only adds waiting. Scale with ``--workers``; raise this when the database has cores to spare."""
    intake_batch: int = Field(default=64, ge=1, le=1000)
    """At most this many waiting reports go to the database in one call and one commit. Batches form only while
    the database is busy (an idle lane sends a report at once); 1 stores every report on its own."""
    secret_key: str | None = None
    """The key tokens are signed with. Unset: one the service made and keeps in the database (``service_keys``),
    the same for every worker process."""
    token_minutes: int = Field(default=480, ge=1, le=60 * 24 * 30)
    """How long a sign-in lasts: one working shift by default."""
    screen_token_days: int = Field(default=30, ge=1, le=365)
    """How long a screen account's sign-in lasts (a wall display nobody signs in again every shift); the account
    reads the big screen only."""
    intake_rate: float = Field(default=20.0, ge=0)
    """Reports a second each signed-in client may send on average (``POST /events``, Open311 ``POST``, bulk
    files); 0: no limit. The load benchmarks raise it: one load generator stands for a whole city's clients."""
    intake_burst: int = Field(default=60, ge=1)
    """Reports a client may send at once before the rate applies (an offline phone's queue, flushed)."""
    sign_in_every_s: float = Field(default=2.0, gt=0, le=3600)
    """After ``sign_in_burst`` wrong passwords (per client, and per username), one more try every this many
    seconds."""
    sign_in_burst: int = Field(default=10, ge=1, le=1000)
    """Wrong passwords a client, or guesses at one username, may make before the wait applies."""
