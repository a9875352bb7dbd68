// The grid member's phone page. Everything it sends goes through one outbox (IndexedDB, on the phone): a report,
// a visit, a walked track, a photo, a step on an event. Each item carries its idempotency key and is sent in
// order when there is a signal; an answer that never arrived is sent again with the same key, so the service
// stores it once. Items leave the outbox only when the service has answered them; a refusal (4xx) stays listed
// with the reason until the member removes it. The service worker (sw.js) keeps the page and its data readable
// offline.
"use strict";

const T = {
  zh: {
    loading: "加载中…", online: "在线", offline: "离线", tab_map: "我的网格", tab_report: "上报", tab_route: "今日路线",
    tab_events: "我的事件", tab_tasks: "志愿任务", end_patrol: "结束巡查并上传轨迹", nearby: "附近楼栋（点击记录走访）",
    report_title: "一键上报", note: "说明（可选）", photo: "照片（可选）", send: "上报", route_title: "基础巡查路线",
    gpx: "下载 GPX", my_events: "分派给我的事件（由近到远）", to_verify: "待核查", tasks_title: "社区发布的任务",
    queue_title: "待发送", visit: "记录走访", done: "处理完成", handle: "处理完成", receive: "签收", verify: "核查通过", take: "接单", close: "完成",
    pick: "请先选择类别", sent: "已送达", queued: "无信号：已保存，恢复后自动发送", grid: "网格", person: "负责人",
    rule: "规则", no_position: "无法获取位置：请允许定位，或在地图上点选位置", outside: "您当前不在您的网格内",
    position: "位置", tapped: "地图选点", gps: "当前位置", too_big: "照片太大（最多 5 MB）", not_image: "不是图片文件",
    signin: "登录已过期：请联网后重新登录，未发送的内容会保留", remove: "删除", refused: "被拒绝", walked: "已记录轨迹点",
    stops: "站", minutes: "分钟", no_events: "暂无", visited: "已记录走访", no_track: "轨迹太短，继续走一走",
    feedback: "处理说明", m: "米", signout: "退出",
    part: "本周第 {n}/{k} 段", credited: "本次巡查认定走过 {n}/{m} 段街巷（{p}）", by_hmm: "按道路匹配轨迹", by_buffer: "按轨迹缓冲区",
    signout_unsent: "还有 {n} 项未发送，退出后将从本机删除。仍要退出吗？",
  },
  en: {
    loading: "Loading…", online: "online", offline: "offline", tab_map: "My grid", tab_report: "Report",
    tab_route: "Route", tab_events: "My events", tab_tasks: "Tasks", end_patrol: "End patrol and upload the track",
    nearby: "Buildings nearby (tap to log a visit)", report_title: "Report in one step", note: "Note (optional)",
    photo: "Photo (optional)", send: "Send report", route_title: "Basic patrol route", gpx: "Download GPX",
    my_events: "Events assigned to me (nearest first)", to_verify: "Waiting for verification",
    tasks_title: "Tasks posted by the community", queue_title: "Waiting to be sent", visit: "Log visit",
    done: "Done", handle: "Done", receive: "Got it", verify: "Verified", take: "Take", close: "Close", pick: "Pick a category first", sent: "Delivered",
    queued: "No signal: saved on the phone, sent when the signal returns", grid: "grid", person: "person",
    rule: "rule", no_position: "No position: allow location, or tap the map", outside: "You are outside your grid",
    position: "Position", tapped: "tapped on the map", gps: "your position", too_big: "The photo is too large (5 MB at most)",
    not_image: "That is not a picture", signin: "Signed out: sign in again when online; nothing queued is lost",
    remove: "Remove", refused: "refused", walked: "track points recorded", stops: "stops", minutes: "min",
    no_events: "none", visited: "visit logged", no_track: "The track is too short: walk a little more",
    feedback: "What was done", m: "m", signout: "Sign out",
    part: "this week: part {n} of {k}", credited: "This patrol walked {n} of {m} street segments ({p})", by_hmm: "track matched to the streets",
    by_buffer: "buffer around the track",
    signout_unsent: "{n} item(s) not sent yet will be deleted from this phone. Sign out anyway?",
  },
};
let lang = localStorage.getItem("gp-lang") || "zh";
const t = (key) => T[lang][key] || key;
const $ = (id) => document.getElementById(id);
const escape = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
const uuid = () => (crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(16).slice(2)}`);

const state = {
  me: null, grid: null, outline: null, categories: [], chosen: null, position: null, tapped: null,
  track: [], times: [], accuracy: [], trackStart: null, buildings: [], route: null, passed: new Set(), flushing: false,
};

// -- the outbox ---------------------------------------------------------------------------------------------
const DB = new Promise((resolve, reject) => {
  const open = indexedDB.open("gridpatrol-member", 1);
  open.onupgradeneeded = () => open.result.createObjectStore("outbox", { keyPath: "key" });
  open.onsuccess = () => resolve(open.result);
  open.onerror = () => reject(open.error);
});
async function store(mode, work) {
  const db = await DB;
  return new Promise((resolve, reject) => {
    const tx = db.transaction("outbox", mode);
    const result = work(tx.objectStore("outbox"));
    tx.oncomplete = () => resolve(result && "result" in result ? result.result : undefined);
    tx.onerror = () => reject(tx.error);
  });
}
const outbox = {
  all: () => store("readonly", (s) => s.getAll()).then((items) => items.sort((a, b) => a.at - b.at)),
  put: (item) => store("readwrite", (s) => s.put(item)),
  remove: (key) => store("readwrite", (s) => s.delete(key)),
};

async function enqueue(item) {
  await outbox.put({ at: Date.now(), status: "waiting", ...item });
  await showQueue();
  return flush();
}

// One item: upload its photo (if any) first, then the request with its idempotency key.
async function send(item) {
  if (item.photo && !item.photoKey) {
    const answer = await fetch("/photos", { method: "POST", body: item.photo, headers: { "content-type": item.photo.type || "application/octet-stream" } });
    if (!answer.ok) return answer;
    item.photoKey = (await answer.json()).key;
    await outbox.put(item);  // sent again later, the picture is not uploaded twice (and would get the same key)
  }
  const body = { ...item.body };
  if (item.photoKey) body.photos = [...(body.photos || []), item.photoKey];
  return fetch(item.url, { method: "POST", body: JSON.stringify(body),
    headers: { "content-type": "application/json", "Idempotency-Key": item.key } });
}

async function flush() {
  if (state.flushing) { state.again = true; return; }  // what was queued meanwhile goes right after
  state.flushing = true;
  state.again = false;
  try {
    for (const item of await outbox.all()) {
      if (item.status === "failed") continue;
      let answer;
      try {
        answer = await send(item);
      } catch (error) {  // no signal: try again later, in the same order
        break;
      }
      if (answer.status === 401) { banner(t("signin"), true); break; }
      if (answer.status === 429 || answer.status >= 500) break;
      const body = await answer.json().catch(() => ({}));
      if (answer.ok) {
        await outbox.remove(item.key);
        delivered(item, body);
      } else {
        item.status = "failed";
        item.reason = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail || body);
        await outbox.put(item);
      }
    }
  } finally {
    state.flushing = false;
    await showQueue();
  }
  if (state.again) return flush();
}

function delivered(item, body) {
  document.body.dataset.delivered = String(Number(document.body.dataset.delivered || 0) + 1);
  if (item.kind === "event") {
    const who = body.assignee ? body.assignee.name : (body.department || body.queue);
    const line = `${t("sent")} #${body.id}: ${t("grid")} ${escape(body.grid || "—")} · ${t("person")} ${escape(who)}`;
    result("report-result", `${line}<br><small>${t("rule")}: ${escape(body.assignment_rule)}</small>`, "ok");
    loadEvents();
  } else if (item.kind === "visit") {
    const share = body.walked_share != null ? ` · ${Math.round(body.walked_share * 100)} %` : "";
    banner(`${t("sent")}: ${t("visited")} #${body.id}${share}`);
    if (body.track) showCredited(body);
  } else {
    loadEvents();
    loadTasks();
  }
}

