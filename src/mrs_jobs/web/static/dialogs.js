// The two confirmations that change jobs: delete (typed DELETE) and kill.
//
// What happens after a change (reload the list, poll the job) is handed in by the boot module
// through wireDialogs, so the dialogs do not depend on the views that open them.

import { ApiError, api, errorText } from "./api.js";
import { $, el } from "./dom.js";
import { handleError, showBanner } from "./page.js";

let afterKill = () => {};
let afterDelete = (_ids) => {};

let pendingDelete = [];

export function openDeleteDialog(jobs) {
  pendingDelete = jobs.map((j) => ({ id: String(j.job_id), name: String(j.job_name || "") }));
  if (!pendingDelete.length) return;
  const n = pendingDelete.length;
  $("delete-summary").textContent = `Delete ${n} job${n === 1 ? "" : "s"}?`;
  const items = pendingDelete.slice(0, 20).map((j) =>
    el("li", {}, el("span", { text: j.name }), " ", el("span", { class: "muted mono", text: j.id })));
  if (n > 20) items.push(el("li", { class: "muted", text: `…and ${n - 20} more` }));
  $("delete-list").replaceChildren(...items);
  $("delete-confirm-input").value = "";
  $("delete-confirm").disabled = true;
  $("delete-error").hidden = true;
  $("delete-cancel").disabled = false;
  $("delete-dialog").showModal();
  $("delete-confirm-input").focus();
}

async function onDeleteConfirm(event) {
  event.preventDefault();
  if ($("delete-confirm-input").value !== "DELETE" || !pendingDelete.length) return;
  const ids = pendingDelete.map((j) => j.id);
  $("delete-confirm").disabled = true;
  $("delete-cancel").disabled = true;
  try {
    await api("POST", "/batch-delete", { body: { job_id_list: ids } });
  } catch (err) {
    $("delete-cancel").disabled = false;
    $("delete-confirm").disabled = false;
    if (err instanceof ApiError && err.status === 401) return handleError(err);
    $("delete-error").textContent = errorText(err);
    $("delete-error").hidden = false;
    return;
  }
  $("delete-dialog").close();
  pendingDelete = [];
  showBanner(`Deleted ${ids.length} job${ids.length === 1 ? "" : "s"}.`, "info");
  afterDelete(ids);
}

let pendingKill = null;

export function openKillDialog(job) {
  pendingKill = { id: String(job.job_id), name: String(job.job_name || "") };
  $("kill-summary").replaceChildren(
    "Kill job ", el("strong", { text: pendingKill.name || pendingKill.id }), " (",
    el("span", { class: "mono", text: pendingKill.id }), ")? Its engine process is stopped.");
  $("kill-error").hidden = true;
  $("kill-confirm").disabled = false;
  $("kill-dialog").showModal();
  $("kill-confirm").focus();
}

async function onKillConfirm(event) {
  event.preventDefault();
  if (!pendingKill) return;
  const job = pendingKill;
  $("kill-confirm").disabled = true;
  try {
    await api("POST", `/${encodeURIComponent(job.id)}/kill`);
  } catch (err) {
    $("kill-confirm").disabled = false;
    if (err instanceof ApiError && err.status === 401) return handleError(err);
    $("kill-error").textContent = errorText(err);
    $("kill-error").hidden = false;
    return;
  }
  $("kill-dialog").close();
  pendingKill = null;
  showBanner(`Kill requested for ${job.name || job.id}.`, "info");
  afterKill();
}

export function closeDialogs() {
  for (const dlg of [$("delete-dialog"), $("kill-dialog")]) if (dlg.open) dlg.close();
}

// hooks: {afterKill(), afterDelete(ids)}, called once the API accepted the change.
export function wireDialogs(hooks) {
  afterKill = hooks.afterKill;
  afterDelete = hooks.afterDelete;
  $("delete-confirm-input").addEventListener("input", () => {
    $("delete-confirm").disabled = $("delete-confirm-input").value !== "DELETE";
  });
  $("delete-form").addEventListener("submit", onDeleteConfirm);
  $("delete-cancel").addEventListener("click", () => $("delete-dialog").close());
  $("delete-dialog").addEventListener("cancel", (e) => {
    if ($("delete-cancel").disabled) e.preventDefault(); // a delete is in flight
  });

  $("kill-form").addEventListener("submit", onKillConfirm);
  $("kill-cancel").addEventListener("click", () => $("kill-dialog").close());
}
