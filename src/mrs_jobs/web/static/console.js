// The MRS jobs console: one page over the public MRS v2 job API. This module boots it: it
// signs in and out, routes between the views and wires what connects them.
//
// Rules every console module keeps: the token lives in sessionStorage and in the X-Auth-Token
// header only, never in the DOM or a URL; every value that came from the API reaches the page
// through textContent (or a checked attribute), never as HTML; no inline script or style (the
// page is served with CSP default-src 'self', and these files are same-origin ES modules).

import {
  CLUSTER_RE, PROJECT_RE, api, clearSession, errorText, getSession, loadPermissions, loadSession,
  saveSession, setSession,
} from "./api.js";
import { closeDialogs, wireDialogs } from "./dialogs.js";
import { $ } from "./dom.js";
import { openDetail, pollDetail, resumeDetail, shownJobId, stopDetail, wireDetail } from "./detail.js";
import { loadList, openList, resetListState, stopList, unselect, wireList } from "./jobs-list.js";
import { startLive, stopLive } from "./live.js";
import {
  applyPermissions, currentView, hideBanner, showBanner, showView, whenUnauthorized,
} from "./page.js";

function route() {
  stopPolling();
  const session = getSession();
  applyPermissions();
  if (!session) {
    stopLive();
    $("where").hidden = true;
    $("sign-out").hidden = true;
    showView("signin");
    return;
  }
  startLive(onJobEvent);
  $("where-project").textContent = session.project;
  $("where-cluster").textContent = session.cluster;
  $("where").hidden = false;
  $("sign-out").hidden = false;
  const m = /^#\/jobs\/([^/?#]+)$/.exec(location.hash);
  if (m) openDetail(decodeURIComponent(m[1]));
  else openList();
}

function stopPolling() {
  stopList();
  stopDetail();
}

// A job of the cluster changed (live.js): the job shown is read again at once; the list, at
// most once a second however many jobs change.
let listSoon = null;
function onJobEvent(data) {
  if (document.hidden) return;
  if (currentView() === "detail" && data.job_id === shownJobId()) pollDetail();
  if (currentView() === "list" && !listSoon) {
    listSoon = setTimeout(() => {
      listSoon = null;
      if (currentView() === "list") loadList();
    }, 1000);
  }
}

async function onSignIn(event) {
  event.preventDefault();
  const project = $("signin-project").value.trim();
  const cluster = $("signin-cluster").value.trim();
  const token = $("signin-token").value.trim();
  if (!PROJECT_RE.test(project)) return showBanner("Project ID: 1-64 letters or digits.");
  if (!CLUSTER_RE.test(cluster)) return showBanner("Cluster ID: 1-64 of A-Z a-z 0-9 _ -.");
  if (!token) return showBanner("Enter a token.");
  $("signin-submit").disabled = true;
  setSession({ project, cluster, token });
  try {
    await api("GET", "", { query: { limit: 1 } }); // proves the token, project and cluster
    await loadPermissions(); // what to hide; never fails (unknown: everything shown)
  } catch (err) {
    setSession(null);
    showBanner(`Sign-in failed: ${errorText(err)}`);
    return;
  } finally {
    $("signin-submit").disabled = false;
  }
  saveSession(getSession());
  $("signin-token").value = "";
  hideBanner();
  resetListState();
  if (location.hash) location.hash = "";
  else route();
}

function signOut(message) {
  clearSession();
  stopLive();
  stopPolling();
  closeDialogs();
  resetListState();
  $("signin-token").value = "";
  if (message) showBanner(message);
  else hideBanner();
  if (location.hash) location.hash = "";
  else route();
}

function wire() {
  $("signin-form").addEventListener("submit", onSignIn);
  $("sign-out").addEventListener("click", () => signOut(""));
  $("banner-close").addEventListener("click", hideBanner);
  whenUnauthorized(signOut);

  wireList();
  wireDialogs({
    afterKill() {
      if (currentView() === "list") loadList();
      else if (currentView() === "detail") pollDetail();
    },
    afterDelete(ids) {
      unselect(ids);
      if (currentView() === "detail" && ids.includes(shownJobId())) location.hash = "";
      else if (currentView() === "list") loadList();
    },
  });
  wireDetail();

  window.addEventListener("hashchange", route);
  document.addEventListener("visibilitychange", () => {
    if (document.hidden || !getSession()) return;
    if (currentView() === "list") loadList();
    else if (currentView() === "detail") resumeDetail();
  });

  // A link may prefill the project and cluster (never the token).
  const params = new URLSearchParams(location.search);
  if (PROJECT_RE.test(params.get("project_id") || "")) $("signin-project").value = params.get("project_id");
  if (CLUSTER_RE.test(params.get("cluster_id") || "")) $("signin-cluster").value = params.get("cluster_id");
}

wire();
setSession(loadSession());
if (getSession()) await loadPermissions();
route();
