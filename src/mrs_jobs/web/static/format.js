// How job values are shown: states, progress, times and sizes.

import { el } from "./dom.js";

// Jobs in these states still change, so the views showing them refresh every POLL_MS.
export const LIVE = new Set(["NEW", "NEW_SAVING", "SUBMITTED", "ACCEPTED", "RUNNING"]);
export const POLL_MS = 2500;
// With the event stream connected (live.js) a change refreshes the list at once; it then
// polls only this often, for progress, which is not an event. (A job's page keeps POLL_MS:
// its log grows between events.)
export const LIVE_POLL_MS = 10000;

function pad(n) {
  return String(n).padStart(2, "0");
}

// The zone a time is shown in: "UTC", or the browser's offset from it ("UTC+05:30"), which
// unlike an abbreviation ("CST") names one zone only.
export function fmtZone(d) {
  const off = -d.getTimezoneOffset();
  if (!off) return "UTC";
  const a = Math.abs(off);
  return `UTC${off < 0 ? "-" : "+"}${pad(Math.floor(a / 60))}:${pad(a % 60)}`;
}

// "2026-12-07 06:40:12 UTC+01:00": the browser's local time, with its zone.
export function fmtTime(ms) {
  const n = Number(ms);
  if (!n) return "—";
  const d = new Date(n);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())} ${fmtZone(d)}`;
}

// A time as a node: the full text, the UTC instant as its tooltip; it may wrap only between
// the date, the clock and the zone, so a narrow table keeps each readable.
export function timeNode(ms) {
  const text = fmtTime(ms);
  if (text === "—") return el("span", { class: "time", text });
  const parts = text.split(" ");
  const node = el("span", { class: "time", title: new Date(Number(ms)).toISOString() });
  parts.forEach((part, i) => {
    if (i) node.append(" ");
    node.append(el("span", { class: "time-part", text: part }));
  });
  return node;
}

export function fmtDuration(ms) {
  let s = Math.floor(Number(ms) / 1000);
  if (!(s > 0)) return Number(ms) > 0 ? "<1s" : "—";
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  s %= 60;
  if (d) return `${d}d ${h}h ${m}m`;
  return h ? `${h}h ${m}m ${s}s` : m ? `${m}m ${s}s` : `${s}s`;
}

export function fmtBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1048576) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1048576).toFixed(1)} MiB`;
}

export function stateClass(state) {
  if (LIVE.has(state)) return "live";
  return { FINISHED: "ok", FAILED: "bad", KILLED: "killed" }[state] || "";
}

export function resultClass(result) {
  return { SUCCEEDED: "ok", FAILED: "bad", KILLED: "killed" }[result] || "";
}

function progressOf(job) {
  const p = Math.round(Number(job.job_progress) || 0);
  return Math.max(0, Math.min(100, p));
}

export function stateCell(job) {
  const pct = progressOf(job);
  return el("div", {},
    el("span", { class: `badge ${stateClass(job.job_state)}`, text: job.job_state || "" }),
    el("div", { class: "progress" },
      el("progress", {
        max: 100, value: pct, class: resultClass(job.job_result),
        "aria-label": `Progress of ${job.job_name || job.job_id}`,
      }),
      el("span", { class: "progress-value", text: `${pct}%` })));
}
