// The centre's console: the live queue of the jurisdiction's cases (new reports pushed by server-sent events),
// the counts per state, a case file with its history, and the loop's steps, each one click or one key.
// Chinese first, English one tap away. Everything goes through gridpatrol's own API; no text is put in as HTML
// without escaping.
"use strict";

const $ = (id) => document.getElementById(id);
const STATES = { reported: ["待受理", "Reported"], accepted: ["已立案", "Accepted"], dispatched: ["已派遣", "Dispatched"],
  handled: ["已处理", "Handled"], verified: ["已核查", "Verified"], suspended: ["缓办", "Suspended"],
  closed: ["已结案", "Closed"], rejected: ["已驳回", "Rejected"], merged: ["已合并", "Merged"], hung: ["挂账", "Hung"] };
const ACTIONS = {  // what the centre does from each state, and the key for it
  reported: [["accept", "立案", "Accept", "a"], ["reject", "驳回", "Reject", "r"], ["merge", "合并", "Merge", "m"]],
  accepted: [["dispatch", "派遣", "Dispatch", "d"], ["reject", "驳回", "Reject", "r"], ["merge", "合并", "Merge", "m"]],
  dispatched: [["suspend", "缓办", "Suspend", "s"], ["extend", "延期", "Extend", "x"], ["escalate", "升级", "Escalate", "e"],
    ["hang", "挂账", "Hang", "g"]],
  handled: [["verify", "核查通过", "Verify", "v"], ["rework", "返工", "Rework", "w"]],
  verified: [["close", "结案", "Close", "c"]],
  suspended: [["resume", "恢复", "Resume", "u"]],
  hung: [["unhang", "重启", "Take up again", "u"]],
};
const DESK_ACTIONS = {  // a department at its desk: sign for the case, handle it, or send it back (退单)
  dispatched: [["receive", "签收", "Receive", "i"], ["handle", "处理完毕", "Handled", "h"], ["return", "退单", "Return", "t"]],
};
const AFTER_RETURN = [["overrule", "维持派遣", "Overrule", "o"], ["dispatch", "重新派遣", "Re-dispatch", "d"],
  ["reject", "驳回", "Reject", "r"]];
const REASONS = { not_our_duty: ["不属本部门职责", "Not our duty"], wrong_location: ["属地不符", "Not our area"],
  unclear_ownership: ["权属不清", "Ownership unclear"], overlapping_duties: ["职能交叉", "Duties overlap"] };
const state = { lang: "zh", rows: [], selected: null, categories: {}, last: 0, role: null };

function actionsFor(event, history) {
  if (state.role === "department") return DESK_ACTIONS[event.state] || [];
  const last = history.length ? history[history.length - 1].action : null;
  if (event.state === "accepted" && last === "return") return AFTER_RETURN;
  return ACTIONS[event.state] || [];
}

function escape(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}
function word(pair) { return state.lang === "zh" ? pair[0] : pair[1]; }
function when(iso) { return iso ? new Date(iso).toLocaleString(state.lang === "zh" ? "zh-CN" : "en-GB", { hour12: false }) : "—"; }

async function api(url, options) {
  const response = await fetch(url, options);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(`${response.status}: ${typeof body.detail === "string" ? body.detail : response.statusText}`);
  return body;
}

function category(code) {
  const c = state.categories[code];
  return c ? (state.lang === "zh" ? c.name : c.name_en || c.name) : code;
}
function stateName(s) { return word(STATES[s] || [s, s]); }

async function loadCounts() {
  const counts = await api("/events/counts");
  const nav = $("counts");
  nav.replaceChildren();
  for (const [key, pair] of [...Object.entries(STATES).filter(([k]) => k in counts), ["overdue", ["超期", "Overdue"]], ["due_soon", ["2小时内到期", "Due in 2 h"]]]) {
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.key = key;
    if ((key === "overdue" || key === "due_soon") && counts[key] > 0) button.className = "alert";
    button.innerHTML = `<b>${counts[key]}</b>${escape(word(pair))}`;
    button.addEventListener("click", () => {
      if (key === "overdue") { $("overdue").checked = true; $("state").value = ""; }
      else if (key !== "due_soon") { $("state").value = key; $("overdue").checked = false; }
      loadQueue();
    });
    nav.append(button);
  }
}

function rowFor(event) {
  const tr = document.createElement("tr");
  tr.dataset.id = event.id;
  const late = event.due_at && new Date(event.due_at) < new Date() && ["dispatched", "handled"].includes(event.state);
  if (late) tr.classList.add("late");
  for (const text of [event.id, category(event.category), event.grid || word(["街道队列", "street queue"]),
    word(STATES[event.state] || [event.state, event.state]), when(event.due_at), event.source]) {
    const td = document.createElement("td");
    td.textContent = text;
    tr.append(td);
  }
  tr.addEventListener("click", () => select(event.id));
  if (state.selected === event.id) tr.classList.add("selected");
  return tr;
}

