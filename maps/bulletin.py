"""The monthly bulletin as offices pass it on: an XLSX workbook (one sheet per ranking, native number formats, a chart
on each) and a printable page (A4, Chinese first, English on the same page's other language), both drawn from the
dict :func:`gis.oversight.store.bulletin.bulletin` builds. No queries here."""

from __future__ import annotations

import io
from typing import Any

from openpyxl import Workbook
from openpyxl.chart import BarChart, LineChart, Reference
from openpyxl.chart.series import SeriesLabel
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from gis.oversight.bulletin import RANKINGS
from maps.text import page_text

PERCENT = "0.0%"
HEADER = PatternFill("solid", fgColor="DDE6F0")
LEVEL_ZH = {"district": "区", "street": "街道", "community": "社区", "grid": "网格"}
LEVEL_EN = {"district": "districts", "street": "streets", "community": "communities", "grid": "grids"}
STATE_ZH = {"reported": "待受理", "accepted": "已立案", "dispatched": "处置中", "suspended": "已暂停",
            "handled": "已处置", "verified": "已核查", "hung": "挂账", "closed": "已结案", "rejected": "不予受理",
            "merged": "已合并"}


def _sheet_name(zh: str, en: str) -> str:
    name = f"{zh} {en}"
    for bad in "[]:*?/\\":
        name = name.replace(bad, " ")
    return name[:31]


def _header(ws: Worksheet, row: int, titles: list[str]) -> None:
    for col, title in enumerate(titles, start=1):
        cell = ws.cell(row=row, column=col, value=title)
        cell.font = Font(bold=True)
        cell.fill = HEADER
        cell.alignment = Alignment(wrap_text=True, vertical="center")


def _widths(ws: Worksheet, widths: list[int]) -> None:
    for i, w in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(i)].width = w


def _ranking_sheet(wb: Workbook, title_zh: str, title_en: str, rows: list[dict[str, Any]], share: bool,
                   data: dict[str, Any]) -> None:
    ws = wb.create_sheet(_sheet_name(title_zh, title_en))
    ws["A1"] = f"{data['unit']['name']} {data['month']} {title_zh}排名 · {title_en} ranking"
    ws["A1"].font = Font(bold=True, size=13)
    _header(ws, 3, ["名次 Rank", "单位 Unit", "代码 Code", f"本月 {data['month']}", f"上月 {data['previous_month']}",
                    "上月名次 Last rank", "名次变化 Change"])
    for i, r in enumerate(rows, start=4):
        ws.cell(row=i, column=1, value=r["rank"])
        ws.cell(row=i, column=2, value=r["name"])
        ws.cell(row=i, column=3, value=r["code"])
        for col, key in ((4, "value"), (5, "previous_value")):
            cell = ws.cell(row=i, column=col, value=r[key])
            if share:
                cell.number_format = PERCENT
        ws.cell(row=i, column=6, value=r["previous_rank"])
        change = ws.cell(row=i, column=7, value=r["change"])
        change.number_format = "+0;-0;0"
    _widths(ws, [10, 28, 18, 14, 14, 12, 12])
    ws.freeze_panes = "A4"
    if rows:
        chart = BarChart()
        chart.type = "bar"
        chart.title = f"{title_zh} {title_en}"
        chart.y_axis.number_format = PERCENT if share else "General"
        chart.add_data(Reference(ws, min_col=4, min_row=3, max_row=3 + len(rows)), titles_from_data=True)
        chart.set_categories(Reference(ws, min_col=2, min_row=4, max_row=3 + len(rows)))
        chart.height, chart.width = max(7.5, 0.6 * len(rows)), 16
        chart.legend = None
        ws.add_chart(chart, "I3")


