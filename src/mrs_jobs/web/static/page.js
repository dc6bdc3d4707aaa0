// The page around the views: which view is shown, the banner, and where API failures land.

import { ApiError, errorText } from "./api.js";
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
