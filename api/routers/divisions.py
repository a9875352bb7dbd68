"""Automatic division: propose (dry run) or store streets → communities → grids for a city or district."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field, model_validator
from sqlalchemy.engine import Engine

from api.deps import get_engine
from api.jurisdiction import require_city, require_code
from api.roles import Planner
from gis.errors import ForbiddenError
from gis.planning.division import Band
from gis.planning.store.city import find_city, unit_name
from gis.planning.store.divisions import divide_and_store, divide_street
from gis.planning.store.grid_register import divide_community

router = APIRouter(tags=["planning"])


class DivisionRequest(BaseModel):
    city: str | None = Field(default=None, description="an imported city: nanjing, 南京市, …", max_length=100)
    district: str | None = Field(default=None, max_length=100, description="only this district (name or code)")
    community: str | None = Field(default=None, pattern=r"^\d{12}$",
                                  description="only this community's grids, inside its boundary (its 12-digit "
                                              "code); the answer has the proposal beside the current grids")
    street: str | None = Field(default=None, pattern=r"^\d{9}$",
                               description="only this street's communities and grids, inside its boundary")
    reason: str = Field(default="automatic division of the community", min_length=1, max_length=500)
    grid_band: tuple[int, int] = Field(default=(300, 500), description="households per grid, [low, high]")
    community_band: tuple[int, int] = Field(default=(3000, 6000), description="households per community")
    dry_run: bool = Field(default=True, description="propose only; store nothing")

    @model_validator(mode="after")
    def _bands(self) -> DivisionRequest:
        for name in ("grid_band", "community_band"):
            low, high = getattr(self, name)
            if not 0 < low <= high <= 1_000_000:
                raise ValueError(f"{name} must be [low, high] with 0 < low ≤ high ≤ 1,000,000")
        if self.community is None and self.grid_band[1] > self.community_band[0]:
            raise ValueError("a grid band above the community band would leave communities of one grid")
        if sum(x is not None for x in (self.city, self.community, self.street)) != 1:
            raise ValueError("give one of city (with district, optionally), street or community")
        return self


@router.post("/divisions", summary="Propose (dry run) or store a division into streets, communities and grids")
def create_division(request: DivisionRequest, engine: Annotated[Engine, Depends(get_engine)],
                    user: Planner) -> dict[str, Any]:
    """Divides each district of the city (or the one named). The answer lists, per district, how many grids
    fall in the band and why the others do not; with ``dry_run`` it carries the proposed grids as GeoJSON.
    A planner bound to a district divides only that district; one bound lower cannot divide. With ``community``,
    only that community's grids are proposed (``proposal``, beside its ``current`` grids) or, without ``dry_run``,
    stored in their place; a planner of the community or above may."""
    if request.community is not None:
        with engine.begin() as conn:
            require_code(conn, user, request.community)
            return divide_community(conn, request.community, author=user.username, reason=request.reason,
                                    grid_band=Band(*request.grid_band), dry_run=request.dry_run)
    if request.street is not None:
        with engine.begin() as conn:
            require_code(conn, user, request.street)
            summary = divide_street(conn, request.street, grid_band=Band(*request.grid_band),
                                    community_band=Band(*request.community_band), dry_run=request.dry_run)
        answer: dict[str, Any] = {"stored": not request.dry_run, "divisions": [summary.as_dict()]}
        if request.dry_run:
            assert summary.division is not None
            answer["grids"] = json.loads(summary.division.grids.drop(columns=["split_block"]).to_json(drop_id=True))
        return answer
    assert request.city is not None
    with engine.connect() as conn:
        city = find_city(conn, request.city)
        require_city(user, city.id)
        if user.scope.prefix is not None:
            wanted = (request.district or "").strip().casefold()
            mine = unit_name(conn, "district", user.scope.prefix)
            if mine is None or wanted not in {mine[0].casefold(), mine[1]}:
                raise ForbiddenError("you may divide only your own district: name it in 'district'"
                                     if mine is not None else "a division covers a district; yours is smaller")
    summaries = divide_and_store(engine, city.id, district=request.district,
                                 grid_band=Band(*request.grid_band), community_band=Band(*request.community_band),
                                 dry_run=request.dry_run)
    answer = {"stored": not request.dry_run, "divisions": [s.as_dict() for s in summaries]}
    if request.dry_run:
        features: list[Any] = []
        for summary in summaries:
            assert summary.division is not None
            grids = summary.division.grids.drop(columns=["split_block"])
            features.extend(json.loads(grids.to_json(drop_id=True))["features"])
        answer["grids"] = {"type": "FeatureCollection", "features": features}
    return answer