async function showQueue() {
  const items = await outbox.all();
  $("queue").innerHTML = items.map((item) => `<li class="${item.status === "failed" ? "failed" : ""}" data-key="${item.key}">
      ${escape(item.label)} <small>${new Date(item.at).toLocaleTimeString()}</small>
      ${item.status === "failed" ? `<br>${t("refused")}: ${escape(item.reason)}<div class="actions"><button class="small remove">${t("remove")}</button></div>` : ""}
    </li>`).join("");
  $("queue-box").hidden = items.length === 0;
  $("queue").querySelectorAll(".remove").forEach((b) => b.addEventListener("click", async () => {
    await outbox.remove(b.closest("li").dataset.key);
    showQueue();
  }));
  document.body.dataset.queued = String(items.filter((i) => i.status !== "failed").length);
}

// -- the page -----------------------------------------------------------------------------------------------
function banner(html, error) {
  const b = $("banner");
  b.innerHTML = html;
  b.className = error ? "error" : "";
  b.hidden = !html;
}
function result(id, html, kind) { const r = $(id); r.innerHTML = html; r.className = `result ${kind || ""}`; }

function translate() {
  document.documentElement.lang = lang;
  document.querySelectorAll("[data-t]").forEach((el) => { el.textContent = t(el.dataset.t); });
  $("lang").textContent = lang === "zh" ? "EN" : "中文";
  showNet();
  drawCategories();
}
function showNet() {
  const net = $("net");
  net.textContent = navigator.onLine ? t("online") : t("offline");
  net.className = `net ${navigator.onLine ? "" : "offline"}`;
}