def bulletin_xlsx(data: dict[str, Any]) -> bytes:
    """The bulletin as an XLSX workbook: a summary, one sheet per ranking (the unit's children, then the
    departments), the categories with their trend, hot spots, patrol compliance and the supervised and hung cases."""
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = _sheet_name("概要", "Summary")
    ws["A1"] = f"{data['unit']['name']} {data['month']} 月度考核通报 · monthly bulletin"
    ws["A1"].font = Font(bold=True, size=14)
    ws["A2"] = (f"统计期 period {data['start'][:16]} – {data['end'][:16]} ({data['timezone']})"
                + (" · 本月未完 month in progress" if data["partial"] else ""))
    _header(ws, 4, ["指标 Figure", f"本月 {data['month']}", f"上月 {data['previous_month']}"])
    labels = [("reported", "受理 reported", False), ("dispatched", "派遣 dispatched", False),
              ("due", "到期 due", False), ("closed", "结案 closed", False),
              ("closed_on_time", "按期结案 closed on time", False),
              ("on_time_closure_rate", "按期结案率 on-time closure", True),
              ("closure_rate", "结案率 closure", True), ("rework_rate", "返工率 rework", True),
              ("open_overdue", "超期未结 open overdue (now)", False), ("supervised", "督办 supervised", False),
              ("hung", "挂账 hung (now)", False)]
    for i, (key, label, share) in enumerate(labels, start=5):
        ws.cell(row=i, column=1, value=label)
        for col, source in ((2, data["totals"]), (3, data["previous_totals"])):
            cell = ws.cell(row=i, column=col, value=source.get(key))
            cell.number_format = PERCENT if share else "#,##0"
    row = 6 + len(labels)
    ws.cell(row=row, column=1, value="摘要 Summary").font = Font(bold=True)
    for line in [*data["summary"]["zh"], *data["summary"]["en"], *data["notes"]]:
        row += 1
        ws.cell(row=row, column=1, value=line)
    _widths(ws, [34, 16, 16])
    level = data["level"]
    for m in RANKINGS:
        rows = data["rankings"].get(m.key)
        if rows is not None and level:
            _ranking_sheet(wb, f"{LEVEL_ZH[level]}{m.zh}", m.en, rows, m.share, data)
    for m in RANKINGS:
        rows = data["department_rankings"].get(m.key)
        if rows is not None:
            _ranking_sheet(wb, f"部门{m.zh}", f"dept {m.en}", rows, m.share, data)

    ws = wb.create_sheet(_sheet_name("事件类别", "Categories"))
    months = [t["month"] for t in data["categories"][0]["trend"]] if data["categories"] else []
    _header(ws, 1, ["类别 Category", "代码 Code", f"本月 {data['month']}", f"上月 {data['previous_month']}",
                    "环比 Change", *months])
    for i, c in enumerate(data["categories"], start=2):
        ws.cell(row=i, column=1, value=c["name"])
        ws.cell(row=i, column=2, value=c["code"])
        ws.cell(row=i, column=3, value=c["events"]).number_format = "#,##0"
        ws.cell(row=i, column=4, value=c["previous_events"]).number_format = "#,##0"
        ws.cell(row=i, column=5, value=c["change"]).number_format = "+0.0%;-0.0%;0.0%"
        for j, t in enumerate(c["trend"], start=6):
            ws.cell(row=i, column=j, value=t["events"]).number_format = "#,##0"
    _widths(ws, [22, 12, 12, 12, 10, *[10] * len(months)])
    if data["categories"] and months:
        chart = LineChart()
        chart.title = "事件类别趋势 category trend"
        n = len(data["categories"])
        for i in range(2, 2 + min(n, 5)):  # the top five as lines over the months
            chart.add_data(Reference(ws, min_col=6, max_col=5 + len(months), min_row=i), from_rows=True,
                           titles_from_data=False)
        chart.set_categories(Reference(ws, min_col=6, max_col=5 + len(months), min_row=1))
        for series, c in zip(chart.series, data["categories"], strict=False):
            series.tx = SeriesLabel(v=str(c["name"]))
        chart.height, chart.width = 8, 18
        ws.add_chart(chart, f"A{n + 4}")

    ws = wb.create_sheet(_sheet_name("热点", "Hot spots"))
    _header(ws, 1, ["序号 No.", "事件 Events", "主要类别 Main category", "类别数 Categories", "网格 Grid",
                    "网格名 Grid name", "经度 Lon", "纬度 Lat", "范围 Across (m)"])
    for i, h in enumerate(data["hot_spots"], start=2):
        for col, value in enumerate((i - 1, h["events"], h["category_name"], h["categories"], h["grid"],
                                     h["grid_name"], h["lon"], h["lat"], h["across_m"]), start=1):
            ws.cell(row=i, column=col, value=value)
    _widths(ws, [8, 10, 20, 12, 18, 24, 12, 12, 12])

    ws = wb.create_sheet(_sheet_name("巡查", "Patrol"))
    _header(ws, 1, ["单位 Unit", "代码 Code", "网格 Grids", "网格周 Grid-weeks", "基础巡查完成 Basic done",
                    "完成率 Basic share", "全面巡查完成 Inspections done", "完成率 Inspection share"])
    names = {c["code"]: c["name"] for c in data["children"]}
    units = sorted(data["patrol"]["units"].items())
    for i, (code, p) in enumerate([*units, ("合计 total", data["patrol"]["totals"])], start=2):
        ws.cell(row=i, column=1, value=names.get(code, code))
        ws.cell(row=i, column=2, value=code if code in names else None)
        for col, key in ((3, "grids"), (4, "grid_weeks"), (5, "basic_done"), (7, "inspections_done")):
            ws.cell(row=i, column=col, value=p[key]).number_format = "#,##0"
        ws.cell(row=i, column=6, value=p["basic_share"]).number_format = PERCENT
        ws.cell(row=i, column=8, value=p["inspection_share"]).number_format = PERCENT
    _widths(ws, [24, 18, 10, 12, 14, 12, 16, 14])

    ws = wb.create_sheet(_sheet_name("督办挂账", "Supervised, hung"))
    _header(ws, 1, ["类型 Kind", "编号 Case", "类别 Category", "网格 Grid", "状态 State", "上报 Reported",
                    "处置时限 Due", "督办时限 Supervision due", "督办单位 Answerable", "结案 Closed"])
    row = 2
    for kind, cases in (("督办 supervised", data["supervision"]["supervised_cases"]),
                        ("挂账 hung", data["supervision"]["hung_cases"])):
        for c in cases:
            for col, value in enumerate((kind, c["id"], c["category_name"], c["grid"], STATE_ZH.get(c["state"],
                                         c["state"]), c["reported_at"][:16], (c["due_at"] or "")[:16],
                                         (c["supervision_due_at"] or "")[:16], c["supervision_unit"],
                                         (c["closed_at"] or "")[:16]), start=1):
                ws.cell(row=row, column=col, value=value)
            row += 1
    _widths(ws, [14, 10, 18, 18, 10, 17, 17, 17, 16, 17])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def _change(change: int | None) -> str:
    if not change:
        return '<span class="same">–</span>'
    return f'<span class="up">▲{change}</span>' if change > 0 else f'<span class="down">▼{-change}</span>'


