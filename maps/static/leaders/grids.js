// Every grid of the viewer's jurisdiction coloured by a figure, drawn by MapLibre GL from the service's vector tiles
// (/tiles/grids: one point per grid below zoom 12, the outlines from 12) into the basemap's GL map: the page holds
// no feature, so a province's 50,000 grids cost the page nothing and the tiles only what is in view. Click a grid
// (zoom 12+) for its leaders' map. The page marks itself data-grids="drawn" once every grid in view is coloured.
"use strict";

const TEXT = {
  zh: { summary: (n) => `辖区内 ${n.toLocaleString("zh-CN")} 个网格`, none: "辖区内没有网格", nodata: "无数据",
        unit: (name, n) => `${name}：${n.toLocaleString("zh-CN")} 个网格`,
        households: "户", open: "未办结", open_overdue: "超期", grid: "网格", more: "点击查看" },
  en: { summary: (n) => `${n.toLocaleString("en")} grids in your jurisdiction`, none: "No grid in your jurisdiction",
        unit: (name, n) => `${name}: ${n.toLocaleString("en")} grids`,
        nodata: "no data", households: "households", open: "open", open_overdue: "overdue", grid: "grid",
        more: "click for its map" },
};
// fixed classes per figure: (upper bound, colour); the last class is open-ended
const CLASSES = {
  open_overdue: [[0, "#1a9850"], [1, "#fee08b"], [3, "#fdae61"], [9, "#f46d43"], [Infinity, "#a50026"]],
  open: [[0, "#1a9850"], [2, "#d9ef8b"], [5, "#fee08b"], [10, "#fdae61"], [Infinity, "#d73027"]],
  households: [[299, "#c6dbef"], [500, "#6baed6"], [800, "#2171b5"], [Infinity, "#08306b"]],
};
let lang = (localStorage.getItem("gp-lang") || "zh").startsWith("en") ? "en" : "zh";
let measure = "open_overdue";
let gl = null;
const t = (key) => TEXT[lang][key];
const $ = (id) => document.getElementById(id);
const escape = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const map = L.map("map", { zoomSnap: 0.25, preferCanvas: true });
L.control.scale({ imperial: false }).addTo(map);

function colour() {
  // MapLibre's step: colour of the first class, then each next class from just above the previous bound
  const classes = CLASSES[measure];
  const step = ["step", ["coalesce", ["get", measure], 0], classes[0][1]];
  for (let i = 1; i < classes.length; i += 1) step.push(classes[i - 1][0] + 1, classes[i][1]);
  return step;
}

function legend() {
  const classes = CLASSES[measure];
  $("legend").innerHTML = classes.map(([upper, c], i) => {
    const lower = i === 0 ? null : classes[i - 1][0] + 1;
    const range = i === 0 ? `≤ ${upper}` : upper === Infinity ? `≥ ${lower}`
      : lower === upper ? `${upper}` : `${lower}–${upper}`;
    return `<div><span class="swatch" style="background:${c}"></span>${escape(range)}</div>`;
  }).join("");
}

function paint() {
  if (!gl) return;
  gl.setPaintProperty("grid-dots", "circle-color", colour());
  gl.setPaintProperty("grid-fill", "fill-color", colour());
}

