// The page around the views: which view is shown, the banner, and where API failures land.

import { ApiError, errorText, getPermissions, may } from "./api.js";
import { $ } from "./dom.js";

let view = ""; // "signin" | "list" | "detail" | "notfound"

export function currentView() {
  return view;
}

export function showView(name) {
  view = name;
  $("signin-view").hidden = name !== "signin";
  $("jobs-view").hidden = name !== "list";
  $("detail-view").hidden = name !== "detail";
  $("notfound-view").hidden = name !== "notfound";
  document.title = name === "notfound" ? "Job not found · MRS jobs" : "MRS jobs";
}

// The page of a job id that names no job here (deleted, or never was).
export function showNotFound(id) {
  showView("notfound");
  $("notfound-id").textContent = id;
}

let bannerTimer = 0;

export function showBanner(text, kind) {
  clearTimeout(bannerTimer);
  const banner = $("banner");
  banner.className = kind === "info" ? "banner info" : "banner";
  banner.setAttribute("role", kind === "info" ? "status" : "alert");
  $("banner-text").textContent = text;
  banner.hidden = false;
  if (kind === "info") bannerTimer = setTimeout(hideBanner, 6000);
}

export function hideBanner() {
  clearTimeout(bannerTimer);
  $("banner").hidden = true;
}

// Set by the boot module (sign-out), so the views need not import it back.
let onUnauthorized = (_message) => {};

export function whenUnauthorized(fn) {
  onUnauthorized = fn;
}

// The one place API failures land: 401 ends the session, the rest go to the banner.
export function handleError(err) {
  if (err instanceof ApiError && err.status === 401) {
    onUnauthorized(`Signed out: the token was refused (${errorText(err)}).`);
    return;
  }
  showBanner(errorText(err), "error");
}

// Hides (not disables) what the signed-in credential's policy denies: every element marked
// data-action="<action>" in index.html, and the table's selection and actions columns when
// nothing there is allowed; names the user and policy in the top bar. The views ask may()
// for what they build (a row's Kill and Delete, the job page's Kill). Unknown permissions
// (an older server, a policy that may not read its own): everything shown.
export function applyPermissions() {
  for (const node of document.querySelectorAll("[data-action]")) node.hidden = !may(node.dataset.action);
  const canDelete = may("mrs:job:batchDelete");
  $("jobs-table").classList.toggle("no-select", !canDelete);
  $("jobs-table").classList.toggle("no-actions", !canDelete && !may("mrs:job:stop"));
  const p = getPermissions();
  const user = p && typeof p.user_name === "string" ? p.user_name : "";
  const name = p && p.policy && typeof p.policy.name === "string" ? p.policy.name : "";
  $("who").textContent = user && name
    ? `signed in as ${user} — ${name === "custom" ? "custom policy" : name}`
    : "";
  $("who").hidden = !(user && name);
}
