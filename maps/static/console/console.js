// The centre's console: the live queue of the jurisdiction's cases (new reports pushed by server-sent events), the
// counts per state, the map beside the list (the case on its grid, the open cases near it, the grid's recent
// cases), the case file with its stage clocks and history, and the loop's steps, each one click or one key; a
// selection's step previewed, then confirmed. A department at the same page sees its own queue and its own steps.
// Chinese first, English one tap away. Everything goes through gridpatrol's own API; text from the API or a user
// is escaped (or set as textContent) wherever it lands.
"use strict";

const $ = (id) => document.getElementById(id);
const STATES = { reported: ["待受理", "Reported"], accepted: ["已立案", "Accepted"], dispatched: ["已派遣", "Dispatched"],
  handled: ["已处理", "Handled"], verified: ["已核查", "Verified"], suspended: ["缓办", "Suspended"],
  closed: ["已结案", "Closed"], rejected: ["已驳回", "Rejected"], merged: ["已合并", "Merged"], hung: ["挂账", "Hung"] };
const OPEN = ["reported", "accepted", "dispatched", "handled", "verified", "suspended", "hung"];
const SOURCES = { grid_member: ["网格员巡查", "Patrol"], resident_app: ["群众APP", "Resident app"], hotline: ["12345热线", "Hotline"],
  video: ["视频", "Video"], referral: ["上级转办", "Referral"] };
const SUPERVISE = ["supervise", "督办", "Supervise", "p"];
const ACTIONS = {  // what the centre does from each state, and the key for it
  reported: [["accept", "立案", "Accept", "a"], ["reject", "驳回", "Reject", "r"], ["merge", "合并", "Merge", "m"]],
  accepted: [["dispatch", "派遣", "Dispatch", "d"], ["reject", "驳回", "Reject", "r"], ["merge", "合并", "Merge", "m"], SUPERVISE],
  dispatched: [["suspend", "缓办", "Suspend", "s"], ["extend", "延期", "Extend", "x"], ["escalate", "升级", "Escalate", "e"],
    ["whistle", "吹哨到部门", "Whistle to department", "b"], ["hang", "挂账", "Hang", "g"], SUPERVISE],
  handled: [["verify", "核查通过", "Verify", "v"], ["rework", "返工", "Rework", "w"], SUPERVISE],
  verified: [["close", "结案", "Close", "c"], SUPERVISE],
  suspended: [["resume", "恢复", "Resume", "u"], SUPERVISE],
  hung: [["unhang", "重启", "Take up again", "u"], SUPERVISE],
};
const LEAD_ACTIONS = [["receive", "签收", "Receive", "i"], ["handle", "处理完毕", "Handled", "h"], ["return", "退单", "Return", "t"]];
const ASSIST = ["assist", "协办反馈", "Report as assisting", "y"];
const AFTER_RETURN = [["overrule", "维持派遣", "Overrule", "o"], ["dispatch", "重新派遣", "Re-dispatch", "d"],
  ["reject", "驳回", "Reject", "r"]];
const REASONS = { not_our_duty: ["不属本部门职责", "Not our duty"], wrong_location: ["属地不符", "Not our area"],
  unclear_ownership: ["权属不清", "Ownership unclear"], overlapping_duties: ["职能交叉", "Duties overlap"] };
const NEEDS_NOTE = ["reject", "extend", "hang", "supervise"];
const state = { lang: "zh", rows: [], selected: null, categories: {}, last: 0, me: null, templates: [], picked: new Set(),
  departments: [], map: null, layers: null, preview: null };

function escape(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}
function word(pair) { return state.lang === "zh" ? pair[0] : pair[1]; }
function when(iso) { return iso ? new Date(iso).toLocaleString(state.lang === "zh" ? "zh-CN" : "en-GB", { hour12: false }) : "—"; }
function short(iso) {
  return iso ? new Date(iso).toLocaleString(state.lang === "zh" ? "zh-CN" : "en-GB",
    { month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hour12: false }) : "—";
}
function stateName(s) { return word(STATES[s] || [s, s]); }
function sourceName(s) { return word(SOURCES[s] || [s, s]); }
function category(code) {
  const c = state.categories[code];
  return c ? (state.lang === "zh" ? c.name : c.name_en || c.name) : code;
}
function isDepartment() { return state.me && state.me.role === "department"; }