function matches(event) {
  const wanted = $("state").value;
  if (wanted ? event.state !== wanted : !(event.state in ACTIONS)) return false;
  if ($("overdue").checked) return false;  // a new report is never overdue yet
  return true;
}

async function loadQueue() {
  const query = new URLSearchParams({ limit: "500" });
  const wanted = $("state").value;
  for (const s of wanted ? [wanted] : Object.keys(ACTIONS)) query.append("state", s);
  if ($("overdue").checked) query.set("overdue", "true");
  state.rows = await api(`/events?${query}`);
  $("queue").tBodies[0].replaceChildren(...state.rows.map(rowFor));
}

async function select(id) {
  state.selected = id;
  for (const tr of $("queue").tBodies[0].rows) tr.classList.toggle("selected", Number(tr.dataset.id) === id);
  const [event, history] = await Promise.all([api(`/events/${id}`), api(`/events/${id}/history`)]);
  showCase(event, history);
}

function showCase(event, history, message) {
  const box = $("case");
  const rows = [
    [["类别", "Category"], category(event.category)], [["状态", "State"], word(STATES[event.state] || [event.state, event.state])],
    [["网格", "Grid"], event.grid || "—"], [["负责人", "Assignee"], event.assignee ? `${event.assignee.name} (${event.assignee.role})` : (event.department || "—")],
    [["分派依据", "Placed by"], event.assignment_rule || "—"], [["时限", "Deadline"], when(event.due_at)],
    [["来源", "Source"], event.source], [["上报", "Reported"], when(event.reported_at)],
    [["位置", "Location"], event.location ? event.location.coordinates.map((v) => v.toFixed(6)).join(", ") + " (WGS-84)" : "—"],
    [["描述", "Description"], event.description || "—"],
  ];
  if (event.reporter_contact) rows.push([["联系方式", "Contact"], event.reporter_contact]);
  if (event.duplicate_of) rows.push([["疑似重复", "Possible duplicate of"], `#${event.duplicate_of}`]);
  const offered = actionsFor(event, history);
  const extra = [];
  if (offered.some(([a]) => a === "return")) {
    extra.push(`<label>${escape(word(["退单原因", "Reason for the return"]))}<select id="reason">${Object.entries(REASONS)
      .map(([k, pair]) => `<option value="${k}">${escape(word(pair))}</option>`).join("")}</select></label>`);
  }
  if (offered.some(([a]) => a === "merge")) {
    const earlier = event.duplicate_of || "";
    extra.push(`<label>${escape(word(["合并到案件 #", "Merge into case #"]))}<input id="into" inputmode="numeric" value="${escape(earlier)}"></label>`);
  }
  if (offered.some(([a]) => a === "hang")) {
    const soon = new Date(Date.now() + 30 * 86400000).toISOString().slice(0, 10);
    extra.push(`<label>${escape(word(["挂账复查日期", "Review hung case on"]))}<input id="review" type="date" value="${soon}"></label>`);
  }
  if (offered.some(([a]) => a === "close")) {
    extra.push(`<label>${escape(word(["评价（1–5）", "Evaluation (1–5)"]))}<select id="score">${[5, 4, 3, 2, 1]
      .map((n) => `<option>${n}</option>`).join("")}</select></label>`);
  }
  const returns = history.filter((h) => h.action === "return").length;
  if (returns) rows.push([["退单次数", "Returned"], String(returns)]);
  const actions = offered.map(([action, zh, en, key]) =>
    `<button type="button" data-action="${action}" ${action === "reject" || action === "rework" ? 'class="quiet"' : ""}>${escape(word([zh, en]))} <kbd>${key}</kbd></button>`).join("");
  const photos = (event.photos || []).map((p) => `<a href="/photos/${encodeURIComponent(p)}" target="_blank"><img alt="photo" src="/photos/${encodeURIComponent(p)}"></a>`).join("");
  const why = (h) => (h.data && h.data.reason && REASONS[h.data.reason] ? ` · ${escape(word(REASONS[h.data.reason]))}` : "")
    + (h.data && h.data.decision ? ` · ${escape(h.data.decision)}` : "")
    + (h.data && h.data.review_on ? ` · ${escape(word(["复查", "review on"]))} ${escape(h.data.review_on)}` : "");
  const steps = history.map((h) => `<li>${escape(when(h.at))} · ${escape(h.action)}${h.to ? ` → ${escape(stateName(h.to))}` : ""} · ${escape(h.actor || "")}${why(h)}${h.note ? ` · ${escape(h.note)}` : ""}</li>`).join("");
  box.innerHTML = `<h2>#${event.id} ${escape(category(event.category))}</h2>
    ${message || ""}<dl>${rows.map(([k, v]) => `<dt>${escape(word(k))}</dt><dd>${escape(v)}</dd>`).join("")}</dl>
    ${photos ? `<p>${photos}</p>` : ""}
    <label>${escape(word(["说明（驳回、延期、挂账须填写）", "Note (a reject, extension or hang needs one)"]))}<input id="note" maxlength="500"></label>
    ${extra.join("")}
    <div class="actions">${actions}</div>
    <h3>${escape(word(["经过", "History"]))}</h3><ol>${steps}</ol>`;
  for (const button of box.querySelectorAll("[data-action]")) button.addEventListener("click", () => act(event.id, button.dataset.action));
}