async function api(url) {
  const answer = await fetch(url, { headers: { accept: "application/json" } });
  if (answer.status === 401) { banner(t("signin"), true); throw new Error("401"); }
  if (!answer.ok) throw new Error(`${answer.status} ${url}`);
  return answer.json();
}

const map = L.map("map", { zoomControl: true, preferCanvas: true });
const layers = { grid: L.layerGroup().addTo(map), buildings: L.layerGroup().addTo(map), places: L.layerGroup().addTo(map),
  route: L.layerGroup().addTo(map), credited: L.layerGroup().addTo(map), events: L.layerGroup().addTo(map),
  me: L.layerGroup().addTo(map) };
map.on("click", (e) => {
  state.tapped = [e.latlng.lng, e.latlng.lat];
  showWhere();
});

function metres(a, b) {
  const rad = Math.PI / 180, lat = (a[1] + b[1]) / 2 * rad;
  return 6371000 * Math.hypot((b[0] - a[0]) * rad * Math.cos(lat), (b[1] - a[1]) * rad);
}
function inside(point, geometry) {  // ray casting over every ring of a (Multi)Polygon
  const polygons = geometry.type === "Polygon" ? [geometry.coordinates] : geometry.coordinates;
  let hit = false;
  for (const rings of polygons) for (const ring of rings) {
    for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
      const [xi, yi] = ring[i], [xj, yj] = ring[j];
      if ((yi > point[1]) !== (yj > point[1]) && point[0] < (xj - xi) * (point[1] - yi) / (yj - yi) + xi) hit = !hit;
    }
  }
  return hit;
}
function centre(geometry) {
  const b = L.geoJSON(geometry).getBounds().getCenter();
  return [b.lng, b.lat];
}

function showWhere() {
  const where = state.tapped || state.position;
  $("where").textContent = where ? `${t("position")}: ${where[1].toFixed(6)}, ${where[0].toFixed(6)} (${state.tapped ? t("tapped") : t("gps")})`
    : t("no_position");
}

function watchPosition() {
  if (!navigator.geolocation) { banner(t("no_position"), true); return; }
  navigator.geolocation.watchPosition((p) => {
    state.position = [p.coords.longitude, p.coords.latitude];
    const last = state.track[state.track.length - 1];
    const then = state.times[state.times.length - 1];
    // a new point when the member moved, and never one older than the last (a cached fix): the service refuses a
    // track whose times go backwards
    if ((!last || metres(last, state.position) >= 3) && !(then >= p.timestamp / 1000)) {
      state.track.push(state.position);
      state.times.push(p.timestamp / 1000);  // the matcher drops GPS jumps and smooths by time
      state.accuracy.push(p.coords.accuracy);
      if (!state.trackStart) state.trackStart = new Date();
    }
    layers.me.clearLayers();
    L.marker([state.position[1], state.position[0]], { icon: L.divIcon({ className: "me", iconSize: [16, 16] }) }).addTo(layers.me);
    if (state.outline && !inside(state.position, state.outline)) banner(t("outside"), true);
    else if ($("banner").textContent === t("outside") || $("banner").textContent === t("no_position")) banner("");
    $("track-info").textContent = `${state.track.length} ${t("walked")}`;
    markPassed();
    showWhere();
    nearestBuildings();
    sortEvents();
  }, () => { banner(t("no_position"), true); showWhere(); }, { enableHighAccuracy: true, maximumAge: 5000 });
}

