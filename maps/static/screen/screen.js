// The command centre's big screen: polls /screen/data every few seconds and draws every panel from it. A failed
// poll shows the lost connection plainly (the last figures stay, marked with their time) and the screen keeps
// trying, so it recovers by itself when the service is back. Charts: the vendored ECharts; the heat map: Leaflet.heat
// over the offline basemap (basemap.js), darkened for the wall. The root element says data-screen="live" once drawn
// and data-connection "live" or "lost" (tests, screenshots).
"use strict";

const POLL_MS = 3000;
const RETRY_MAX_MS = 10000;
const query = new URLSearchParams(location.search);
let lang = (query.get("lang") || localStorage.getItem("gp-lang") || "zh").startsWith("en") ? "en" : "zh";
const TEXT = {
  zh: { live: "实时", lost: "连接中断", connecting: "连接中…", updated: (t) => `更新于 ${t}`,
        since: (t) => `自 ${t}`, events: (n) => `${n.toLocaleString("zh-CN")} 件`, today: "今日", yesterday: "昨日",
        patrol: "本周巡查完成", police: "派出所 5 分钟圈", base: "网格站 5 分钟圈", computing: "响应圈计算中…",
        none: "无路网，不计算响应圈", signin: "登录已过期，请重新登录", nodata: "暂无数据", league: "下级单位按期结案率排名",
        leagueGrid: "本网格", outside: "无权查看该单位", sources: { grid_member: "网格员", resident_app: "居民",
        hotline: "热线", video: "视频", referral: "转办" } },
  en: { live: "live", lost: "connection lost", connecting: "connecting…", updated: (t) => `updated ${t}`,
        since: (t) => `since ${t}`, events: (n) => `${n.toLocaleString("en")} events`, today: "today",
        yesterday: "yesterday", patrol: "patrolled this week", police: "police, 5 min", base: "grid base, 5 min",
        computing: "response circles: computing…", none: "no street network: no response circles",
        signin: "the sign-in has expired: sign in again", nodata: "no data yet", league: "On-time closure by unit",
        leagueGrid: "this grid", outside: "not in your jurisdiction",
        sources: { grid_member: "grid members", resident_app: "residents", hotline: "hotline", video: "video",
                   referral: "referrals" } },
};
const t = (key) => TEXT[lang][key];
const $ = (id) => document.getElementById(id);
const escape = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const pct = (v) => (v === null || v === undefined ? "–" : `${(v * 100).toFixed(1)}%`);
const root = document.documentElement;

let last = null;        // the last figures received
let lostAt = null;      // when the connection was lost
let seen = null;        // the feed's ids already shown
let fitted = false;

// --- charts ---------------------------------------------------------------------------------------------------------
const charts = {};
function chart(id) {
  if (!charts[id]) charts[id] = echarts.init($(id), "dark", { renderer: "canvas" });
  return charts[id];
}
const AXIS = { axisLine: { lineStyle: { color: "#1d3b66" } }, splitLine: { lineStyle: { color: "#13294a" } },
               axisLabel: { color: "#8fa6c8", fontSize: rem(0.8) } };
function rem(n) { return n * parseFloat(getComputedStyle(root).fontSize); }

function drawCategories(rows) {
  const top = rows.slice(0, 8).reverse();
  chart("categories").setOption({
    backgroundColor: "transparent", animation: false,
    grid: { left: rem(7.5), right: rem(2.6), top: rem(0.4), bottom: rem(0.4) },
    xAxis: { type: "value", show: false },
    yAxis: { type: "category", data: top.map((c) => (lang === "en" && c.name_en) || c.name), ...AXIS,
             axisLabel: { color: "#e6eefc", fontSize: rem(0.85), width: rem(7), overflow: "truncate" } },
    series: [{ type: "bar", data: top.map((c) => c.events), barWidth: "55%",
               itemStyle: { color: "#39c5ff", borderRadius: [0, 3, 3, 0] },
               label: { show: true, position: "right", color: "#e6eefc", fontSize: rem(0.85) } }],
  }, true);
}

function drawSources(rows) {
  const names = TEXT[lang].sources;
  chart("sources").setOption({
    backgroundColor: "transparent", animation: false,
    color: ["#39c5ff", "#37d67a", "#ffb020", "#b37feb", "#ff7a45"],
    legend: { orient: "vertical", right: 0, top: "middle", textStyle: { color: "#e6eefc", fontSize: rem(0.85) } },
    series: [{ type: "pie", radius: ["45%", "75%"], center: ["35%", "50%"],
               label: { color: "#e6eefc", fontSize: rem(0.8), formatter: "{d}%" },
               data: rows.map((r) => ({ name: names[r.source] || r.source, value: r.events })) }],
  }, true);
}

