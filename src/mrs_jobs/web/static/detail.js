// One job: its fields, its log (followed while it runs) and, for SQL jobs, its results.

import { ApiError, api, errorText, getSession, may } from "./api.js";
import { openKillDialog } from "./dialogs.js";
import { $, el } from "./dom.js";
import { durationNode } from "./durations.js";
import { LIVE, POLL_MS, resultClass, stateClass, stateCell, timeNode } from "./format.js";
import { loadHistory, resetHistory, toggleHistory } from "./job-history.js";
import { logKind, readLog, resetLog } from "./job-log.js";
import { chooseLog, hideReason, renderReason } from "./job-reason.js";
import { currentView, handleError, showNotFound, showView } from "./page.js";

const SQL_TYPES = new Set(["SparkSql", "SparkScript", "HiveSql", "HiveScript"]);

const detail = {
  id: "",
  job: null,
  sqlDone: false,
  logChosen: false, // the log to open on was chosen from what the job's logs hold
  logPicked: false, // the reader chose a log: it is never switched for them
  seq: 0,
  timer: 0,
};

export function shownJobId() {
  return detail.id;
}

export function openDetail(id) {
  showView("detail");
  detail.id = id;
  detail.job = null;
  detail.sqlDone = false;
  detail.logChosen = false;
  detail.logPicked = false;
  $("detail-title").textContent = id;
  $("detail-state").textContent = "";
  $("detail-state").className = "badge";
  $("detail-kill").hidden = true;
  $("detail-history").hidden = true;
  hideReason();
  resetHistory();
  $("detail-fields").replaceChildren();
  $("sql-card").hidden = true;
  $("sql-results").replaceChildren();
  resetLog("stdout");
  pollDetail();
}

// Ends polling; an answer still in flight is dropped when it arrives.
export function stopDetail() {
  clearTimeout(detail.timer);
  detail.seq++;
}

// Polls again after the tab comes back, if the job shown may still change.
export function resumeDetail() {
  if (detail.job && LIVE.has(detail.job.job_state)) pollDetail();
}

// Reads the job, then its log; repeats while the job is live.
export async function pollDetail() {
  clearTimeout(detail.timer);
  const seq = ++detail.seq;
  let live = false;
  const current = () => seq === detail.seq;
  try {
    const data = await api("GET", `/${encodeURIComponent(detail.id)}`);
    if (!current()) return;
    const job = data.job_detail;
    const wasLive = detail.job !== null && LIVE.has(detail.job.job_state);
    detail.job = job;
    live = LIVE.has(job.job_state);
    renderDetail(job);
    // Opened, or just ended: open on the log that says what happened.
    if (!detail.logPicked && (!detail.logChosen || (wasLive && !live))) {
      const kind = await chooseLog(detail.id, job);
      if (!current()) return;
      detail.logChosen = true;
      if (kind !== logKind()) resetLog(kind);
    }
    await readLog(detail.id, current);
    if (!current()) return;
    await loadHistory(detail.id, current);
    if (!current()) return;
    if (!live && SQL_TYPES.has(job.job_type) && !detail.sqlDone) await loadSql(seq);
  } catch (err) {
    if (!current()) return;
    if (isMissing(err)) {
      showNotFound(detail.id);
      return;
    }
    handleError(err);
    // Try again, unless the policy refused (403): asking again would only repeat that.
    live = !(err instanceof ApiError && err.status === 403);
  }
  if (seq === detail.seq && live && currentView() === "detail" && getSession()) {
    detail.timer = setTimeout(() => (document.hidden ? null : pollDetail()), POLL_MS);
  }
}

// The job is not (or no longer) there: deleted, of another cluster, or never was.
function isMissing(err) {
  return err instanceof ApiError && err.status === 400 && err.code === "0176";
}

// What the ended job used (ours; docs/api.md "What a job used"); "—" while unknown.
function usageText(value, unit, digits) {
  return typeof value === "number" ? `${value.toFixed(digits)} ${unit}` : "—";
}

