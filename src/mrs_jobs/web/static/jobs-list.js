// The jobs list: filters, sort, paging, selection, and refreshing while a job on it is live.

import { api, getSession, may } from "./api.js";
import { openDeleteDialog, openKillDialog } from "./dialogs.js";
import { $, el } from "./dom.js";
import { durationNode, setDuration } from "./durations.js";
import { LIVE, LIVE_POLL_MS, POLL_MS, resultClass, stateCell, timeNode } from "./format.js";
import { isLive } from "./live.js";
import { currentView, handleError, showView } from "./page.js";

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const list = {
  page: 1,
  limit: 10,
  asc: false,
  filters: { search: "", state: "", result: "", type: "", time: "", from: "", to: "" },
  jobs: [],
  total: 0,
  selected: new Set(),
  rows: new Map(), // job_id -> {sig, tr}
  seq: 0,
  timer: 0,
};

export function resetListState() {
  list.page = 1;
  list.asc = false;
  list.filters = { search: "", state: "", result: "", type: "", time: "", from: "", to: "" };
  list.jobs = [];
  list.total = 0;
  list.selected.clear();
  list.rows.clear();
  $("filters").reset();
  $("f-custom").hidden = true;
  $("f-custom-to").hidden = true;
  $("sort-arrow").textContent = "▼";
  $("jobs-body").replaceChildren();
}

// Ends polling; an answer still in flight is dropped when it arrives.
export function stopList() {
  clearTimeout(list.timer);
  list.seq++;
}

export function unselect(ids) {
  for (const id of ids) list.selected.delete(id);
}

function listQuery() {
  const f = list.filters;
  const q = { limit: list.limit, offset: list.page, sort_by: list.asc ? "asc" : "desc" };
  const search = f.search.trim();
  if (search) {
    if (UUID_RE.test(search)) q.job_id = search;
    else q.job_name_contains = search; // ours: a part of the name, any case
  }
  q.job_state = f.state;
  q.job_result = f.result;
  q.job_type = f.type;
  if (f.time === "custom") {
    const from = f.from ? new Date(f.from).getTime() : NaN; // datetime-local: local time
    const to = f.to ? new Date(f.to).getTime() : NaN;
    if (!Number.isNaN(from)) q.submitted_time_begin = from;
    if (!Number.isNaN(to)) q.submitted_time_end = to + 999; // "to" includes its whole second
  } else if (f.time) {
    q.submitted_time_begin = Date.now() - Number(f.time);
  }
  return q;
}

export function openList() {
  showView("list");
  loadList();
}

export async function loadList() {
  clearTimeout(list.timer);
  const seq = ++list.seq;
  try {
    const data = await api("GET", "", { query: listQuery() });
    if (seq !== list.seq) return;
    const jobs = Array.isArray(data && data.job_list) ? data.job_list : [];
    const total = Number(data && data.total_record) || 0;
    if (!jobs.length && total > 0 && list.page > 1) {
      // The page emptied (jobs deleted): show the last page that has jobs.
      list.page = Math.max(1, Math.ceil(total / list.limit));
      loadList();
      return;
    }
    list.jobs = jobs;
    list.total = total;
    renderList();
  } catch (err) {
    if (seq !== list.seq) return;
    handleError(err);
  }
  if (seq === list.seq) scheduleList();
}

// Polls while a job on the page is live; a terminal job never changes again.
function scheduleList() {
  const live = list.jobs.some((j) => LIVE.has(j.job_state));
  $("live-indicator").hidden = !live;
  clearTimeout(list.timer);
  if (live && currentView() === "list" && getSession()) {
    list.timer = setTimeout(() => {
      if (document.hidden) scheduleList();
      else loadList();
    }, isLive() ? LIVE_POLL_MS : POLL_MS);
  }
}

function rowSignature(job) {
  return JSON.stringify([job.job_name, job.job_id, job.user, job.job_type, job.job_state,
    job.job_result, job.job_progress, job.submitted_time, job.finished_time]);
}

function buildRow(job) {
  const id = String(job.job_id);
  const name = String(job.job_name || "");
  const live = LIVE.has(job.job_state);
  const duration = durationNode(job);
  const check = el("input", {
    type: "checkbox", class: "row-check", "aria-label": `Select job ${name || id}`,
    on: { change: (e) => toggleSelected(id, e.target.checked) },
  });
  const tr = el("tr", { "data-job-id": id },
    el("td", { class: "col-check" }, check),
    el("td", { class: "col-name" },
      el("a", { class: "job-name", href: `#/jobs/${encodeURIComponent(id)}`, text: name || id }),
      el("span", { class: "job-id mono", text: id, title: id })),
    el("td", { text: job.user || "" }),
    el("td", { text: job.job_type || "" }),
    el("td", { class: "col-state" }, stateCell(job)),
    el("td", {}, el("span", { class: `result ${resultClass(job.job_result)}`, text: job.job_result || "" })),
    el("td", { class: "col-time" }, timeNode(job.submitted_time)),
    el("td", { class: "col-time" }, timeNode(job.finished_time)),
    el("td", { class: "col-duration" }, duration),
    el("td", { class: "col-actions" },
      el("div", { class: "actions" },
        // Only what the signed-in policy allows is built (api.js may()).
        may("mrs:job:stop") ? el("button", {
          type: "button", class: "btn-link danger row-kill", text: "Kill", disabled: !live,
          title: live ? "Kill this job" : "Only live jobs can be killed",
          on: { click: () => openKillDialog(job) },
        }) : null,
        may("mrs:job:batchDelete") ? el("button", {
          type: "button", class: "btn-link danger row-delete", text: "Delete",
          on: { click: () => openDeleteDialog([job]) },
        }) : null)));
  tr._check = check;
  tr._duration = duration;
  return tr;
}