function drawHours(intake) {
  const now = new Date(last.at);
  const hours = [...Array(24).keys()].map((h) => `${h}`);
  chart("hours").setOption({
    backgroundColor: "transparent", animation: false,
    legend: { right: 0, top: 0, textStyle: { color: "#e6eefc", fontSize: rem(0.85) } },
    grid: { left: rem(2.6), right: rem(0.6), top: rem(1.8), bottom: rem(1.6) },
    xAxis: { type: "category", data: hours, ...AXIS }, yAxis: { type: "value", minInterval: 1, ...AXIS },
    series: [
      { name: t("yesterday"), type: "line", data: intake.yesterday_by_hour, symbol: "none",
        lineStyle: { color: "#8fa6c8", type: "dashed" }, itemStyle: { color: "#8fa6c8" } },
      { name: t("today"), type: "bar", data: intake.today_by_hour.map((n, h) => (h <= hourOf(now) ? n : null)),
        itemStyle: { color: "#39c5ff" } },
    ],
  }, true);
}
function hourOf(date) {
  return Number(new Intl.DateTimeFormat("en", { hour: "numeric", hourCycle: "h23", timeZone: last.timezone })
    .format(date));
}

function drawGauges(patrol, circles) {
  const gauge = (name, value, centre, colour) => ({
    type: "gauge", center: [centre, "58%"], radius: "68%", startAngle: 210, endAngle: -30, min: 0, max: 100,
    progress: { show: true, width: rem(0.6), itemStyle: { color: colour } },
    axisLine: { lineStyle: { width: rem(0.6), color: [[1, "#13294a"]] } }, axisTick: { show: false },
    splitLine: { show: false }, axisLabel: { show: false }, pointer: { show: false },
    title: { offsetCenter: [0, "62%"], color: "#8fa6c8", fontSize: rem(0.8) },
    detail: { offsetCenter: [0, "5%"], color: "#fff", fontSize: rem(1.5), formatter: (v) => (v === null ||
      Number.isNaN(v) ? "–" : `${v.toFixed(0)}%`), valueAnimation: false },
    data: [{ value: value === null || value === undefined ? NaN : value * 100, name }],
  });
  const ready = circles.status === "ready";
  chart("gauges").setOption({
    backgroundColor: "transparent", animation: false,
    series: [gauge(t("patrol"), patrol.done_share, "17%", "#37d67a"),
             gauge(t("police"), ready ? circles.police_share : null, "50%", "#39c5ff"),
             gauge(t("base"), ready ? circles.base_share : null, "83%", "#ffb020")],
  }, true);
  $("circles-note").textContent = circles.status === "computing" ? t("computing")
    : circles.status === "none" ? t("none")
      : `${patrol.done.toLocaleString()}/${patrol.grids.toLocaleString()} · ${lang === "en" ? "week of" : "周一"} ${patrol.week_of}`;
}

// --- the map ----------------------------------------------------------------------------------------------------------
const map = L.map("map", { zoomControl: false, dragging: false, scrollWheelZoom: false, doubleClickZoom: false,
                           boxZoom: false, keyboard: false, touchZoom: false, zoomSnap: 0.25 });
map.setView([0, 0], 2);
// the heat's spots sized from the screen's height, like everything else (a 4K wall's are twice as many pixels)
const heat = L.heatLayer([], { radius: rem(1.1), blur: rem(0.9), maxZoom: 14, minOpacity: 0.35,
                               gradient: { 0.2: "#1f7ae0", 0.45: "#39c5ff", 0.65: "#ffe066", 0.85: "#ff8c1a",
                                           1: "#ff2b2b" } }).addTo(map);

function drawMap(data) {
  if (!fitted && (data.bbox || data.heat.length)) {
    const [w, s, e, n] = data.bbox || [Math.min(...data.heat.map((p) => p[0])), Math.min(...data.heat.map((p) => p[1])),
                                       Math.max(...data.heat.map((p) => p[0])), Math.max(...data.heat.map((p) => p[1]))];
    map.fitBounds([[s, w], [n, e]], { padding: [10, 10] });
    fitted = true;
  }
  const top = Math.max(1, ...data.heat.map((p) => p[2]));
  heat.setOptions({ max: top });
  heat.setLatLngs(data.heat.map(([lon, lat, n]) => [lat, lon, n]));
  const total = data.heat.reduce((sum, p) => sum + p[2], 0);
  $("heat-count").textContent = t("events")(total);
}

// --- lists --------------------------------------------------------------------------------------------------------------
function time(iso) {
  return new Intl.DateTimeFormat(lang === "en" ? "en-GB" : "zh-CN", { hour: "2-digit", minute: "2-digit",
                                                                     timeZone: last.timezone }).format(new Date(iso));
}

function drawFeed(rows) {
  const fresh = seen === null ? new Set() : new Set(rows.filter((r) => !seen.has(r.id)).map((r) => r.id));
  seen = new Set(rows.map((r) => r.id));
  $("feed").innerHTML = rows.map((r) => {
    const category = (lang === "en" && r.category_name_en) || r.category_name;
    const source = TEXT[lang].sources[r.source] || r.source;
    return `<li data-id="${r.id}" class="${fresh.has(r.id) ? "new" : ""}"><span class="time">${escape(time(r.reported_at))}`
      + `</span><span>${escape(category)} · ${escape(source)}</span><span class="grid">${escape(r.grid_name || r.grid || "–")}`
      + "</span></li>";
  }).join("") || `<li><span></span><span>${t("nodata")}</span></li>`;
  // only whole rows: those that would be cut at the panel's foot are left out
  const feed = $("feed");
  const bottom = feed.parentElement.getBoundingClientRect().bottom - rem(0.4);
  while (feed.children.length > 1 && feed.lastElementChild.getBoundingClientRect().bottom > bottom) {
    feed.lastElementChild.remove();
  }
}