function renderDetail(job) {
  const live = LIVE.has(job.job_state);
  $("detail-title").textContent = job.job_name || job.job_id;
  $("detail-state").textContent = job.job_state;
  $("detail-state").className = `badge ${stateClass(job.job_state)}`;
  $("detail-kill").hidden = !live || !may("mrs:job:stop");
  $("detail-history").hidden = false;
  renderReason(job);
  const tracking = String(job.tracking_url || "");
  let trackingNode = document.createTextNode(tracking || "—");
  if (/^https?:\/\//i.test(tracking)) {
    trackingNode = el("a", { href: tracking, text: tracking, target: "_blank", rel: "noopener noreferrer" });
  }
  const fields = [
    ["Job ID", el("span", { class: "mono", text: job.job_id })],
    ["Name", job.job_name],
    ["Type", job.job_type],
    ["User", job.user],
    ["State", stateCell(job)],
    ["Result", el("span", { class: `result ${resultClass(job.job_result)}`, text: job.job_result })],
    ["Attempt", job.attempt],
    ["Queue", job.queue],
    ["Duration", durationNode(job)],
    ["Submitted", timeNode(job.submitted_time)],
    ["Started", timeNode(job.started_time)],
    ["Finished", timeNode(job.finished_time)],
    ["CPU time", usageText(job.cpu_seconds, "s", 1)],
    ["Peak memory", usageText(job.peak_memory_mb, "MB", 0)],
    ["Launcher ID", job.launcher_id],
    ["App ID", job.app_id],
    ["Tracking URL", trackingNode],
    ["Arguments", el("span", { class: "mono", text: job.arguments }), true],
    ["Properties", el("span", { class: "mono", text: job.properties }), true],
  ];
  const nodes = [];
  for (const [label, value, wide] of fields) {
    nodes.push(el("dt", { text: label }));
    const dd = el("dd", { class: wide ? "wide" : "" });
    if (value instanceof Node) dd.append(value);
    else dd.textContent = value === undefined || value === null || value === "" ? "—" : String(value);
    nodes.push(dd);
  }
  $("detail-fields").replaceChildren(...nodes);
}

async function switchLog(kind) {
  if (currentView() !== "detail") return;
  detail.logPicked = true;
  if (kind === logKind()) return;
  resetLog(kind);
  const seq = detail.seq;
  try {
    await readLog(detail.id, () => seq === detail.seq);
  } catch (err) {
    if (isMissing(err)) showNotFound(detail.id);
    else handleError(err);
  }
}

async function showHistory() {
  const seq = detail.seq;
  try {
    await toggleHistory(detail.id, () => seq === detail.seq);
  } catch (err) {
    if (seq !== detail.seq) return;
    if (isMissing(err)) showNotFound(detail.id);
    else handleError(err);
  }
}

async function loadSql(seq) {
  $("sql-card").hidden = false;
  let data;
  try {
    data = await api("GET", `/${encodeURIComponent(detail.id)}/sql-result`);
  } catch (err) {
    if (seq !== detail.seq) return;
    if (err instanceof ApiError && err.status === 400) {
      // 0179 wrong type / 0180 not finished: say so where the results would be.
      $("sql-results").replaceChildren(el("p", { class: "muted", text: errorText(err) }));
      detail.sqlDone = true;
      return;
    }
    throw err;
  }
  if (seq !== detail.seq) return;
  detail.sqlDone = true;
  const results = (data && data.sql_results) || {};
  const keys = Object.keys(results).sort((a, b) => Number(a) - Number(b));
  const blocks = keys.map((key) => sqlTable(key, Array.isArray(results[key]) ? results[key] : []));
  if (!blocks.length) blocks.push(el("p", { class: "muted", text: "No statements." }));
  $("sql-results").replaceChildren(...blocks);
}

// A failed statement's record (the job stopped there): [{result: "failed", message}].
function sqlFailure(rows) {
  const row = rows.length === 1 ? rows[0] : null;
  const keys = Object.keys(row || {});
  return row && row.result === "failed" && keys.every((k) => k === "result" || k === "message")
    ? String(row.message || "")
    : null;
}

function sqlTable(key, rows) {
  const error = sqlFailure(rows);
  if (error !== null) {
    return el("div", { class: "sql-statement sql-failed" },
      el("h3", { text: `Statement ${Number(key) + 1} · failed` }),
      el("pre", { class: "sql-error", text: error || "(no message)" }));
  }
  const columns = [];
  for (const row of rows) {
    for (const col of Object.keys(row || {})) if (!columns.includes(col)) columns.push(col);
  }
  const head = el("tr", {}, ...columns.map((c) => el("th", { text: c })));
  const body = rows.map((row) =>
    el("tr", {}, ...columns.map((c) => el("td", { text: row && row[c] != null ? String(row[c]) : "" }))));
  const label = `Statement ${Number(key) + 1} · ${rows.length} row${rows.length === 1 ? "" : "s"}`;
  return el("div", { class: "sql-statement" },
    el("h3", { text: label }),
    rows.length
      ? el("table", { class: "sql" }, el("thead", {}, head), el("tbody", {}, ...body))
      : el("p", { class: "muted", text: "(no rows)" }));
}

export function wireDetail() {
  for (const back of [$("detail-back"), $("notfound-back")]) {
    back.addEventListener("click", (e) => {
      e.preventDefault();
      location.hash = "";
    });
  }
  $("detail-history").addEventListener("click", showHistory);
  $("detail-kill").addEventListener("click", () => detail.job && openKillDialog(detail.job));
  $("log-stdout").addEventListener("click", () => switchLog("stdout"));
  $("log-stderr").addEventListener("click", () => switchLog("stderr"));
}