async function act(id, action) {
  const note = ($("note") && $("note").value.trim()) || undefined;
  const body = { note };
  if (action === "extend") body.hours = 24;
  if (action === "close") body.evaluation = Number($("score").value);
  if (action === "return") body.reason = $("reason").value;
  if (action === "hang") body.review_on = $("review").value;
  if (action === "merge") body.into = Number($("into").value) || undefined;
  if ((action === "reject" || action === "extend" || action === "hang") && !note) {
    const [event, history] = await Promise.all([api(`/events/${id}`), api(`/events/${id}/history`)]);
    showCase(event, history, `<p class="error">${escape(word(["请先填写说明", "Give a note first"]))}</p>`);
    return;
  }
  let message;
  try {
    await api(`/events/${id}/${action}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    message = `<p class="ok">${escape(word(["已完成", "Done"]))}: ${escape(action)}</p>`;
  } catch (error) {
    message = `<p class="error">${escape(error.message)}</p>`;
  }
  await Promise.all([loadQueue(), loadCounts()]);
  const [event, history] = await Promise.all([api(`/events/${id}`), api(`/events/${id}/history`)]);
  showCase(event, history, message);
}

function follow() {
  const source = new EventSource(`/events/live${state.last ? `?since=${state.last}` : ""}`);
  source.onopen = () => { $("live").className = "on"; };
  source.onerror = () => { $("live").className = "off"; };
  source.addEventListener("report", (message) => {
    const event = JSON.parse(message.data);
    state.last = Math.max(state.last, event.id);
    if (matches(event) && !state.rows.some((r) => r.id === event.id)) {
      state.rows.unshift(event);
      const tr = rowFor(event);
      tr.classList.add("fresh");
      $("queue").tBodies[0].prepend(tr);
    }
    loadCounts().catch(() => {});
  });
  source.addEventListener("end", () => { source.close(); $("live").className = "off"; });
}

function setLanguage(lang) {
  state.lang = lang;
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  $("lang").textContent = lang === "zh" ? "English" : "中文";
  for (const el of document.querySelectorAll("[data-zh]")) el.textContent = el.dataset[lang];
  $("queue").tBodies[0].replaceChildren(...state.rows.map(rowFor));
  loadCounts().catch(() => {});
  if (state.selected) select(state.selected);
}

document.addEventListener("keydown", (e) => {
  if (e.target instanceof HTMLInputElement || e.target instanceof HTMLSelectElement || e.ctrlKey || e.metaKey) return;
  const ids = state.rows.map((r) => r.id);
  const at = ids.indexOf(state.selected);
  if (e.key === "j" && ids.length) select(ids[Math.min(at + 1, ids.length - 1)]);
  else if (e.key === "k" && ids.length) select(ids[Math.max(at - 1, 0)]);
  else if (state.selected) {
    const button = [...$("case").querySelectorAll("[data-action]")].find((b) => b.querySelector("kbd").textContent === e.key);
    if (button) button.click();
  }
});
$("lang").addEventListener("click", () => setLanguage(state.lang === "zh" ? "en" : "zh"));
$("state").addEventListener("change", loadQueue);
$("overdue").addEventListener("change", loadQueue);

(async () => {
  const [me, categories] = await Promise.all([api("/me"), api("/categories")]);
  state.role = me.role;
  $("who").textContent = `${me.display_name || me.username} · ${me.unit.code || me.unit.level}`;
  for (const c of categories) state.categories[c.code] = c;
  await Promise.all([loadQueue(), loadCounts()]);
  state.last = Math.max(0, ...state.rows.map((r) => r.id));
  follow();
})().catch((error) => { $("case").innerHTML = `<p class="error">${escape(error.message)}</p>`; });
