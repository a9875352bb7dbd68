"""The monthly bulletin's rules (考核通报), with no database: rankings with their change from last month, and the
short written summary generated from the figures.

A ranking orders units by one measure, best first (higher is better for a rate of closure, lower for rework); units
with no figure (nothing fell due) rank last, unranked. Ties share a rank ("1, 2, 2, 4", competition ranking, as
bulletins print them). The change is last month's rank minus this month's: +2 means two places up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Ranked:
    key: str
    zh: str
    en: str
    higher_is_better: bool
    share: bool = True


RANKINGS: tuple[Ranked, ...] = (
    Ranked("on_time_closure_rate", "按期结案率", "on-time closure", True),
    Ranked("closure_rate", "结案率", "closure", True),
    Ranked("rework_rate", "返工率", "rework", False),
    Ranked("walked_share", "巡查覆盖率", "patrol coverage (streets walked)", True),
)
"""The measures a unit's children are ranked by, in the bulletin's order."""


def ranks(values: dict[str, float | None], *, higher_is_better: bool) -> dict[str, int | None]:
    """Each unit's rank by its value (competition ranking, best first); ``None`` for a unit with no value."""
    known = sorted((v, k) for k, v in values.items() if v is not None)
    if higher_is_better:
        known.sort(key=lambda vk: -vk[0])
    out: dict[str, int | None] = {k: None for k, v in values.items() if v is None}
    previous: float | None = None
    rank = 0
    for i, (value, key) in enumerate(known, start=1):
        if value != previous:
            rank, previous = i, value
        out[key] = rank
    return out


def ranking(rows: list[dict[str, Any]], previous: dict[str, dict[str, Any]], measure: Ranked) -> list[dict[str, Any]]:
    """``rows`` (each with ``code``, ``name`` and the measure) ranked by ``measure``, each with its rank, last
    month's value and rank (from ``previous``, by code) and the change; best first, units with no figure last."""
    now = ranks({r["code"]: r.get(measure.key) for r in rows}, higher_is_better=measure.higher_is_better)
    before = ranks({code: p.get(measure.key) for code, p in previous.items()},
                   higher_is_better=measure.higher_is_better)
    out = []
    for r in rows:
        rank, last = now[r["code"]], before.get(r["code"])
        out.append({"code": r["code"], "name": r["name"], "value": r.get(measure.key), "rank": rank,
                    "previous_value": previous.get(r["code"], {}).get(measure.key), "previous_rank": last,
                    "change": last - rank if rank is not None and last is not None else None})
    return sorted(out, key=lambda r: (r["rank"] is None, r["rank"] or 0, r["code"]))


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def summary(data: dict[str, Any]) -> dict[str, list[str]]:
    """A few sentences on the month, in Chinese and English, from the bulletin's figures (``data``: the dict that
    :func:`gis.oversight.store.bulletin.bulletin` builds, without its summary)."""
    zh: list[str] = []
    en: list[str] = []
    unit, totals, previous = data["unit"]["name"], data["totals"], data["previous_totals"]
    reported, before = totals.get("reported", 0), previous.get("reported", 0)
    if before:
        change = (reported - before) / before
        zh.append(f"{data['month']} 月{unit}共受理事件 {reported:,} 件，较上月{'增加' if change >= 0 else '减少'}"
                  f" {abs(change) * 100:.1f}%。")
        en.append(f"{unit} received {reported:,} events in {data['month']}, {abs(change) * 100:.1f}% "
                  f"{'more' if change >= 0 else 'fewer'} than the month before.")
    else:
        zh.append(f"{data['month']} 月{unit}共受理事件 {reported:,} 件。")
        en.append(f"{unit} received {reported:,} events in {data['month']}.")
    rate, last_rate = totals.get("on_time_closure_rate"), previous.get("on_time_closure_rate")
    if rate is not None:
        trend_zh = "" if last_rate is None else (f"（上月 {_pct(last_rate)}）")
        trend_en = "" if last_rate is None else f" (last month {_pct(last_rate)})"
        zh.append(f"按期结案率 {_pct(rate)}{trend_zh}，超期未结 {totals.get('open_overdue', 0):,} 件。")
        en.append(f"On-time closure was {_pct(rate)}{trend_en}; {totals.get('open_overdue', 0):,} cases are open "
                  "past their deadline.")
    on_time = data["rankings"].get("on_time_closure_rate", [])
    ranked = [r for r in on_time if r["rank"] is not None]
    if len(ranked) > 1:
        best, worst = ranked[0], ranked[-1]
        zh.append(f"按期结案率排名第一的是{best['name']}（{_pct(best['value'])}），"
                  f"末位是{worst['name']}（{_pct(worst['value'])}）。")
        en.append(f"{best['name']} ranked first in on-time closure ({_pct(best['value'])}), "
                  f"{worst['name']} last ({_pct(worst['value'])}).")
        moved = [r for r in ranked if r["change"]]
        if moved:
            up = max(moved, key=lambda r: (r["change"], -r["rank"]))
            down = min(moved, key=lambda r: (r["change"], r["rank"]))
            if up["change"] > 0:
                zh.append(f"{up['name']}由上月第 {up['previous_rank']} 名升至第 {up['rank']} 名。")
                en.append(f"{up['name']} rose from {_ordinal(up['previous_rank'])} to {_ordinal(up['rank'])} in "
                          "on-time closure.")
            if down["change"] < 0:
                zh.append(f"{down['name']}由上月第 {down['previous_rank']} 名降至第 {down['rank']} 名。")
                en.append(f"{down['name']} fell from {_ordinal(down['previous_rank'])} to "
                          f"{_ordinal(down['rank'])}.")
    if data["categories"]:
        top = data["categories"][0]
        zh.append(f"事件最多的类别是{top['name']}（{top['events']:,} 件）。")
        en.append(f"The most reported category was {top['name_en'] or top['name']} ({top['events']:,}).")
    if data["hot_spots"]:
        zh.append(f"发现 {len(data['hot_spots'])} 处事件高发点，最集中的一处 {data['hot_spots'][0]['events']} 件。")
        en.append(f"{len(data['hot_spots'])} hot spots had repeated events; the largest had "
                  f"{data['hot_spots'][0]['events']}.")
    patrol = data["patrol"]["totals"]
    if patrol["grid_weeks"]:
        zh.append(f"每周基础巡查完成 {patrol['basic_done']:,}/{patrol['grid_weeks']:,} 网格周，"
                  f"月度全面巡查完成 {patrol['inspections_done']:,}/{patrol['grids']:,} 个网格。")
        en.append(f"Weekly basic patrols were done in {patrol['basic_done']:,} of {patrol['grid_weeks']:,} "
                  f"grid-weeks; the monthly full inspection in {patrol['inspections_done']:,} of "
                  f"{patrol['grids']:,} grids.")
    cases = data["supervision"]
    late, hung = cases["supervised_open_overdue"], cases["hung"]
    if cases["supervised"] or hung:
        zh.append(f"督办件 {cases['supervised']:,} 件，其中超期未结 {late:,} 件；挂账 {hung:,} 件。")
        en.append(f"{cases['supervised']:,} cases were under supervision, {late:,} of them open past the "
                  f"supervision deadline; {hung:,} cases are hung.")
    return {"zh": zh, "en": en}
