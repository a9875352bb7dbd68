// The planner's page: pick a community, then change its grids — drag a grid's boundary, split it by a drawn line,
// merge it with a neighbour, delete it, or draw a new grid (Leaflet-Geoman). Every change is checked first (a dry
// run that returns the impact) and then saved. Everything goes through gridpatrol's own API.
"use strict";

const map = L.map("map", { zoomSnap: 0.25 });
map.attributionControl.addAttribution("Map data © OpenStreetMap contributors (ODbL)");
const $ = (id) => document.getElementById(id);
const state = { communities: {}, gridLayer: null, buildingLayer: null, gapLayer: null, drawn: null,
  selected: null, action: null, proposal: null, chosen: new Set() };
const HINTS = {
  reshape: "拖动顶点修改边界 · Drag the corners to move the boundary; the neighbours follow.",
  split: "在网格上画一条线（双击结束） · Draw a line across the grid, edge to edge (double-click to finish).",
  merge: "点击要合并的相邻网格 · Click the neighbouring grid to merge with.",
  delete: "删除此网格，面积并入相邻网格 · Delete this grid; its area goes to its neighbours.",
  create: "画出新网格（点击第一个点结束） · Draw the new grid (click the first corner to finish).",
};

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

function clearDrawing() {
  map.pm.disableDraw();
  for (const key of ["gapLayer", "drawn"]) if (state[key]) { map.removeLayer(state[key]); state[key] = null; }
  if (state.gridLayer) state.gridLayer.eachLayer((layer) => { layer.pm.disable(); state.gridLayer.resetStyle(layer); });
}

async function loadCommunity(code, keepGrid) {
  const community = state.communities[code];
  clearDrawing();
  for (const layer of [state.gridLayer, state.buildingLayer]) if (layer) map.removeLayer(layer);
  const keep = keepGrid || new URLSearchParams(location.search).get("grid");
  state.selected = null;
  $("grid-info").textContent = "点击网格以编辑 · Click a grid to change it.";
  setAction(null);
  const bounds = L.geoJSON(community).getBounds();
  const [grids, buildings] = await Promise.all([
    api(`/grids?community_id=${community.id}&limit=10000`),
    api(`/buildings?bbox=${bounds.getWest()},${bounds.getSouth()},${bounds.getEast()},${bounds.getNorth()}&limit=10000`),
  ]);
  state.buildingLayer = L.geoJSON(buildings, { interactive: false, pmIgnore: true,
    style: { color: "#777", weight: 0.5, fillColor: "#ccc", fillOpacity: 0.8 } }).addTo(map);
  state.gridLayer = L.geoJSON(grids, {
    style: (f) => ({ color: "#222", weight: 2, fillColor: fill(f.properties.households), fillOpacity: 0.35 }),
    onEachFeature: (f, layer) => {
      layer.bindTooltip(`${f.properties.code}<br>${f.properties.households} 户 households`);
      layer.on("click", () => clicked(layer));
    },
  }).addTo(map);
  if (!keepGrid) map.fitBounds(state.gridLayer.getBounds());
  $("create").disabled = false;
  $("propose").disabled = false;
  dismissProposal();
  if (keep) state.gridLayer.eachLayer((layer) => { if (layer.feature.properties.code === keep) select(layer); });
}

function setAction(action) {
  state.action = action;
  for (const id of ["preview", "save", "cancel"]) $(id).disabled = !action;
  for (const id of ["reshape", "split", "merge", "delete"]) {
    $(id).disabled = !state.selected;
    $(id).classList.toggle("active", Boolean(action && action.kind === id));
  }
  $("create").classList.toggle("active", Boolean(action && action.kind === "create"));
  $("hint").textContent = action ? HINTS[action.kind] : "点击网格 · Click a grid, or draw a new one.";
}

function gridInfo(p) {
  return `<b>网格 Grid ${escape(p.code)}</b> · version ${p.version}<br>${p.households} 户 households,
    ${p.buildings} buildings${p.note ? `<br><i>${escape(p.note)}</i>` : ""}`;
}

function clicked(layer) {
  if (state.action && state.action.kind === "merge" && state.selected && layer !== state.selected) {
    state.action.other = layer;
    layer.setStyle({ color: "#1f5fbf", weight: 4 });
    say(`合并 · Merge ${escape(state.selected.feature.properties.code)} + ${escape(layer.feature.properties.code)}: check the impact.`);
    return;
  }
  if (state.action && ["create", "split"].includes(state.action.kind)) return;  // a click while drawing
  select(layer);
}

function select(layer) {
  clearDrawing();
  state.selected = layer;
  $("grid-info").innerHTML = gridInfo(layer.feature.properties);
  layer.setStyle({ color: "#1f5fbf", weight: 4 });
  startReshape();
  say("");
}

