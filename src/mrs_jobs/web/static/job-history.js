// A job's history in the detail: every state change from the events route (ours), as a small
// table of time, change, reason and cause. Loaded when asked for, refreshed while it is open.

import { api } from "./api.js";
import { $, el } from "./dom.js";
import { timeNode } from "./format.js";

let open = false;

export function historyOpen() {
  return open;
}

export function resetHistory() {
  open = false;
  $("history-card").hidden = true;
  $("history-body").replaceChildren();
  $("history-status").textContent = "";
  $("detail-history").setAttribute("aria-expanded", "false");
}

// Shows or hides the history; resolves once the events shown are the job's latest.
export async function toggleHistory(id, isCurrent) {
  open = !open;
  $("history-card").hidden = !open;
  $("detail-history").setAttribute("aria-expanded", String(open));
  if (!open) return;
  $("history-status").textContent = "loading…";
  await loadHistory(id, isCurrent);
  if (open) $("history-card").scrollIntoView({ block: "nearest" });
}

// Reads the events again (while the job may still change); dropped once isCurrent() is false.
export async function loadHistory(id, isCurrent) {
  if (!open) return;
  const data = await api("GET", `/${encodeURIComponent(id)}/events`);
  if (!isCurrent() || !open) return;
  const events = Array.isArray(data && data.job_events) ? data.job_events : [];
  $("history-body").replaceChildren(...events.map(eventRow));
  $("history-status").textContent = `${events.length} change${events.length === 1 ? "" : "s"}`;
}

function text(value) {
  return value === null || value === undefined || value === "" ? "—" : String(value);
}

function eventRow(e) {
  const change = e.from_state ? `${e.from_state} → ${text(e.to_state)}` : `→ ${text(e.to_state)}`;
  return el("tr", {},
    el("td", { class: "nowrap" }, timeNode(e.event_time)),
    el("td", { class: "nowrap", text: change }),
    el("td", { text: text(e.reason) }),
    el("td", { class: "mono", text: text(e.caused_by) }));
}