function drawCategories() {
  $("categories").innerHTML = state.categories.slice(0, 10).map((c) =>
    `<button data-code="${c.code}" class="${state.chosen === c.code ? "on" : ""}">${escape(lang === "zh" ? c.name : c.name_en)}</button>`).join("");
  $("categories").querySelectorAll("button").forEach((b) => b.addEventListener("click", () => {
    state.chosen = b.dataset.code;
    drawCategories();
  }));
}

async function loadGrid() {
  const code = state.grid;
  const grids = await api(`/grids?limit=10000`);
  const feature = grids.features.find((f) => f.properties.code === code);
  if (!feature) throw new Error(`grid ${code}`);
  state.outline = feature.geometry;
  layers.grid.clearLayers();
  const outline = L.geoJSON(feature, { style: { color: "#0b4f9c", weight: 4, fill: false } }).addTo(layers.grid);
  map.fitBounds(outline.getBounds(), { padding: [10, 10] });
  // the basemap of the grid and its surroundings, fetched now so that the service worker has it with no signal
  if (window.gridpatrolBasemap) window.gridpatrolBasemap.prefetch(outline.getBounds().pad(0.5)).catch(() => {});
  const buildings = await api(`/buildings?grid_id=${feature.properties.id}&limit=10000`);
  state.buildings = buildings.features;
  layers.buildings.clearLayers();
  L.geoJSON(buildings, { style: { color: "#555", weight: 1, fillColor: "#9ecae1", fillOpacity: 0.6 },
    onEachFeature: (f, layer) => layer.on("click", () => logVisit(f)) }).addTo(layers.buildings);
  const places = await api(`/key-places?limit=10000`);
  layers.places.clearLayers();
  L.geoJSON(places, { pointToLayer: (f, ll) => L.circleMarker(ll, { radius: 7, color: "#000", fillColor: "#ffd400", fillOpacity: 1 })
    .bindTooltip(escape(f.properties.name || f.properties.kind)) }).addTo(layers.places);
  nearestBuildings();
}