function startReshape() {
  const layer = state.selected;
  layer.pm.enable({ allowSelfIntersection: false, snappable: true });
  layer.on("pm:edit", () => say("已修改，请预览影响 · Edited: check the impact before saving."));
  setAction({ kind: "reshape" });
}

function draw(shape, kind) {
  clearDrawing();
  if (state.selected && kind !== "create") state.selected.setStyle({ color: "#1f5fbf", weight: 4 });
  setAction({ kind });
  $("preview").disabled = $("save").disabled = true;  // until something is drawn
  map.pm.enableDraw(shape, { snappable: true, templineStyle: { color: "#1f5fbf" }, pathOptions: { color: "#1f5fbf" } });
}

map.on("pm:create", (event) => {
  state.drawn = event.layer;
  $("preview").disabled = $("save").disabled = false;
  say("已画好，请预览影响 · Drawn: check the impact before saving.");
});

function request(dryRun) {
  const who = { reason: $("reason").value.trim(), dry_run: dryRun };  // the author is the signed-in user
  const action = state.action;
  const p = state.selected && state.selected.feature.properties;
  const post = (url, body) => [url, { method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ ...body, ...who }) }];
  switch (action.kind) {
    case "reshape":
      return post(`/grids/${p.code}/reshape`, { version: p.version, geometry: state.selected.toGeoJSON().geometry });
    case "split":
      return post(`/grids/${p.code}/split`, { version: p.version, line: state.drawn.toGeoJSON().geometry });
    case "merge": {
      if (!action.other) throw new Error("先点击要合并的相邻网格 · Click the neighbouring grid first.");
      const q = action.other.feature.properties;
      return post("/grids/merge", { codes: [p.code, q.code], versions: [p.version, q.version] });
    }
    case "delete": {
      const query = new URLSearchParams({ version: p.version, ...who });
      return [`/grids/${p.code}?${query}`, { method: "DELETE" }];
    }
    case "create": {
      const outline = state.drawn.getBounds();
      const versions = {};  // the grids the outline was drawn over: a 409 if one has moved on since
      state.gridLayer.eachLayer((layer) => {
        if (layer.getBounds().intersects(outline)) versions[layer.feature.properties.code] = layer.feature.properties.version;
      });
      return post(`/communities/${$("community").value}/grids`, { geometry: state.drawn.toGeoJSON().geometry, versions });
    }
    default:
      throw new Error(`unknown change ${action.kind}`);
  }
}

async function submit(dryRun) {
  if (!state.action) return;
  if (!$("reason").value.trim()) { say("请填写修改原因 · Give a reason.", "error"); return; }
  if (state.gapLayer) { map.removeLayer(state.gapLayer); state.gapLayer = null; }
  try {
    const [url, options] = request(dryRun);
    const result = await api(url, options);
    const warnings = result.warnings.map((w) => `<li>${escape(w)}</li>`).join("");
    const head = dryRun ? "影响预览 · Impact (nothing saved yet)" : "已保存 · Saved";
    const grids = result.grids.map((g) => `${g.code} v${g.version}: ${g.households}`).join(", ");
    const codes = [result.created.length ? `new: ${result.created.join(", ")}` : "",
      result.retired.length ? `retired: ${result.retired.join(", ")}` : ""].filter(Boolean).join("; ");
    const staff = result.staff.map((s) => `<li>${escape(s.name)} (${escape(s.role)}): ${escape(s.what)}</li>`).join("");
    const message = `<b>${head}</b><br>${result.buildings_moved} buildings, ${result.households_moved} households
      change grid.${grids ? `<br>${escape(grids)}` : ""}${codes ? `<br>${escape(codes)}` : ""}
      ${warnings ? `<ul>${warnings}</ul>` : ""}${staff ? `<ul>${staff}</ul>` : ""}`;
    if (!dryRun) {
      const keep = state.action.kind === "reshape" ? state.selected.feature.properties.code : result.created[0];
      await loadCommunity($("community").value, keep || null);  // redraws, and selects the grid changed
    }
    say(message, "ok");
  } catch (error) {
    const problems = (error.body && error.body.problems) || [];
    say(`<b>未保存 · Not saved</b><br>${escape(error.message)}${problems.length ? `<ul>${problems.map((x) => `<li>${escape(x)}</li>`).join("")}</ul>` : ""}`, "error");
    const gaps = (error.body && error.body.gaps) || [];
    if (gaps.length) state.gapLayer = L.geoJSON({ type: "GeometryCollection", geometries: gaps },
      { pmIgnore: true, style: { color: "#b00020", weight: 2, fillOpacity: 0.5 } }).addTo(map);
  }
}