function drawLeague(league) {
  $("league-title").textContent = t("league");
  const rows = league.units;
  const fit = Math.max(3, Math.floor($("league").parentElement.clientHeight / rem(1.45)) - 1);
  const shown = rows.length > fit ? [...rows.slice(0, fit - Math.floor(fit / 3)), ...rows.slice(-Math.floor(fit / 3))]
    : rows;
  $("league").innerHTML = shown.map((u) => {
    const rank = rows.indexOf(u) + 1;
    const value = u.on_time_closure_rate;
    const low = value !== null && value < 0.8;
    return `<li class="${low ? "low" : ""}"><span class="rank">${rank}</span><span class="name">${escape(u.name)}</span>`
      + `<span class="bar"><i style="width:${value === null ? 0 : (value * 100).toFixed(1)}%"></i></span>`
      + `<span class="value">${pct(value)}</span></li>`;
  }).join("") || `<li><span></span><span class="name">${league.level ? t("nodata") : t("leagueGrid")}</span></li>`;
}

// --- the loop -----------------------------------------------------------------------------------------------------------
function draw() {
  if (!last) return;
  const d = last;
  $("unit").textContent = d.unit.name;
  document.title = `${d.unit.name} · 指挥大屏`;
  $("today").textContent = d.intake.today.toLocaleString();
  $("yesterday").textContent = d.intake.yesterday_same_time.toLocaleString();
  $("open").textContent = d.open.open.toLocaleString();
  $("overdue").textContent = d.open.overdue.toLocaleString();
  $("due-soon").textContent = d.open.due_soon.toLocaleString();
  $("rate").textContent = pct(d.month.on_time_closure_rate);
  drawCategories(d.categories);
  drawSources(d.sources);
  drawHours(d.intake);
  drawGauges(d.patrol, d.response_circles);
  drawFeed(d.feed);
  drawLeague(d.league);
  drawMap(d);
  root.dataset.screen = "live";
}

function setConnection(state) {
  root.dataset.connection = state;
  $("status").dataset.connection = state;
  $("connection").textContent = t(state);
  $("lost").hidden = state !== "lost";
  if (last) $("updated").textContent = TEXT[lang].updated(time(last.at));
  if (state === "lost" && lostAt) $("lost-since").textContent = TEXT[lang].since(time(lostAt.toISOString()));
}

async function poll() {
  let wait = POLL_MS;
  try {
    const params = new URLSearchParams();
    ["unit", "city"].forEach((k) => { if (query.get(k)) params.set(k, query.get(k)); });
    const response = await fetch(`/screen/data?${params}`, { credentials: "same-origin", cache: "no-store" });
    if (response.status === 401) {
      $("connection").textContent = t("signin");
      setTimeout(() => { location.href = `/login?next=${encodeURIComponent(location.pathname + location.search)}`; },
                 5000);
      return;
    }
    if (response.status === 403 || response.status === 404) {
      const body = await response.json().catch(() => ({}));
      $("unit").textContent = body.detail || t("outside");
      root.dataset.screen = "refused";
      return;  // nothing to retry: the address itself is wrong
    }
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    last = await response.json();
    lostAt = null;
    draw();
    setConnection("live");
  } catch (err) {
    if (!lostAt) lostAt = new Date();
    setConnection("lost");
    wait = Math.min(RETRY_MAX_MS, POLL_MS * 2);
  }
  setTimeout(poll, wait);
}

function tick() {
  const zone = last ? last.timezone : undefined;
  $("clock").textContent = new Intl.DateTimeFormat(lang === "en" ? "en-GB" : "zh-CN", {
    year: "numeric", month: "2-digit", day: "2-digit", weekday: "short", hour: "2-digit", minute: "2-digit",
    second: "2-digit", timeZone: zone }).format(new Date());
}

function applyLanguage() {
  root.lang = lang === "en" ? "en" : "zh-CN";
  document.querySelectorAll("[data-zh]").forEach((el) => { el.textContent = el.dataset[lang]; });
  $("lang").textContent = lang === "en" ? "中文" : "EN";
  if (window.gridpatrolBasemap) window.gridpatrolBasemap.setLanguage(lang);
  if (last) { draw(); setConnection(root.dataset.connection || "live"); }
}
$("lang").addEventListener("click", () => {
  lang = lang === "en" ? "zh" : "en";
  localStorage.setItem("gp-lang", lang);
  applyLanguage();
});
window.addEventListener("resize", () => { Object.values(charts).forEach((c) => c.resize()); map.invalidateSize(); draw(); });

applyLanguage();
tick();
setInterval(tick, 1000);
poll();