function drawGrids(glMap) {
  gl = glMap;
  window.gridpatrolGl = gl;  // for tests and the benchmark
  gl.addSource("grids", { type: "vector", tiles: [window.gridpatrolBasemap.tiles("/tiles/grids/{z}/{x}/{y}.mvt")],
                          minzoom: 7, maxzoom: 15 });
  // under the basemap's labels, so street names stay readable through the colours
  const labels = window.gridpatrolBasemap.beneathLabels(gl);
  // GL zooms are Leaflet's minus one (512-pixel tiles); points up to Leaflet zoom 12, outlines from there
  gl.addLayer({ id: "grid-dots", type: "circle", source: "grids", "source-layer": "grids",
                filter: ["==", ["geometry-type"], "Point"],
                paint: { "circle-color": colour(), "circle-opacity": 0.9,
                         "circle-radius": ["interpolate", ["linear"], ["zoom"], 6, 1.2, 9, 2.5, 11, 5] } }, labels);
  gl.addLayer({ id: "grid-fill", type: "fill", source: "grids", "source-layer": "grids",
                filter: ["==", ["geometry-type"], "Polygon"],
                paint: { "fill-color": colour(), "fill-opacity": 0.55 } }, labels);
  gl.addLayer({ id: "grid-line", type: "line", source: "grids", "source-layer": "grids",
                filter: ["==", ["geometry-type"], "Polygon"], paint: { "line-color": "#333", "line-width": 0.8 } },
              labels);
  gl.once("idle", () => { document.documentElement.dataset.grids = "drawn"; });
}

function gridAt(latlng) {
  if (!gl) return null;
  const p = gl.project([latlng.lng, latlng.lat]);
  const found = gl.queryRenderedFeatures(p, { layers: ["grid-fill"] });
  return found.length ? found[0].properties : null;
}
map.on("click", (e) => {
  const grid = gridAt(e.latlng);
  if (grid && grid.code) location.href = `/leaders?unit=${encodeURIComponent(grid.code)}`;
});
map.on("mousemove", (e) => {
  const grid = gridAt(e.latlng);
  map.getContainer().style.cursor = grid && grid.code ? "pointer" : "";
  if (!grid || !grid.code) { map.closeTooltip(); return; }
  const html = `<div class="grid-tip"><b>${escape(grid.name || grid.code)}</b> ${escape(grid.code)}<br>` +
    `${escape(t("households"))} ${escape(grid.households)} · ${escape(t("open"))} ${escape(grid.open)} · ` +
    `${escape(t("open_overdue"))} ${escape(grid.open_overdue)}<br>${escape(t("more"))}</div>`;
  map.openTooltip(html, e.latlng, { direction: "top", offset: [0, -6] });
});

function translate() {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  document.querySelectorAll("[data-zh]").forEach((el) => { el.textContent = el.dataset[lang]; });
  $("lang").textContent = lang === "zh" ? "English" : "中文";
  if (window.gridpatrolBasemap) window.gridpatrolBasemap.setLanguage(lang);
}
$("lang").addEventListener("click", () => {
  lang = lang === "zh" ? "en" : "zh";
  localStorage.setItem("gp-lang", lang);
  translate();
  load();
});
$("measure").addEventListener("change", () => { measure = $("measure").value; legend(); paint(); });

// ?unit=CODE or ?city=…: that unit's grids (the leaders' map sends a unit of many grids here)
const asked = new URLSearchParams();
for (const key of ["unit", "city"]) {
  const value = new URLSearchParams(location.search).get(key);
  if (value) asked.set(key, value);
}

let extent = null;
async function load() {
  if (!extent) {
    const query = asked.toString();
    const answer = await fetch(`/leaders/grids/extent${query ? `?${query}` : ""}`, { credentials: "same-origin" });
    if (answer.status === 401) {
      location.replace(`/login?next=${encodeURIComponent(location.pathname + location.search)}`);
      return;
    }
    if (!answer.ok) {  // an unknown unit, one outside the jurisdiction: say so
      const body = await answer.json().catch(() => ({}));
      $("summary").textContent = body.detail || answer.statusText;
      return;
    }
    extent = await answer.json();
    if (extent.bbox) {
      const [w, s, e, n] = extent.bbox;
      map.fitBounds([[s, w], [n, e]], { padding: [10, 10] });
    } else {
      map.setView([35, 105], 4);
    }
    window.gridpatrolBasemap.gl(map).then(drawGrids);
  }
  $("summary").textContent = extent.unit ? t("unit")(extent.unit, extent.grids)
    : extent.grids ? t("summary")(extent.grids) : t("none");
}
translate();
legend();
load().catch((err) => { $("summary").textContent = String(err.message || err); });