$("reshape").addEventListener("click", () => { clearDrawing(); select(state.selected); });
$("split").addEventListener("click", () => draw("Line", "split"));
$("create").addEventListener("click", () => draw("Polygon", "create"));
$("merge").addEventListener("click", () => {
  clearDrawing();
  state.selected.setStyle({ color: "#1f5fbf", weight: 4 });
  setAction({ kind: "merge" });
});
$("delete").addEventListener("click", () => {
  clearDrawing();
  state.selected.setStyle({ color: "#b00020", weight: 4 });
  setAction({ kind: "delete" });
});
// The automatic division inside the community: shown dashed beside the current grids; accepted whole (the grids
// are replaced, POST /divisions), or in part (each proposed grid clicked is drawn in as a new grid, whose area its
// neighbours give up, as "New grid" does).
function dismissProposal() {
  if (state.proposal) map.removeLayer(state.proposal);
  state.proposal = null;
  state.chosen.clear();
  $("proposal").hidden = true;
}

function proposalStyle(n) {
  const on = state.chosen.has(n);
  return { color: on ? "#1f5fbf" : "#5b2a86", weight: on ? 4 : 2, dashArray: "6 4", fillOpacity: on ? 0.25 : 0.05 };
}

async function propose() {
  dismissProposal();
  say("正在计算 · Dividing…");
  try {
    const answer = await api("/divisions", { method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ community: $("community").value, dry_run: true }) });
    const s = answer.summary;
    state.proposal = L.geoJSON(answer.proposal, { pmIgnore: true,
      style: (f) => proposalStyle(f.properties.n),
      onEachFeature: (f, layer) => {
        const p = f.properties;
        layer.bindTooltip(`建议 Proposed ${p.n}<br>${Math.round(p.households)} 户 households, ${p.buildings} buildings`
          + (p.in_band ? "" : `<br><i>${escape(p.note)}</i>`));
        layer.on("click", () => {
          if (state.chosen.has(p.n)) state.chosen.delete(p.n); else state.chosen.add(p.n);
          layer.setStyle(proposalStyle(p.n));
          $("accept-some").disabled = state.chosen.size === 0;
        });
      } }).addTo(map);
    $("proposal-info").innerHTML = `<b>建议 Proposal</b>: ${s.grids} grids, ${s.grids_in_band} in ${escape(s.band)}
      households (${s.households} in all); the community has ${s.current_grids} now. 点击建议网格以选择 · Click proposed
      grids to choose some, or accept all.`;
    $("proposal").hidden = false;
    say("");
  } catch (error) {
    say(`<b>未能建议 · No proposal</b><br>${escape(error.message)}`, "error");
  }
}

async function acceptAll() {
  if (!$("reason").value.trim()) { say("请填写修改原因 · Give a reason.", "error"); return; }
  try {
    const answer = await api("/divisions", { method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ community: $("community").value, dry_run: false, reason: $("reason").value.trim() }) });
    await loadCommunity($("community").value);
    say(`<b>已保存 · Saved</b>: ${answer.summary.new} grids replace ${answer.summary.retired}.`, "ok");
  } catch (error) {
    say(`<b>未保存 · Not saved</b><br>${escape(error.message)}`, "error");
  }
}

async function acceptSome() {
  if (!$("reason").value.trim()) { say("请填写修改原因 · Give a reason.", "error"); return; }
  const community = $("community").value;
  const chosen = [];
  state.proposal.eachLayer((layer) => { if (state.chosen.has(layer.feature.properties.n)) chosen.push(layer); });
  const created = [];
  try {
    for (const layer of chosen) {  // one at a time: each changes the versions of the grids the next one covers
      const grids = await api(`/grids?community_id=${state.communities[community].id}&limit=10000`);
      const outline = layer.getBounds();
      const versions = {};
      for (const f of grids.features) {
        if (L.geoJSON(f).getBounds().intersects(outline)) versions[f.properties.code] = f.properties.version;
      }
      const result = await api(`/communities/${community}/grids`, { method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ geometry: layer.feature.geometry, versions, reason: $("reason").value.trim(),
          dry_run: false }) });  // the server's own geometry, unrounded
      created.push(...result.created);
    }
    await loadCommunity(community, created[0] || null);
    say(`<b>已保存 · Saved</b>: new grids ${escape(created.join(", "))}.`, "ok");
  } catch (error) {
    await loadCommunity(community);
    say(`<b>部分未保存 · Not all saved</b> (${escape(created.join(", ") || "none")} saved)<br>${escape(error.message)}`,
      "error");
  }
}

$("propose").addEventListener("click", propose);
$("accept-all").addEventListener("click", acceptAll);
$("accept-some").addEventListener("click", acceptSome);
$("dismiss").addEventListener("click", dismissProposal);
$("preview").addEventListener("click", () => submit(true));
$("save").addEventListener("click", () => submit(false));
$("cancel").addEventListener("click", () => loadCommunity($("community").value,
  state.selected ? state.selected.feature.properties.code : null));
api("/me").then((me) => { $("author").textContent = me.display_name || me.username; })
  .catch((error) => say(escape(error.message), "error"));
loadCommunities().catch((error) => say(escape(error.message), "error"));
