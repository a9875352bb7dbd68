// The city map for a city too large to hold its layers in the page (GRIDPATROL_CITY_MAP_INLINE_MAX buildings):
// buildings coloured by households, grids outlined by their household band, communities, districts and key places,
// all drawn by MapLibre GL from the service's vector tiles (cut to the viewer's jurisdiction) on the basemap.
// The page carries only its configuration (#city-config). Click a feature for what it is.
"use strict";

const config = JSON.parse(document.getElementById("city-config").textContent);
let lang = (localStorage.getItem("gp-lang") || "zh").startsWith("en") ? "en" : "zh";
const $ = (id) => document.getElementById(id);
const escape = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const WORDS = {
  zh: { households: "户数", buildings: "建筑", grid: "网格", community: "社区", district: "区", place: "重点场所",
        below: "低于 300 户", band: "300–500 户", above: "高于 500 户", notHomes: "0（非住宅）", grids: "网格户数" },
  en: { households: "households", buildings: "buildings", grid: "grid", community: "community", district: "district",
        place: "key place", below: "below 300 households", band: "300–500 households", above: "above 500 households",
        notHomes: "0 (not homes)", grids: "grids by households" },
};
const w = (key) => WORDS[lang][key];
const LAYERS = {
  buildings: ["city-buildings"], grids: ["city-grid-lines", "city-grid-dots"], communities: ["city-communities"],
  districts: ["city-districts"], places: ["city-places"],
};

const map = L.map("map", { zoomSnap: 0.25, preferCanvas: true });
L.control.scale({ imperial: false }).addTo(map);
const [west, south, east, north] = config.bounds;
map.fitBounds([[south, west], [north, east]], { padding: [10, 10] });
let gl = null;

function householdColour() {
  const step = ["step", ["coalesce", ["get", "households"], 0], config.non_residential, 1, config.palette[0]];
  config.classes.slice(0, -1).forEach((upper, i) => step.push(upper + 0.5, config.palette[i + 1]));
  return step;
}
function bandColour() {
  return ["step", ["coalesce", ["get", "households"], 0], "#f28e2b", 300, "#252525", 501, "#d7191c"];
}
function kindColour() {
  return ["match", ["get", "kind"], ...Object.entries(config.kinds).flat(), "#333333"];
}

function draw(glMap) {
  gl = glMap;
  window.gridpatrolGl = gl;  // for tests
  const labels = window.gridpatrolBasemap.beneathLabels(gl);
  const source = (name) => ({ type: "vector", tiles: [window.gridpatrolBasemap.tiles(`/tiles/${name}/{z}/{x}/{y}.mvt`)],
                              minzoom: 5, maxzoom: 15 });
  ["buildings", "grids", "admin_units", "key_places"].forEach((name) => gl.addSource(`city-${name}`, source(name)));
  gl.addLayer({ id: "city-buildings", type: "fill", source: "city-buildings", "source-layer": "buildings",
                paint: { "fill-color": householdColour(), "fill-opacity": 0.85, "fill-outline-color": "#4d4d4d" } },
              labels);
  gl.addLayer({ id: "city-grid-lines", type: "line", source: "city-grids", "source-layer": "grids",
                filter: ["==", ["geometry-type"], "Polygon"],
                paint: { "line-color": bandColour(), "line-width": 1.5 } });
  gl.addLayer({ id: "city-grid-dots", type: "circle", source: "city-grids", "source-layer": "grids",
                filter: ["==", ["geometry-type"], "Point"],
                paint: { "circle-color": bandColour(), "circle-radius": 2 } });
  gl.addLayer({ id: "city-communities", type: "line", source: "city-admin_units", "source-layer": "admin_units",
                filter: ["==", ["get", "level"], "community"],
                paint: { "line-color": "#6a3d9a", "line-width": 1.2, "line-dasharray": [3, 2] } });
  gl.addLayer({ id: "city-districts", type: "line", source: "city-admin_units", "source-layer": "admin_units",
                filter: ["==", ["get", "level"], "district"], paint: { "line-color": "#c51b7d", "line-width": 3 } });
  gl.addLayer({ id: "city-places", type: "circle", source: "city-key_places", "source-layer": "key_places",
                paint: { "circle-color": kindColour(), "circle-radius": 5, "circle-stroke-color": "#fff",
                         "circle-stroke-width": 1 } });
  applyToggles();
  gl.once("idle", () => { document.documentElement.dataset.city = "drawn"; });
}

function applyToggles() {
  if (!gl) return;
  document.querySelectorAll("#layers input").forEach((box) => LAYERS[box.value]
    .forEach((id) => gl.setLayoutProperty(id, "visibility", box.checked ? "visible" : "none")));
}
document.querySelectorAll("#layers input").forEach((box) => box.addEventListener("change", applyToggles));

map.on("click", (e) => {
  if (!gl) return;
  const found = gl.queryRenderedFeatures(gl.project([e.latlng.lng, e.latlng.lat]),
    { layers: ["city-places", "city-buildings", "city-grid-lines"].filter((id) => gl.getLayer(id)) });
  if (!found.length) return;
  const p = found[0].properties;
  const what = { "city-places": w("place"), "city-buildings": w("buildings"), "city-grid-lines": w("grid") }[found[0].layer.id];
  const lines = [`<b>${escape(what)}</b> ${escape(p.name || p.code || p.kind || "")}`];
  if (p.kind) lines.push(escape(p.kind));
  if (p.households !== undefined) lines.push(`${escape(w("households"))} ${escape(p.households)}`);
  L.popup().setLatLng(e.latlng).setContent(`<div class="city-popup">${lines.join("<br>")}</div>`).openOn(map);
});

function legend() {
  const swatch = (c) => `<span class="swatch" style="background:${c}"></span>`;
  const rows = [`<div>${swatch(config.non_residential)}${escape(w("notHomes"))}</div>`];
  let lower = 1;
  config.classes.forEach((upper, i) => {
    rows.push(`<div>${swatch(config.palette[i])}${escape(lower === upper ? `${upper}` : `${lower}–${upper}`)}</div>`);
    lower = upper + 1;
  });
  const bands = [["#f28e2b", w("below")], ["#252525", w("band")], ["#d7191c", w("above")]]
    .map(([c, t]) => `<div>${swatch(c)}${escape(t)}</div>`).join("");
  const kinds = Object.entries(config.kinds)
    .map(([k, c]) => `<div><span class="dot" style="background:${c}"></span> ${escape(k.replace("_", " "))}</div>`).join("");
  $("legend").innerHTML = `<h2>${escape(w("households"))}</h2>${rows.join("")}<h2>${escape(w("grids"))}</h2>${bands}` +
    `<h2>${escape(w("place"))}</h2>${kinds}`;
}
function translate() {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  document.querySelectorAll("[data-zh]").forEach((el) => { el.textContent = el.dataset[lang]; });
  $("lang").textContent = lang === "zh" ? "English" : "中文";
  if (window.gridpatrolBasemap) window.gridpatrolBasemap.setLanguage(lang);
  legend();
}
$("lang").addEventListener("click", () => {
  lang = lang === "zh" ? "en" : "zh";
  localStorage.setItem("gp-lang", lang);
  translate();
});
translate();
window.gridpatrolBasemap.gl(map).then(draw);