async function api(url, options) {
  const response = await fetch(url, options);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const detail = typeof body.detail === "string" ? body.detail : Array.isArray(body.detail)
      ? body.detail.map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ") : response.statusText;
    throw new Error(`${response.status}: ${detail}`);
  }
  return body;
}
const post = (url, body) => api(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

// ---------------------------------------------------------------- counts and filters

const COUNT_KEYS = [["overdue", ["超期", "Overdue"]], ["due_soon", ["2小时内到期", "Due in 2 h"]], ["supervised", ["督办", "Supervised"]],
  ["duplicates", ["疑似重复", "Duplicates"]], ["returned", ["部门退单", "Returned"]]];

async function loadCounts() {
  const unit = $("unit").value.trim();
  const counts = await api(`/events/counts${unit ? `?unit=${encodeURIComponent(unit)}` : ""}`);
  const nav = $("counts");
  const buttons = [];
  for (const [key, pair] of [...OPEN.map((s) => [s, STATES[s]]), ...COUNT_KEYS]) {
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.key = key;
    if (["overdue", "due_soon", "returned"].includes(key) && counts[key] > 0) button.className = "alert";
    const n = document.createElement("b");
    n.textContent = String(counts[key] ?? 0);
    button.append(n, word(pair));
    button.addEventListener("click", () => {
      for (const box of ["overdue", "due_soon", "duplicates", "returned", "supervised"]) $(box).checked = box === key;
      $("state").value = OPEN.includes(key) ? key : "";
      loadQueue();
    });
    buttons.push(button);
  }
  nav.replaceChildren(...buttons);
}

function query() {
  const q = new URLSearchParams({ limit: "500" });
  const wanted = $("state").value;
  for (const s of wanted ? [wanted] : OPEN) q.append("state", s);
  for (const box of ["overdue", "due_soon", "duplicates", "returned", "supervised"]) if ($(box).checked) q.set(box, "true");
  for (const field of ["category", "source"]) if ($(field).value) q.set(field, $(field).value);
  const unit = $("unit").value.trim();
  if (/^\d{6,15}$/.test(unit)) q.set("unit", unit);
  return q;
}

function matches(event) {  // whether a new report belongs in the list as filtered
  const wanted = $("state").value;
  if (wanted ? event.state !== wanted : !OPEN.includes(event.state)) return false;
  if ($("overdue").checked || $("due_soon").checked || $("returned").checked || $("supervised").checked) return false;
  if ($("duplicates").checked && !event.duplicate_of) return false;
  if ($("category").value && event.category !== $("category").value) return false;
  if ($("source").value && event.source !== $("source").value) return false;
  const unit = $("unit").value.trim();
  return !unit || (event.grid || event.street || "").startsWith(unit);
}

// ---------------------------------------------------------------- the queue

function rowFor(event) {
  const tr = document.createElement("tr");
  tr.dataset.id = event.id;
  const late = event.due_at && new Date(event.due_at) < new Date() && ["dispatched", "handled"].includes(event.state);
  if (late) tr.classList.add("late");
  if (event.supervision) tr.classList.add("supervised");
  const box = document.createElement("input");
  box.type = "checkbox";
  box.checked = state.picked.has(event.id);
  box.setAttribute("aria-label", `select ${event.id}`);
  box.addEventListener("click", (e) => { e.stopPropagation(); pick(event.id, box.checked); });
  const first = document.createElement("td");
  first.append(box);
  tr.append(first);
  const flags = (event.supervision ? "督 " : "") + (event.duplicate_of ? "重 " : "") + (event.assisting && event.assisting.length ? "协 " : "");
  for (const text of [event.id, flags + category(event.category), event.grid || word(["街道队列", "street queue"]),
    stateName(event.state), short(event.due_at), sourceName(event.source)]) {
    const td = document.createElement("td");
    td.textContent = text;
    tr.append(td);
  }
  tr.addEventListener("click", () => select(event.id));
  if (state.selected === event.id) tr.classList.add("selected");
  return tr;
}

function byDeadline(a, b) {
  const da = a.due_at ? Date.parse(a.due_at) : Infinity;
  const db = b.due_at ? Date.parse(b.due_at) : Infinity;
  return da - db || a.id - b.id;
}

async function loadQueue() {
  state.rows = await api(`/events?${query()}`);
  state.rows.sort(byDeadline);
  $("queue").tBodies[0].replaceChildren(...state.rows.map(rowFor));
}

function insertRow(event) {
  // in deadline order, keeping what the user looks at where it is: a row inserted above the view scrolls it by
  // that row's height, so nothing on screen moves
  const box = $("queue-box");
  const body = $("queue").tBodies[0];
  const at = state.rows.findIndex((r) => byDeadline(event, r) < 0);
  const index = at < 0 ? state.rows.length : at;
  state.rows.splice(index, 0, event);
  const tr = rowFor(event);
  tr.classList.add("fresh");
  const before = body.rows[index] || null;
  const above = before !== null && before.offsetTop < box.scrollTop + $("queue").tHead.offsetHeight;
  body.insertBefore(tr, before);
  if (above) box.scrollTop += tr.offsetHeight;
}

function pick(id, on) {
  if (on) state.picked.add(id); else state.picked.delete(id);
  state.preview = null;
  showBulk();
}

// ---------------------------------------------------------------- the map beside the list

function ensureMap() {
  if (state.map) return;
  state.map = L.map("map", { attributionControl: false, zoomControl: true }).setView([0, 0], 2);
  state.layers = L.layerGroup().addTo(state.map);
}

async function showMap(event) {
  ensureMap();
  state.layers.clearLayers();
  let around = { grid: null, nearby: [], recent: [] };
  try { around = await api(`/events/${event.id}/surroundings`); } catch (error) { /* shown without them */ }
  const bounds = [];
  if (around.grid) {
    const outline = L.geoJSON(around.grid, { style: { color: "#0b4f9c", weight: 2, fillOpacity: 0.06 } }).addTo(state.layers);
    outline.bindTooltip(`${around.grid.properties.code} ${around.grid.properties.name || ""}`);
    bounds.push(outline.getBounds());
  }
  for (const e of around.recent) {
    const [lon, lat] = e.location.coordinates;
    L.circleMarker([lat, lon], { radius: 4, color: "#888", weight: 1, fillOpacity: 0.5 }).addTo(state.layers)
      .bindTooltip(`#${e.id} ${category(e.category)} · ${stateName(e.state)} · ${when(e.reported_at)}`);
  }
  for (const e of around.nearby) {
    const [lon, lat] = e.location.coordinates;
    L.circleMarker([lat, lon], { radius: 7, color: "#d97706", weight: 2, fillOpacity: 0.6 }).addTo(state.layers)
      .bindTooltip(`#${e.id} ${category(e.category)} · ${Math.round(e.distance_m)} m`).on("click", () => select(e.id));
  }
  const [lon, lat] = event.location.coordinates;
  L.circleMarker([lat, lon], { radius: 9, color: "#b00020", weight: 3, fillOpacity: 0.9 }).addTo(state.layers)
    .bindTooltip(`#${event.id}`);
  bounds.push(L.latLngBounds([[lat, lon], [lat, lon]]));
  const all = bounds.reduce((a, b) => a.extend(b), L.latLngBounds(bounds[0].getSouthWest(), bounds[0].getNorthEast()));
  state.map.invalidateSize();
  state.map.fitBounds(all.pad(0.2), { maxZoom: 17 });
  return around;
}

// ---------------------------------------------------------------- the case file

async function select(id) {
  state.selected = id;
  for (const tr of $("queue").tBodies[0].rows) tr.classList.toggle("selected", Number(tr.dataset.id) === id);
  await openCase(id);
}

async function openCase(id, message) {  // the case read afresh: on its map and in its file
  const [event, history] = await Promise.all([api(`/events/${id}`), api(`/events/${id}/history`)]);
  showCase(event, history, await showMap(event), message);
}

function actionsFor(event, history) {
  if (state.me && state.me.role === "leader") {  // a leader follows the queue and supervises (督办)
    return ["accepted", "dispatched", "handled", "verified", "suspended", "hung"].includes(event.state) ? [SUPERVISE] : [];
  }
  if (isDepartment()) {
    const mine = state.me.department;
    if (event.department === mine && event.state === "dispatched") return LEAD_ACTIONS;
    if ((event.assisting || []).includes(mine) && ["dispatched", "handled"].includes(event.state)) return [ASSIST];
    return [];
  }
  const last = history.length ? history[history.length - 1].action : null;
  if (event.state === "accepted" && last === "return") return [...AFTER_RETURN, SUPERVISE];
  return ACTIONS[event.state] || [];
}

function clocks(event) {
  const now = Date.now();
  const row = (pair, due, done, late) => {
    const overdue = late === true || (late == null && due && !done && Date.parse(due) < now);
    return `<tr${overdue ? ' class="late"' : ""}><th>${escape(word(pair))}</th><td>${escape(when(due))}</td><td>${escape(when(done))}</td>`
      + `<td>${overdue ? escape(word(["超时", "late"])) : done ? escape(word(["按时", "on time"])) : ""}</td></tr>`;
  };
  const handlingDone = event.closed_at || null;
  return `<table class="clocks"><thead><tr><th>${escape(word(["环节", "Stage"]))}</th><th>${escape(word(["时限", "Due"]))}</th>`
    + `<th>${escape(word(["完成", "Done"]))}</th><th></th></tr></thead><tbody>`
    + row(["立案", "Accept"], event.accept_due_at, event.accepted_at, event.accept_late)
    + (event.dispatch_due_at ? row(["派遣", "Dispatch"], event.dispatch_due_at, event.dispatched_at, event.dispatch_late) : "")
    + row(["处置", "Handling"], event.due_at, handlingDone, event.closed_at ? !event.closed_on_time : (event.missed_deadline || null))
    + (event.supervision ? row(["督办", "Supervision"], event.supervision.due_at, event.closed_at,
      event.closed_at ? Date.parse(event.closed_at) > Date.parse(event.supervision.due_at) : null) : "")
    + "</tbody></table>";
}

function photoLinks(keys) {
  return (keys || []).map((p) => {
    const url = /^https?:/.test(p) ? p : `/photos/${encodeURIComponent(p)}`;
    return `<a href="${escape(url)}" target="_blank" rel="noopener"><img alt="photo" loading="lazy" src="${escape(url)}"></a>`;
  }).join("");
}

function templatesFor(steps, event) {
  return state.templates.filter((t) => steps.includes(t.step) && (!t.category || t.category === event.category));
}

async function showCase(event, history, around, message) {
  const box = $("case");
  const who = event.assignee ? `${event.assignee.name} (${event.assignee.role})`
    : event.department ? `${word(["部门", "Department"])} ${event.department}` : "—";
  const rows = [
    [["类别", "Category"], category(event.category)], [["状态", "State"], stateName(event.state)],
    [["网格", "Grid"], event.grid || `${word(["街道队列", "street queue"])} ${event.street || ""}`],
    [["负责", "Has it"], who + (event.assisting && event.assisting.length ? ` · ${word(["协办", "assisting"])}: ${event.assisting.join(", ")}` : "")],
    [["分派依据", "Placed by"], event.assignment_rule || "—"], [["来源", "Source"], sourceName(event.source)],
    [["上报", "Reported"], when(event.reported_at)],
    [["位置", "Location"], `${event.location.coordinates.map((v) => v.toFixed(6)).join(", ")} (WGS-84)`],
    [["上报坐标", "As reported"], `${event.input.lon}, ${event.input.lat} (${event.input.crs.toUpperCase()})`],
    [["描述", "Description"], event.description || "—"],
  ];
  if (event.reporter_contact) rows.push([["联系方式", "Contact"], event.reporter_contact]);
  if (event.duplicate_of) rows.push([["疑似重复", "Possible duplicate of"], `#${event.duplicate_of}`]);
  const returns = history.filter((h) => h.action === "return").length;
  if (returns) rows.push([["退单次数", "Returned"], String(returns)]);
  if (event.supervision) rows.push([["督办", "Supervised"], `${when(event.supervision.due_at)} · ${event.supervision.unit} · ${event.supervision.note || ""}`]);
  const offered = actionsFor(event, history);
  const has = (a) => offered.some(([x]) => x === a);
  const extra = [];
  const notes = templatesFor(offered.map(([a]) => a === "whistle" ? "escalate" : a), event);
  if (notes.length) {
    extra.push(`<label>${escape(word(["常用语", "Template"]))}<select id="template"><option value="">—</option>${notes
      .map((t) => `<option value="${t.id}">${escape(t.body)}</option>`).join("")}</select></label>`);
  }
  if (has("return")) {
    extra.push(`<label>${escape(word(["退单原因", "Reason for the return"]))}<select id="reason">${Object.entries(REASONS)
      .map(([k, pair]) => `<option value="${k}">${escape(word(pair))}</option>`).join("")}</select></label>`);
  }
  if (has("merge")) {
    const earlier = event.duplicate_of || (around.nearby.find((e) => e.category === event.category) || {}).id || "";
    extra.push(`<label>${escape(word(["合并到案件 #", "Merge into case #"]))}<input id="into" inputmode="numeric" value="${escape(earlier)}"></label>`);
  }
  if (has("dispatch")) {
    let options = { people: [], departments: state.departments };
    try { options = await api(`/events/${event.id}/dispatch-options`); } catch (error) { /* the placed person only */ }
    const people = options.people.map((p) => `<option value="staff:${p.id}">${escape(p.name)} · ${escape(p.role)}${p.duty ? ` · ${escape(p.duty)}` : ""}</option>`).join("");
    const deps = options.departments.map((d) => `<option value="dept:${escape(d.code)}">${escape(word(["部门", "Dept"]))} ${escape(state.lang === "zh" ? d.name : d.name_en || d.name)}</option>`).join("");
    extra.push(`<label>${escape(word(["派遣给", "Dispatch to"]))}<select id="target"><option value="">${escape(word(["按分派规则", "As placed"]))}</option>${people}${deps}</select></label>`);
    extra.push(`<fieldset id="assisting"><legend>${escape(word(["协办部门（派遣给部门时）", "Assisting departments (with a department)"]))}</legend>${options.departments
      .map((d) => `<label class="inline"><input type="checkbox" value="${escape(d.code)}"> ${escape(state.lang === "zh" ? d.name : d.name_en || d.name)}</label>`).join("")}</fieldset>`);
  }
  if (has("extend")) extra.push(`<label>${escape(word(["延期（工作小时）", "Extend by (working hours)"]))}<input id="hours" type="number" min="1" max="720" value="8"></label>`);
  if (has("hang")) {
    const soon = new Date(Date.now() + 30 * 86400000).toISOString().slice(0, 10);
    extra.push(`<label>${escape(word(["挂账复查日期", "Review hung case on"]))}<input id="review" type="date" value="${soon}"></label>`);
  }
  if (has("supervise")) {
    const soon = new Date(Date.now() + 3 * 86400000).toISOString().slice(0, 16);
    extra.push(`<label>${escape(word(["督办期限", "Supervision deadline"]))}<input id="due" type="datetime-local" value="${soon}"></label>`
      + `<label>${escape(word(["责任单位代码", "Unit answerable (code)"]))}<input id="answerable" value="${escape(event.street || event.community || "")}"></label>`);
  }
  if (has("close")) {
    extra.push(`<label>${escape(word(["评价（1–5）", "Evaluation (1–5)"]))}<select id="score">${[5, 4, 3, 2, 1]
      .map((n) => `<option>${n}</option>`).join("")}</select></label>`);
  }
  if (has("handle") || has("assist")) {
    extra.push(`<label>${escape(word(["处置照片", "Photos of the work"]))}<input id="photo-files" type="file" accept="image/jpeg,image/png,image/webp" multiple></label>`);
  }
  const actions = offered.map(([action, zh, en, key]) =>
    `<button type="button" data-action="${action}" ${["reject", "rework", "return"].includes(action) ? 'class="quiet"' : ""}>${escape(word([zh, en]))} <kbd>${key}</kbd></button>`).join("");
  const why = (h) => (h.data && h.data.reason && REASONS[h.data.reason] ? ` · ${escape(word(REASONS[h.data.reason]))}` : "")
    + (h.data && h.data.decision ? ` · ${escape(h.data.decision)}` : "")
    + (h.data && h.data.department ? ` · ${escape(h.data.department)}` : "")
    + (h.data && h.data.assisting && h.data.assisting.length ? ` (${escape(word(["协办", "assisting"]))} ${escape(h.data.assisting.join(", "))})` : "")
    + (h.data && h.data.review_on ? ` · ${escape(word(["复查", "review on"]))} ${escape(h.data.review_on)}` : "")
    + (h.data && h.data.due_at ? ` · ${escape(word(["期限", "due"]))} ${escape(when(h.data.due_at))}` : "");
  const steps = history.map((h) => `<li>${escape(when(h.at))} · ${escape(h.action)}${h.to ? ` → ${escape(stateName(h.to))}` : ""} · ${escape(h.actor || "")}${why(h)}${h.note ? ` · ${escape(h.note)}` : ""}`
    + `${h.data && h.data.photos ? `<div>${photoLinks(h.data.photos)}</div>` : ""}</li>`).join("");
  const list = (items) => items.map((e) => `<li><a href="#" data-open="${e.id}">#${e.id}</a> ${escape(category(e.category))} · ${escape(stateName(e.state))}`
    + `${e.distance_m != null ? ` · ${Math.round(e.distance_m)} m` : ` · ${escape(when(e.reported_at))}`}</li>`).join("");
  box.innerHTML = `<h2>#${event.id} ${escape(category(event.category))}${event.supervision ? ` <span class="flag">${escape(word(["督办", "supervised"]))}</span>` : ""}</h2>
    <div id="message">${message || ""}</div><dl>${rows.map(([k, v]) => `<dt>${escape(word(k))}</dt><dd>${escape(v)}</dd>`).join("")}</dl>
    ${event.photos && event.photos.length ? `<p>${photoLinks(event.photos)}</p>` : ""}
    ${clocks(event)}
    <label>${escape(word(["说明（驳回、延期、挂账、督办须填写）", "Note (a reject, extension, hang or supervision needs one)"]))}<input id="note" maxlength="500"></label>
    ${extra.join("")}
    <div class="actions">${actions || `<span class="muted">${escape(word(["此状态下无可办理步骤", "No step for you in this state"]))}</span>`}</div>
    <h3>${escape(word(["附近在办（疑似重复）", "Open cases nearby (possible duplicates)"]))}</h3><ul class="near">${list(around.nearby) || "<li>—</li>"}</ul>
    <h3>${escape(word(["网格近期案件", "The grid's recent cases"]))}</h3><ul class="near">${list(around.recent) || "<li>—</li>"}</ul>
    <h3>${escape(word(["经过", "History"]))}</h3><ol>${steps}</ol>`;
  for (const button of box.querySelectorAll("[data-action]")) button.addEventListener("click", () => act(event, button.dataset.action));
  for (const link of box.querySelectorAll("[data-open]")) link.addEventListener("click", (e) => { e.preventDefault(); select(Number(link.dataset.open)); });
  const template = $("template");
  if (template) template.addEventListener("change", () => {
    const t = state.templates.find((x) => String(x.id) === template.value);
    if (t) $("note").value = t.body;
  });
}

async function uploadPhotos() {
  const files = $("photo-files") ? [...$("photo-files").files] : [];
  const keys = [];
  for (const file of files) keys.push((await api("/photos", { method: "POST", headers: { "content-type": file.type }, body: file })).key);
  return keys;
}

async function act(event, action) {
  const note = ($("note") && $("note").value.trim()) || undefined;
  const body = { note, seen_updated_at: event.updated_at };
  let step = action;
  if (action === "whistle") { step = "escalate"; body.to_level = "department"; }
  if (action === "extend") body.hours = Number($("hours").value);
  if (action === "close") body.evaluation = Number($("score").value);
  if (action === "return") body.reason = $("reason").value;
  if (action === "hang") body.review_on = $("review").value;
  if (action === "merge") body.into = Number($("into").value) || undefined;
  if (action === "supervise") {
    body.due = $("due").value ? new Date($("due").value).toISOString() : undefined;
    body.unit = $("answerable").value.trim() || undefined;
  }
  if (action === "dispatch" && $("target").value) {
    const [kind, value] = $("target").value.split(":");
    if (kind === "staff") body.staff_id = Number(value);
    else {
      body.department = value;
      body.assisting = [...document.querySelectorAll("#assisting input:checked")].map((i) => i.value);
    }
  }
  let message;
  try {
    if (NEEDS_NOTE.includes(action) && !note) throw new Error(word(["请先填写说明", "Give a note first"]));
    if (action === "handle" || action === "assist") body.photos = await uploadPhotos();
    await post(`/events/${event.id}/${step}`, body);
    message = `<p class="ok">${escape(word(["已完成", "Done"]))}: ${escape(action)}</p>`;
  } catch (error) {
    message = `<p class="error">${escape(error.message)}</p>`;
  }
  await Promise.all([loadQueue(), loadCounts()]);
  try {
    await openCase(event.id, message);
  } catch (error) {
    $("case").innerHTML = `${message}<p class="muted">${escape(word(["该案件已不在您的队列中", "The case has left your queue"]))}</p>`;
  }
}

// ---------------------------------------------------------------- a selection's step

function showBulk() {
  const n = state.picked.size;
  $("picked").textContent = word([`已选 ${n} 件`, `${n} selected`]);
  $("bulk-preview").disabled = n === 0;
  $("bulk-confirm").hidden = !state.preview;
  if (!state.preview) $("bulk-said").textContent = "";
}

async function fillBulkTargets() {
  const select = $("bulk-target");
  const options = [`<option value="">${escape(word(["（派遣对象）", "(whom to dispatch to)"]))}</option>`];
  const first = [...state.picked][0];
  if (first) {
    try {
      const found = await api(`/events/${first}/dispatch-options`);
      for (const p of found.people) options.push(`<option value="staff:${p.id}">${escape(p.name)} · ${escape(p.role)}</option>`);
      for (const d of found.departments) options.push(`<option value="dept:${escape(d.code)}">${escape(word(["部门", "Dept"]))} ${escape(d.name)}</option>`);
    } catch (error) { /* none */ }
  }
  select.innerHTML = options.join("");
}

function bulkBody(confirm) {
  const body = { ids: [...state.picked], action: $("bulk-action").value, confirm, note: $("bulk-note").value.trim() || undefined };
  const target = $("bulk-target").value;
  if (body.action === "dispatch" && target) {
    const [kind, value] = target.split(":");
    if (kind === "staff") body.staff_id = Number(value); else body.department = value;
  }
  return body;
}

async function previewBulk() {
  try {
    const said = await post("/events/selection", bulkBody(false));
    const cannot = said.cases.filter((c) => !c.ok);
    const verb = $("bulk-action").selectedOptions[0].textContent;
    state.preview = said;
    $("bulk-said").textContent = word([`将${verb}：${said.possible} / ${said.count} 件可办理`, `${verb}: ${said.possible} of ${said.count} can be done`])
      + (cannot.length ? word(["；不可办理：", "; cannot: "]) + cannot.map((c) => `#${c.id} ${c.error}`).join("; ") : "")
      + (cannot.length ? word(["（须全部可办理才能执行）", " (all must be possible)"]) : "");
    $("bulk-confirm").hidden = cannot.length > 0;
  } catch (error) {
    state.preview = null;
    $("bulk-said").textContent = error.message;
    $("bulk-confirm").hidden = true;
  }
}

async function confirmBulk() {
  try {
    const done = await post("/events/selection", bulkBody(true));
    $("bulk-said").textContent = word([`已完成 ${done.count} 件`, `Done: ${done.count}`]);
    state.picked.clear();
  } catch (error) {
    $("bulk-said").textContent = error.message;
  }
  state.preview = null;
  $("bulk-confirm").hidden = true;
  await Promise.all([loadQueue(), loadCounts()]);
}

// ---------------------------------------------------------------- figures (league tables)

async function showFigures() {
  const rows = (await api("/kpis?by=department")).units;
  const head = [["部门", "Department"], ["上报", "Reported"], ["按期结案率", "On time"], ["含超期在办", "With open overdue"],
    ["超期在办", "Open overdue"], ["退单", "Returns"], ["反复退单", "Bounced"], ["处置超时", "Late"], ["督办按期", "Supervised on time"]];
  const pct = (v) => (v == null ? "—" : `${(v * 100).toFixed(1)}%`);
  $("league").innerHTML = `<thead><tr>${head.map((h) => `<th>${escape(word(h))}</th>`).join("")}</tr></thead><tbody>${rows
    .sort((a, b) => (b.open_overdue - a.open_overdue) || (b.returns - a.returns))
    .map((r) => `<tr><td>${escape(r.unit)}</td><td>${r.reported}</td><td>${pct(r.on_time_closure_rate)}</td><td>${pct(r.on_time_rate_with_open_overdue)}</td>`
      + `<td>${r.open_overdue}</td><td>${r.returns}</td><td>${r.bounced}</td><td>${r.late_handling}</td><td>${r.supervised_on_time}/${r.supervised}</td></tr>`).join("")}</tbody>`;
  $("figures").showModal();
}

// ---------------------------------------------------------------- an admin's settings: the calendar, the templates

const TEMPLATE_STEPS = ["reject", "close", "return", "hang", "supervise", "extend", "suspend", "dispatch", "rework", "handle", "assist"];
let editing = null;  // the template being changed (null: a new one)

async function loadCalendar() {
  const city = $("cal-city").value;
  if (!city) return;
  const shown = await api(`/cities/${encodeURIComponent(city)}/calendar?year=${encodeURIComponent($("cal-year").value)}`);
  $("cal-hours").textContent = `${word(["工作时间", "working hours"])} ${shown.working_hours.join(", ")} (${shown.timezone})`
    + (shown.national_calendar ? ` · ${word(["国家节假日至", "national holidays known until"])} ${shown.national_known_until || "—"}` : "");
  const today = new Date().toISOString().slice(0, 10);
  $("cal-days").innerHTML = shown.days.map((d) => `<tr><td>${escape(d.day)}</td><td>${escape(d.working ? word(["上班", "working"]) : word(["休息", "day off"]))}</td>`
    + `<td>${escape(d.name)}</td><td>${escape(d.own ? word(["本市", "the city's"]) : word(["国家", "national"]))}</td>`
    + `<td>${d.own && d.day > today ? `<button type="button" data-remove="${escape(d.day)}">${escape(word(["删除", "Remove"]))}</button>` : ""}</td></tr>`).join("");
  for (const b of $("cal-days").querySelectorAll("[data-remove]")) b.addEventListener("click", async () => {
    try {
      const r = await fetch(`/cities/${encodeURIComponent(city)}/calendar/days/${b.dataset.remove}`, { method: "DELETE" });
      if (!r.ok) throw new Error(`${r.status}: ${(await r.json().catch(() => ({}))).detail || r.statusText}`);
      said("cal-said", word(["已删除", "Removed"]), true);
    } catch (error) { said("cal-said", error.message, false); }
    loadCalendar();
  });
}

function said(id, text, ok) {
  const p = $(id);
  p.className = ok ? "ok" : "error";
  p.textContent = text;
}

async function addDay() {
  try {
    const made = await post(`/cities/${encodeURIComponent($("cal-city").value)}/calendar/days`,
      { day: $("cal-day").value, name: $("cal-name").value, working: $("cal-working").checked });
    said("cal-said", `${word(["已添加", "Added"])} ${made.day} ${made.name}`, true);
    await loadCalendar();
  } catch (error) {
    said("cal-said", error.message, false);
  }
}

async function loadTemplates() {
  state.templates = await api("/templates");
  $("tpl-list").innerHTML = state.templates.map((t) => `<tr><td>${escape(t.step)}</td><td>${escape(t.category || word(["全部", "all"]))}</td>`
    + `<td>${escape(t.body)}</td><td><button type="button" data-edit="${t.id}">${escape(word(["修改", "Edit"]))}</button>`
    + ` <button type="button" data-delete="${t.id}">${escape(word(["删除", "Delete"]))}</button></td></tr>`).join("");
  for (const b of $("tpl-list").querySelectorAll("[data-edit]")) b.addEventListener("click", () => {
    const t = state.templates.find((x) => String(x.id) === b.dataset.edit);
    editing = t.id;
    $("tpl-step").value = t.step;
    $("tpl-category").value = t.category || "";
    $("tpl-body").value = t.body;
    said("tpl-said", `${word(["正在修改", "Editing"])} #${t.id}`, true);
  });
  for (const b of $("tpl-list").querySelectorAll("[data-delete]")) b.addEventListener("click", async () => {
    const r = await fetch(`/templates/${b.dataset.delete}`, { method: "DELETE" });
    said("tpl-said", r.ok ? word(["已删除", "Deleted"]) : `${r.status}`, r.ok);
    loadTemplates();
  });
}

async function saveTemplate() {
  const body = { step: $("tpl-step").value, category: $("tpl-category").value || null, body: $("tpl-body").value };
  try {
    if (editing === null) await post("/templates", body);
    else await api(`/templates/${editing}`, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    said("tpl-said", word(["已保存", "Saved"]), true);
    editing = null;
    $("tpl-body").value = "";
    await loadTemplates();
  } catch (error) {
    said("tpl-said", error.message, false);
  }
}

async function openSettings() {
  const cities = await api("/cities");
  $("cal-city").replaceChildren(...cities.map((c) => new Option(state.lang === "zh" ? c.name : c.name_en || c.name, String(c.id))));
  if (state.me.unit.city_id) $("cal-city").value = String(state.me.unit.city_id);
  $("cal-year").value = String(new Date().getFullYear());
  $("tpl-step").replaceChildren(...TEMPLATE_STEPS.map((s) => new Option(s, s)));
  $("tpl-category").replaceChildren(new Option(word(["全部类别", "every category"]), ""),
    ...Object.values(state.categories).map((c) => new Option(`${c.code} ${category(c.code)}`, c.code)));
  await Promise.all([loadCalendar(), loadTemplates()]);
  $("settings").showModal();
}

// ---------------------------------------------------------------- live

function follow() {
  const source = new EventSource(`/events/live${state.last ? `?since=${state.last}` : ""}`);
  source.onopen = () => { $("live").className = "on"; };
  source.onerror = () => { $("live").className = "off"; };
  source.addEventListener("report", (message) => {
    const event = JSON.parse(message.data);
    state.last = Math.max(state.last, event.id);
    if (matches(event) && !state.rows.some((r) => r.id === event.id)) insertRow(event);
    loadCounts().catch(() => {});
  });
  source.addEventListener("end", () => { source.close(); $("live").className = "off"; });
}

function setLanguage(lang) {
  state.lang = lang;
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  if (window.gridpatrolBasemap) window.gridpatrolBasemap.setLanguage(lang);
  $("lang").textContent = lang === "zh" ? "English" : "中文";
  for (const el of document.querySelectorAll("[data-zh]")) el.textContent = el.dataset[lang];
  fillFilters();
  $("queue").tBodies[0].replaceChildren(...state.rows.map(rowFor));
  loadCounts().catch(() => {});
  showBulk();
  if (state.selected) select(state.selected);
}

function fillFilters() {
  for (const [id, entries] of [["category", Object.values(state.categories).map((c) => [c.code, `${c.code} ${category(c.code)}`])],
    ["source", Object.keys(SOURCES).map((s) => [s, sourceName(s)])]]) {
    const select = $(id);
    const kept = select.value;
    select.replaceChildren(new Option("—", ""), ...entries.map(([v, t]) => new Option(t, v)));
    select.value = kept;
  }
}

document.addEventListener("keydown", (e) => {
  const typing = e.target instanceof HTMLInputElement || e.target instanceof HTMLSelectElement;
  if (typing && e.key === "Escape") { e.target.blur(); return; }  // out of a field, back to the keys
  if (typing || e.ctrlKey || e.metaKey || e.altKey) return;
  const ids = state.rows.map((r) => r.id);
  const at = ids.indexOf(state.selected);
  if (e.key === "j" && ids.length) select(ids[Math.min(at + 1, ids.length - 1)]);
  else if (e.key === "k" && ids.length) select(ids[Math.max(at - 1, 0)]);
  else if (e.key === " " && state.selected) { e.preventDefault(); pick(state.selected, !state.picked.has(state.selected)); loadQueue(); }
  else if (state.selected) {
    const button = [...$("case").querySelectorAll("[data-action]")].find((b) => b.querySelector("kbd").textContent === e.key);
    if (button) button.click();
  }
});
$("lang").addEventListener("click", () => setLanguage(state.lang === "zh" ? "en" : "zh"));
for (const id of ["state", "category", "source", "overdue", "due_soon", "duplicates", "returned", "supervised"]) $(id).addEventListener("change", loadQueue);
$("unit").addEventListener("change", () => { loadQueue(); loadCounts(); });
$("pick-all").addEventListener("change", () => {
  for (const r of state.rows) if ($("pick-all").checked) state.picked.add(r.id); else state.picked.delete(r.id);
  $("queue").tBodies[0].replaceChildren(...state.rows.map(rowFor));
  state.preview = null;
  showBulk();
  fillBulkTargets();
});
$("queue").addEventListener("change", () => fillBulkTargets());
$("bulk-preview").addEventListener("click", previewBulk);
$("bulk-confirm").addEventListener("click", confirmBulk);
$("bulk-action").addEventListener("change", () => { state.preview = null; showBulk(); });
$("settings-toggle").addEventListener("click", () => openSettings().catch((error) => { $("case").innerHTML = `<p class="error">${escape(error.message)}</p>`; }));
$("cal-city").addEventListener("change", () => loadCalendar().catch((error) => said("cal-said", error.message, false)));
$("cal-year").addEventListener("change", () => loadCalendar().catch((error) => said("cal-said", error.message, false)));
$("cal-add").addEventListener("click", addDay);
$("tpl-save").addEventListener("click", saveTemplate);
$("tpl-new").addEventListener("click", () => { editing = null; $("tpl-body").value = ""; said("tpl-said", "", true); });
$("figures-toggle").addEventListener("click", () => showFigures().catch((error) => { $("case").innerHTML = `<p class="error">${escape(error.message)}</p>`; }));

(async () => {
  const [me, categories, templates] = await Promise.all([api("/me"), api("/categories"), api("/templates")]);
  state.me = me;
  state.templates = templates;
  $("who").textContent = `${me.display_name || me.username} · ${me.role === "department" ? `${word(["部门", "Department"])} ${me.department || ""}` : me.unit.code || me.unit.level}`;
  if (isDepartment() || me.role === "leader") $("bulk").classList.add("off");
  $("settings-toggle").hidden = me.role !== "admin";
  for (const c of categories) state.categories[c.code] = c;
  fillFilters();
  showBulk();
  await Promise.all([loadQueue(), loadCounts()]);
  state.last = Math.max(0, ...state.rows.map((r) => r.id));
  follow();
})().catch((error) => { $("case").innerHTML = `<p class="error">${escape(error.message)}</p>`; });
