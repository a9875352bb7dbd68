// The planner's page: pick a community, click a grid, drag its boundary (Leaflet-Geoman), check the impact
// (a dry run of POST /grids/{code}/reshape), save. Everything goes through gridpatrol's own API.
"use strict";

const map = L.map("map", { zoomSnap: 0.25 });
map.attributionControl.addAttribution("Map data © OpenStreetMap contributors (ODbL)");
const $ = (id) => document.getElementById(id);
const state = { communities: {}, gridLayer: null, buildingLayer: null, gapLayer: null, selected: null };

function fill(h) { return h < 300 ? "#fdae61" : h > 500 ? "#d7191c" : "#a6d96a"; }

async function api(url, options) {
  const response = await fetch(url, options);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const detail = typeof body.detail === "string" ? body.detail
      : Array.isArray(body.detail) ? body.detail.map((d) => `${d.loc.join(".")}: ${d.msg}`).join("; ")
      : response.statusText;
    const error = new Error(`${response.status}: ${detail}`);
    error.body = body;
    throw error;
  }
  return body;
}

function say(html, kind) {
  const result = $("result");
  result.className = kind || "";
  result.innerHTML = html;
}

function escape(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

async function loadCommunities() {
  const units = await api("/admin-units?level=community&limit=10000");
  const select = $("community");
  const features = units.features.filter((f) => f.properties.code).sort((a, b) => a.properties.code.localeCompare(b.properties.code));
  if (!features.length) { say("还没有社区 · No communities yet: run <code>gridpatrol divide</code>.", "error"); return; }
  for (const f of features) {
    state.communities[f.properties.code] = f;
    select.add(new Option(`${f.properties.code} ${f.properties.name}`, f.properties.code));
  }
  const wanted = new URLSearchParams(location.search).get("community");
  select.value = wanted && state.communities[wanted] ? wanted : features[0].properties.code;
  select.addEventListener("change", () => loadCommunity(select.value));
  await loadCommunity(select.value);
}

async function loadCommunity(code, keepView) {
  const community = state.communities[code];
  for (const layer of [state.gridLayer, state.buildingLayer, state.gapLayer]) if (layer) map.removeLayer(layer);
  state.selected = null;
  setButtons(false);
  const outline = L.geoJSON(community);
  const [west, south, east, north] = [outline.getBounds().getWest(), outline.getBounds().getSouth(),
    outline.getBounds().getEast(), outline.getBounds().getNorth()];
  const [grids, buildings] = await Promise.all([
    api(`/grids?community_id=${community.id}&limit=10000`),
    api(`/buildings?bbox=${west},${south},${east},${north}&limit=10000`),
  ]);
  state.buildingLayer = L.geoJSON(buildings, { interactive: false, pmIgnore: true,
    style: { color: "#777", weight: 0.5, fillColor: "#ccc", fillOpacity: 0.8 } }).addTo(map);
  state.gridLayer = L.geoJSON(grids, {
    style: (f) => ({ color: "#222", weight: 2, fillColor: fill(f.properties.households), fillOpacity: 0.35 }),
    onEachFeature: (f, layer) => {
      layer.bindTooltip(`${f.properties.code}<br>${f.properties.households} 户 households`);
      layer.on("click", () => select(layer));
    },
  }).addTo(map);
  if (!keepView) map.fitBounds(state.gridLayer.getBounds());
  const wanted = new URLSearchParams(location.search).get("grid");
  if (wanted) state.gridLayer.eachLayer((layer) => { if (layer.feature.properties.code === wanted) select(layer); });
}

function setButtons(on) {
  for (const id of ["preview", "save", "cancel"]) $(id).disabled = !on;
}

function select(layer) {
  if (state.selected && state.selected !== layer) state.selected.pm.disable();
  state.selected = layer;
  const p = layer.feature.properties;
  $("grid-info").innerHTML = `<b>网格 Grid ${escape(p.code)}</b> · version ${p.version}<br>${p.households} 户 households,
    ${p.buildings} buildings${p.note ? `<br><i>${escape(p.note)}</i>` : ""}<br>拖动顶点修改边界 · drag the corners to move the boundary.`;
  layer.pm.enable({ allowSelfIntersection: false, snappable: true });
  layer.on("pm:edit", () => say("已修改，请预览影响 · Edited: check the impact before saving."));
  setButtons(true);
  say("");
}

async function submit(dryRun) {
  const layer = state.selected;
  if (!layer) return;
  const p = layer.feature.properties;
  const body = { version: p.version, geometry: layer.toGeoJSON().geometry, author: $("author").value.trim(),
    reason: $("reason").value.trim(), dry_run: dryRun };
  if (!body.author || !body.reason) { say("请填写修改人和原因 · Give an author and a reason.", "error"); return; }
  if (state.gapLayer) { map.removeLayer(state.gapLayer); state.gapLayer = null; }
  try {
    const result = await api(`/grids/${p.code}/reshape`, { method: "POST",
      headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    const warnings = result.warnings.map((w) => `<li>${escape(w)}</li>`).join("");
    const head = dryRun ? "影响预览 · Impact (nothing saved yet)" : "已保存 · Saved";
    const grids = result.grids.map((g) => `${g.code} v${g.version}: ${g.households}`).join(", ");
    const message = `<b>${head}</b><br>${result.buildings_moved} buildings, ${result.households_moved} households
      change grid.${grids ? `<br>${escape(grids)}` : ""}${warnings ? `<ul>${warnings}</ul>` : ""}`;
    if (!dryRun) await loadCommunity($("community").value, true);  // redraws, and re-selects the grid
    say(message, "ok");
  } catch (error) {
    const problems = (error.body && error.body.problems) || [];
    say(`<b>未保存 · Not saved</b><br>${escape(error.message)}${problems.length ? `<ul>${problems.map((x) => `<li>${escape(x)}</li>`).join("")}</ul>` : ""}`, "error");
    const gaps = (error.body && error.body.gaps) || [];
    if (gaps.length) state.gapLayer = L.geoJSON({ type: "GeometryCollection", geometries: gaps },
      { style: { color: "#b00020", weight: 2, fillOpacity: 0.5 } }).addTo(map);
  }
}

$("preview").addEventListener("click", () => submit(true));
$("save").addEventListener("click", () => submit(false));
$("cancel").addEventListener("click", () => loadCommunity($("community").value, true));
loadCommunities().catch((error) => say(escape(error.message), "error"));