def bulletin_page(data: dict[str, Any], *, lang: str = "zh", links: dict[str, str] | None = None) -> str:
    """The bulletin as one printable HTML page (A4; the screen shows the print and download links, print hides
    them). Every name is :func:`page_text`."""
    en = lang == "en"
    t = (lambda zh, e: e if en else zh)  # noqa: E731
    esc = page_text
    links = links or {}
    unit, month = data["unit"], data["month"]
    level = data["level"]
    parts = [f"""<!doctype html><html lang="{'en' if en else 'zh-CN'}"><head><meta charset="utf-8">
<title>{esc(unit['name'])} {esc(month)} {t('月度考核通报', 'monthly bulletin')}</title>
<link rel="icon" href="data:,"><link rel="stylesheet" href="/static/bulletin/bulletin.css"></head><body>
<nav class="no-print"><a href="{esc(links.get('other', ''))}">{t('English', '中文')}</a> ·
<a href="{esc(links.get('xlsx', ''))}">{t('下载 Excel', 'Download XLSX')}</a> ·
<button type="button" id="print">{t('打印', 'Print')}</button></nav>
<header><h1>{esc(unit['name'])} {esc(month)} {t('月度考核通报', 'monthly bulletin')}</h1>
<p class="period">{t('统计期', 'Period')} {esc(data['start'][:16].replace('T', ' '))} –
{esc(data['end'][:16].replace('T', ' '))} ({esc(data['timezone'])}){
    t(' · 本月尚未结束', ' · month in progress') if data['partial'] else ''}</p></header>
<section><h2>{t('一、总体情况', '1. Overview')}</h2>"""]
    parts += [f"<p>{esc(line)}</p>" for line in data["summary"]["en" if en else "zh"]]
    parts += [f'<p class="note">{esc(n)}</p>' for n in data["notes"]]
    rows = [("reported", t("受理", "reported"), False), ("closed", t("结案", "closed"), False),
            ("on_time_closure_rate", t("按期结案率", "on-time closure"), True),
            ("closure_rate", t("结案率", "closure"), True), ("rework_rate", t("返工率", "rework"), True),
            ("open_overdue", t("超期未结（当前）", "open overdue (now)"), False),
            ("supervised", t("督办", "supervised"), False), ("hung", t("挂账（当前）", "hung (now)"), False)]
    parts.append(f"<table class='totals'><thead><tr><th>{t('指标', 'Figure')}</th><th>{esc(month)}</th>"
                 f"<th>{esc(data['previous_month'])}</th></tr></thead><tbody>")
    for key, label, share in rows:
        now_v, before_v = data["totals"].get(key), data["previous_totals"].get(key)
        fmt = _pct if share else (lambda v: "—" if v is None else f"{v:,}")
        parts.append(f"<tr><td>{label}</td><td class='n'>{fmt(now_v)}</td><td class='n'>{fmt(before_v)}</td></tr>")
    parts.append("</tbody></table></section>")

    def ranking_table(title: str, rows: list[dict[str, Any]], share: bool) -> str:
        top = max([abs(r["value"]) for r in rows if r["value"] is not None] or [0]) or 1

        def width(r: dict[str, Any]) -> float:
            return abs(r["value"]) / top * 100 if r["value"] is not None else 0.0
        body = "".join(
            f"<tr><td class='n'>{r['rank'] or '—'}</td><td>{esc(r['name'])}</td>"
            f"<td class='n bar'><span style='width:{width(r):.0f}%'>"
            f"</span><b>{_pct(r['value']) if share else r['value']}</b></td>"
            f"<td class='n'>{_pct(r['previous_value']) if share else (r['previous_value'] or '—')}</td>"
            f"<td class='n'>{_change(r['change'])}</td></tr>" for r in rows)
        return (f"<h3>{title}</h3><table><thead><tr><th>{t('名次', 'Rank')}</th><th>{t('单位', 'Unit')}</th>"
                f"<th>{esc(month)}</th><th>{esc(data['previous_month'])}</th><th>{t('变化', 'Change')}</th></tr>"
                f"</thead><tbody>{body}</tbody></table>")
    if level and data["rankings"]:
        title = t(f"二、{LEVEL_ZH[level]}排名", f"2. Ranking of the {LEVEL_EN[level]}")
        parts.append(f"<section><h2>{title}</h2>")
        for m in RANKINGS:
            parts.append(ranking_table(t(m.zh, m.en), data["rankings"][m.key], m.share))
        parts.append("</section>")
    parts.append(f"<section><h2>{t('三、部门排名', '3. Departments')}</h2>")
    for m in RANKINGS:
        if m.key in data["department_rankings"]:
            parts.append(ranking_table(t(m.zh, m.en), data["department_rankings"][m.key], m.share))
    parts.append("</section>")
    months = [x["month"] for x in data["categories"][0]["trend"]] if data["categories"] else []
    parts.append(f"<section><h2>{t('四、事件类别', '4. Event categories')}</h2><table><thead><tr>"
                 f"<th>{t('类别', 'Category')}</th><th>{esc(month)}</th><th>{esc(data['previous_month'])}</th>"
                 f"<th>{t('环比', 'Change')}</th>" + "".join(f"<th>{esc(m[2:])}</th>" for m in months)
                 + "</tr></thead><tbody>")
    for c in data["categories"]:
        change = "—" if c["change"] is None else f"{c['change'] * 100:+.1f}%"
        name = c["name_en"] or c["name"] if en else c["name"]
        parts.append(f"<tr><td>{esc(name)}</td><td class='n'>{c['events']:,}</td><td class='n'>"
                     f"{c['previous_events']:,}</td><td class='n'>{change}</td>"
                     + "".join(f"<td class='n'>{x['events']:,}</td>" for x in c["trend"]) + "</tr>")
    parts.append("</tbody></table></section>")
    rule = data["hot_spot_rule"]
    parts.append(f"<section><h2>{t('五、事件高发点', '5. Hot spots')}</h2><p class='note'>"
                 + t(f"{rule['within_m']:g} 米内重复发生 {rule['min_events']} 件以上的地点。",
                     f"Places with {rule['min_events']} or more events within {rule['within_m']:g} m of each other.")
                 + f"</p><table><thead><tr><th>#</th><th>{t('事件', 'Events')}</th><th>{t('主要类别', 'Main category')}"
                 f"</th><th>{t('网格', 'Grid')}</th><th>{t('位置', 'Where')}</th></tr></thead><tbody>")
    for i, h in enumerate(data["hot_spots"], start=1):
        category = (h["category_name_en"] or h["category_name"]) if en else h["category_name"]
        parts.append(f"<tr><td class='n'>{i}</td><td class='n'>{h['events']}</td><td>{esc(category)}</td>"
                     f"<td>{esc(h['grid_name'] or h['grid'] or '—')}</td><td class='n'>{h['lon']:.5f}, "
                     f"{h['lat']:.5f}</td></tr>")
    if not data["hot_spots"]:
        parts.append(f"<tr><td colspan='5'>{t('无', 'none')}</td></tr>")
    parts.append("</tbody></table></section>")
    p = data["patrol"]
    names = {c["code"]: c["name"] for c in data["children"]}
    parts.append(f"<section><h2>{t('六、巡查落实', '6. Patrols')}</h2><table><thead><tr><th>{t('单位', 'Unit')}</th>"
                 f"<th>{t('网格', 'Grids')}</th><th>{t('每周基础巡查', 'Weekly basic patrols')}</th>"
                 f"<th>{t('月度全面巡查', 'Monthly inspections')}</th></tr></thead><tbody>")
    for code, d in [*sorted(p["units"].items()), (t("合计", "Total"), p["totals"])]:
        parts.append(f"<tr><td>{esc(names.get(code, code))}</td><td class='n'>{d['grids']:,}</td>"
                     f"<td class='n'>{d['basic_done']:,}/{d['grid_weeks']:,} ({_pct(d['basic_share'])})</td>"
                     f"<td class='n'>{d['inspections_done']:,}/{d['grids']:,} ({_pct(d['inspection_share'])})</td>"
                     "</tr>")
    parts.append("</tbody></table></section>")
    s = data["supervision"]
    parts.append(f"<section><h2>{t('七、督办与挂账', '7. Supervised and hung cases')}</h2><p>"
                 + t(f"督办 {s['supervised']:,} 件，按时办结 {s['supervised_on_time']:,} 件，超期未结 "
                     f"{s['supervised_open_overdue']:,} 件；挂账 {s['hung']:,} 件。",
                     f"{s['supervised']:,} supervised, {s['supervised_on_time']:,} closed in time, "
                     f"{s['supervised_open_overdue']:,} open past the supervision deadline; {s['hung']:,} hung.")
                 + f"</p><table><thead><tr><th>{t('编号', 'Case')}</th><th>{t('类别', 'Category')}</th>"
                 f"<th>{t('网格', 'Grid')}</th><th>{t('状态', 'State')}</th><th>{t('督办时限', 'Supervision due')}</th>"
                 f"<th>{t('督办单位', 'Answerable')}</th></tr></thead><tbody>")
    for c in [*s["supervised_cases"], *s["hung_cases"]]:
        state = c["state"] if en else STATE_ZH.get(c["state"], c["state"])
        parts.append(f"<tr{' class=late' if c['supervision_open_overdue'] else ''}><td class='n'>{c['id']}</td>"
                     f"<td>{esc(c['category_name'])}</td><td>{esc(c['grid'] or '—')}</td><td>{esc(state)}</td>"
                     f"<td>{esc((c['supervision_due_at'] or '—')[:16].replace('T', ' '))}</td>"
                     f"<td>{esc(c['supervision_unit'] or '—')}</td></tr>")
    parts.append("</tbody></table></section>")
    made = esc(data["generated_at"][:19].replace("T", " "))
    parts.append(f"<footer>{t('生成于', 'Generated')} {made} · gridpatrol · "
                 f"{t('数据与 /kpis、/coverage、/leaders/figures 一致', 'the figures of /kpis, /coverage, /leaders')}"
                 "</footer><script>document.getElementById('print').addEventListener('click', () => window.print());"
                 "</script></body></html>")
    return "\n".join(parts)