function renderList() {
  const rows = new Map();
  const trs = list.jobs.map((job) => {
    const sig = rowSignature(job);
    const old = list.rows.get(job.job_id);
    // Unchanged rows are kept as they are, so polling does not steal focus or hover.
    const kept = old && old.sig === sig;
    const tr = kept ? old.tr : buildRow(job);
    if (kept) setDuration(tr._duration, job); // a running job's elapsed time, as answered now
    rows.set(job.job_id, { sig, tr });
    return tr;
  });
  list.rows = rows;
  $("jobs-body").replaceChildren(...trs);
  $("jobs-empty").hidden = trs.length > 0;
  for (const id of [...list.selected]) if (!rows.has(id)) list.selected.delete(id);
  updateSelection();

  const pages = Math.max(1, Math.ceil(list.total / list.limit));
  const first = list.total ? (list.page - 1) * list.limit + 1 : 0;
  const last = Math.min(list.total, first + list.jobs.length - 1);
  $("pager-total").textContent = list.total
    ? `${first}–${last} of ${list.total} jobs`
    : "0 jobs";
  $("page-info").textContent = `Page ${list.page} of ${pages}`;
  $("page-prev").disabled = list.page <= 1;
  $("page-next").disabled = list.page >= pages;
}

function toggleSelected(id, on) {
  if (on) list.selected.add(id);
  else list.selected.delete(id);
  updateSelection();
}

function updateSelection() {
  let checked = 0;
  for (const [id, { tr }] of list.rows) {
    const on = list.selected.has(id);
    tr._check.checked = on;
    tr.classList.toggle("selected", on);
    if (on) checked++;
  }
  const all = $("select-all");
  all.checked = checked > 0 && checked === list.rows.size;
  all.indeterminate = checked > 0 && checked < list.rows.size;
  const n = list.selected.size;
  $("delete-selected").disabled = n === 0;
  $("delete-selected").textContent = n ? `Delete (${n})` : "Delete";
  $("selection-count").textContent = n ? `${n} selected` : "";
}

function readFilters() {
  list.filters = {
    search: $("f-search").value,
    state: $("f-state").value,
    result: $("f-result").value,
    type: $("f-type").value,
    time: $("f-time").value,
    from: $("f-from").value,
    to: $("f-to").value,
  };
}

function applyFilters() {
  readFilters();
  list.page = 1;
  list.selected.clear();
  loadList();
}

export function wireList() {
  $("filters").addEventListener("submit", (e) => {
    e.preventDefault();
    applyFilters();
  });
  for (const id of ["f-state", "f-result", "f-type"]) $(id).addEventListener("change", applyFilters);
  $("f-time").addEventListener("change", () => {
    const custom = $("f-time").value === "custom";
    $("f-custom").hidden = !custom;
    $("f-custom-to").hidden = !custom;
    if (!custom) applyFilters();
  });
  for (const id of ["f-from", "f-to"]) $(id).addEventListener("change", applyFilters);
  $("f-reset").addEventListener("click", () => {
    $("filters").reset();
    $("f-custom").hidden = true;
    $("f-custom-to").hidden = true;
    applyFilters();
  });

  $("refresh").addEventListener("click", loadList);
  $("sort-submitted").addEventListener("click", () => {
    list.asc = !list.asc;
    $("sort-arrow").textContent = list.asc ? "▲" : "▼";
    list.page = 1;
    loadList();
  });
  $("select-all").addEventListener("change", (e) => {
    for (const id of list.rows.keys()) {
      if (e.target.checked) list.selected.add(id);
      else list.selected.delete(id);
    }
    updateSelection();
  });
  $("page-prev").addEventListener("click", () => {
    if (list.page > 1) {
      list.page--;
      list.selected.clear();
      loadList();
    }
  });
  $("page-next").addEventListener("click", () => {
    list.page++;
    list.selected.clear();
    loadList();
  });
  $("page-size").addEventListener("change", () => {
    list.limit = Number($("page-size").value) || 10;
    list.page = 1;
    list.selected.clear();
    loadList();
  });

  $("delete-selected").addEventListener("click", () => {
    openDeleteDialog(list.jobs.filter((j) => list.selected.has(j.job_id)));
  });
}