function nearestBuildings() {
  const from = state.position || (state.outline && centre(state.outline));
  if (!from) return;
  const near = state.buildings.map((f) => ({ f, d: metres(from, centre(f.geometry)) })).sort((a, b) => a.d - b.d).slice(0, 8);
  $("buildings").innerHTML = near.map(({ f, d }) => `<li>${escape(f.properties.name || `#${f.id}`)} · ${f.properties.households} 户 · ${Math.round(d)} ${t("m")}
      <div class="actions"><button class="visit" data-id="${f.id}">${t("visit")}</button></div></li>`).join("");
  $("buildings").querySelectorAll(".visit").forEach((b) => b.addEventListener("click", () =>
    logVisit(state.buildings.find((f) => String(f.id) === b.dataset.id))));
}

function trackSoFar() {
  return state.track.length >= 2 ? { type: "LineString", coordinates: state.track } : null;
}

async function logVisit(building) {
  const now = new Date();
  const body = { kind: "inspection", started_at: (state.trackStart || now).toISOString(), ended_at: now.toISOString(),
    buildings: [building.id], note: building.properties.name || "" };
  if (state.position) body.position = { type: "Point", coordinates: state.position };
  const key = uuid();
  body.idempotency_key = key;
  await enqueue({ key, kind: "visit", url: `/grids/${state.grid}/visits`, body,
    label: `${t("visit")}: ${building.properties.name || `#${building.id}`}` });
  if (!navigator.onLine) banner(t("queued"));
}

// The phone's accuracy is a radius (most report the 68 % one): σ, the error the matcher assumes, is taken as the
// median radius ÷ 1.5 (for a round Gaussian error the 68 % radius is 1.5σ); none when the phone gave none.
function gpsError(radii) {
  const known = radii.filter((r) => Number.isFinite(r) && r > 0).sort((a, b) => a - b);
  if (!known.length) return null;
  return Math.min(100, Math.max(1, known[Math.floor(known.length / 2)] / 1.5));
}

// What the service credited a patrol with: the street segments walked (green), the matched path (dashed).
async function showCredited(visit) {
  let drawn;
  try { drawn = await api(`/visits/${visit.id}/streets`); } catch (error) { return; }
  layers.credited.clearLayers();
  L.geoJSON(drawn, {
    filter: (f) => f.properties.kind !== "track",
    style: (f) => f.properties.kind === "walked" ? { color: "#1a9641", weight: 6, opacity: 0.85 }
      : { color: "#14532d", weight: 2, opacity: 0.9, dashArray: "4 4" },
  }).addTo(layers.credited);
  const p = drawn.properties;
  const share = p.walked_share != null ? `${Math.round(p.walked_share * 100)} %` : "—";
  $("track-info").textContent = t("credited").replace("{n}", p.segments_walked).replace("{m}", p.segments_required)
    .replace("{p}", share) + ` · ${t(p.matched_by === "hmm" ? "by_hmm" : "by_buffer")}`;
  document.body.dataset.credited = String(p.segments_walked);
}

$("end-patrol").addEventListener("click", async () => {
  const track = trackSoFar();
  if (!track) { banner(t("no_track"), true); return; }
  const key = uuid();
  const body = { kind: "basic", started_at: state.trackStart.toISOString(), ended_at: new Date().toISOString(),
    track, times: state.times.slice(0, track.coordinates.length), idempotency_key: key };
  const error = gpsError(state.accuracy);
  if (error) body.gps_error_m = error;
  await enqueue({ key, kind: "visit", url: `/grids/${state.grid}/visits`, body, label: `${t("end_patrol")} (${track.coordinates.length})` });
  state.track = state.position ? [state.position] : [];
  state.times = state.position ? [Date.now() / 1000] : [];
  state.accuracy = state.accuracy.length ? [state.accuracy[state.accuracy.length - 1]] : [];
  state.trackStart = null;
});

$("photo").addEventListener("change", () => {
  const problem = photoProblem($("photo").files[0]);
  if (problem) { result("report-result", problem, "error"); $("photo").value = ""; } else result("report-result", "");
});

$("send").addEventListener("click", async () => {
  if (!state.chosen) { result("report-result", t("pick"), "error"); return; }
  const where = state.tapped || state.position;
  if (!where) { result("report-result", t("no_position"), "error"); return; }
  const key = uuid();
  const body = { location: { type: "Point", coordinates: where }, crs: "wgs84", category: state.chosen,
    source: "grid_member", description: $("note").value.trim(), idempotency_key: key };
  const photo = $("photo").files[0] || null;
  const name = (state.categories.find((c) => c.code === state.chosen) || {}).name || state.chosen;
  $("note").value = "";
  $("photo").value = "";
  state.tapped = null;
  showWhere();
  await enqueue({ key, kind: "event", url: "/events", body, photo, label: `${t("tab_report")}: ${name}` });
  const left = (await outbox.all()).some((i) => i.key === key && i.status !== "failed");
  if (left) result("report-result", t("queued"), "");
});

async function loadRoute() {
  // today's route: where the grid's patrol is shared, this member's part of it this week
  const route = await api(`/grids/${state.grid}/patrols/today`);
  state.route = route;
  layers.route.clearLayers();
  L.geoJSON(route, { filter: (f) => f.geometry.type !== "Point", style: { color: "#d95f02", weight: 4, opacity: 0.8 } }).addTo(layers.route);
  const stops = route.features.filter((f) => f.properties.kind === "stop");
  stops.forEach((f, i) => L.marker([f.geometry.coordinates[1], f.geometry.coordinates[0]],
    { icon: L.divIcon({ className: "stop", html: String(i + 1), iconSize: [26, 26] }) }).addTo(layers.route));
  const p = route.properties;
  const part = p.part ? `${t("part").replace("{n}", p.part).replace("{k}", p.parts)} · ` : "";
  $("route-summary").textContent = `${part}${(p.length_m / 1000).toFixed(2)} km · ${Math.round(p.minutes)} ${t("minutes")} · ${stops.length} ${t("stops")}`;
  $("gpx").href = `/grids/${state.grid}/patrols/today?format=gpx`;
  drawStops();
}
function drawStops() {
  const stops = state.route ? state.route.features.filter((f) => f.properties.kind === "stop") : [];
  $("stops").innerHTML = stops.map((f, i) => `<li class="${state.passed.has(i) ? "passed done" : ""}"><span class="stop-number">${i + 1}</span>${escape(f.properties.name || f.properties.place_kind || f.properties.why || "")}</li>`).join("");
}
function markPassed() {
  if (!state.route || !state.position) return;
  state.route.features.filter((f) => f.properties.kind === "stop").forEach((f, i) => {
    if (metres(state.position, f.geometry.coordinates) <= 30) state.passed.add(i);
  });
  drawStops();
}

let myEvents = [];
async function loadEvents() {
  if (!state.me || !state.me.staff_id) return;
  myEvents = await api(`/staff/${state.me.staff_id}/events`);
  sortEvents();
  const toVerify = await api(`/events?grid=${state.grid}&state=handled&limit=100`);
  $("verify").innerHTML = toVerify.map((e) => `<li>#${e.id} ${escape(e.category_name)} · ${escape(e.description)}
      <div class="actions"><button class="step" data-id="${e.id}" data-action="verify">${t("verify")}</button></div></li>`).join("")
    || `<li>${t("no_events")}</li>`;
  bindSteps($("verify"));
  document.body.dataset.eventsLoaded = String(Number(document.body.dataset.eventsLoaded || 0) + 1);
}
function sortEvents() {
  const from = state.position;
  const rows = myEvents.map((e) => ({ e, d: from ? metres(from, e.location.coordinates) : null }))
    .sort((a, b) => (a.d ?? 0) - (b.d ?? 0));
  layers.events.clearLayers();
  rows.forEach(({ e }) => L.circleMarker([e.location.coordinates[1], e.location.coordinates[0]], { radius: 9, color: "#b00020", weight: 3 })
    .bindTooltip(`#${e.id} ${escape(e.category_name)}`).addTo(layers.events));
  $("events").innerHTML = rows.map(({ e, d }) => `<li>#${e.id} <b>${escape(lang === "zh" ? e.category_name : e.category_name_en)}</b>
      ${d != null ? `· ${Math.round(d)} ${t("m")}` : ""}<br><small>${escape(e.description)} · ${escape(e.state)} · ${e.due_at ? new Date(e.due_at).toLocaleString() : ""}</small>
      ${e.reporter_contact ? `<br><small>☎ ${escape(e.reporter_contact)}</small>` : ""}
      ${e.state === "dispatched" ? `<div class="actions"><button class="step" data-id="${e.id}" data-action="receive">${t("receive")}</button></div>
      <div class="actions"><input class="feedback" placeholder="${t("feedback")}" aria-label="${t("feedback")}">
      <input class="feedback-photo" type="file" accept="image/*" capture="environment" aria-label="${t("photo")}">
      <button class="step" data-id="${e.id}" data-action="handle">${t("done")}</button></div>` : ""}</li>`).join("")
    || `<li>${t("no_events")}</li>`;
  bindSteps($("events"));
}
function photoProblem(file) {
  if (!file) return null;
  if (!file.type.startsWith("image/")) return t("not_image");
  return file.size > 5 * 1024 * 1024 ? t("too_big") : null;
}

function bindSteps(list) {
  list.querySelectorAll(".step").forEach((b) => b.addEventListener("click", async () => {
    const row = b.closest("li");
    const note = (row.querySelector(".feedback") || {}).value || "";
    const input = b.dataset.action === "handle" ? row.querySelector(".feedback-photo") : null;
    const photo = input && input.files[0] ? input.files[0] : null;
    const problem = photoProblem(photo);
    if (problem) { banner(problem, true); input.value = ""; return; }
    const key = uuid();
    await enqueue({ key, kind: "step", url: `/events/${b.dataset.id}/${b.dataset.action}`, body: { note }, photo,
      label: `#${b.dataset.id} ${t(b.dataset.action)}` });
    b.disabled = true;
  }));
}

async function loadTasks() {
  if (!state.grid) return;
  const tasks = await api(`/grids/${state.grid}/tasks`);
  $("tasks").innerHTML = tasks.map((task) => `<li class="${task.state === "taken" ? "done" : ""}"><b>${escape(task.title)}</b><br>
      <small>${escape(task.description)} · ${escape(task.state)}${task.taken_by ? ` · ${escape(task.taken_by)}` : ""}</small>
      <div class="actions">${task.state === "open" ? `<button class="task" data-id="${task.id}" data-action="take">${t("take")}</button>` : ""}
      ${task.state === "taken" && task.taken_by === state.me.username ? `<button class="task" data-id="${task.id}" data-action="close">${t("close")}</button>` : ""}</div></li>`).join("")
    || `<li>${t("no_events")}</li>`;
  $("tasks").querySelectorAll(".task").forEach((b) => b.addEventListener("click", async () => {
    const key = uuid();
    await enqueue({ key, kind: "task", url: `/tasks/${b.dataset.id}/${b.dataset.action}`, body: {}, label: `${t(b.dataset.action)}: #${b.dataset.id}` });
  }));
}

document.querySelectorAll("#tabs button").forEach((b) => b.addEventListener("click", () => {
  document.querySelectorAll("#tabs button").forEach((x) => x.classList.toggle("on", x === b));
  document.querySelectorAll(".tab").forEach((s) => s.classList.toggle("on", s.id === `${b.dataset.tab}-tab`));
  if (b.dataset.tab === "map") map.invalidateSize();
}));
// Sign out: nothing of this member stays on the phone (a shared phone's next user sees none of it): the cached
// answers (events with reporters' contacts, the grid, the route), the outbox, and the sign-in cookie. The
// service's answer also says Clear-Site-Data; this does it even where a browser ignores that.
$("signout").addEventListener("click", async () => {
  const waiting = (await outbox.all()).length;
  if (waiting && !confirm(t("signout_unsent").replace("{n}", waiting))) return;
  if (window.caches) await Promise.all((await caches.keys()).map((name) => caches.delete(name)));
  await store("readwrite", (s) => s.clear());
  await fetch("/logout", { method: "POST", credentials: "same-origin" }).catch(() => {});
  location.replace("/login?next=%2Fm%2F");
});

$("lang").addEventListener("click", () => {
  lang = lang === "zh" ? "en" : "zh";
  localStorage.setItem("gp-lang", lang);
  if (window.gridpatrolBasemap) window.gridpatrolBasemap.setLanguage(lang);
  translate();
  sortEvents();
  nearestBuildings();
});
window.addEventListener("online", () => {
  showNet();
  if (!state.me) loadAll().catch(() => {});  // opened with no signal and nothing cached: read it now
  flush();
});
window.addEventListener("offline", showNet);
setInterval(flush, 15000);

// Everything the page reads, through the service worker once it controls the page (so it is there offline).
async function loadAll() {
  state.me = await api("/me");
  state.grid = (state.me.grids[0] || {}).code;
  $("who").textContent = `${state.me.display_name || state.me.username} · ${t("grid")} ${state.grid || "—"}`;
  state.categories = await api("/categories");
  drawCategories();
  if (!state.grid) throw new Error("no grid");
  await loadGrid();
  await Promise.all([loadRoute().catch(() => {}), loadEvents(), loadTasks()]);
  if (navigator.serviceWorker && navigator.serviceWorker.controller) document.body.dataset.cached = "1";
}

async function start() {
  translate();
  if ("serviceWorker" in navigator) {
    // the first visit is not yet controlled by the worker: read everything again once it is, to keep it offline
    navigator.serviceWorker.addEventListener("controllerchange", () => loadAll().catch(() => {}));
    navigator.serviceWorker.register("/m/sw.js", { scope: "/m/" }).catch(() => {});
  }
  await showQueue();
  try {
    await loadAll();
  } catch (error) {
    if (String(error.message) !== "401") banner(escape(error.message), true);
  }
  watchPosition();
  showWhere();
  document.body.dataset.ready = "1";
  flush();
}
start();
