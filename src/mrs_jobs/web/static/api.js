// The session (project, cluster, token) and the one function that calls the MRS v2 API.
//
// The token lives in this tab's sessionStorage and in the X-Auth-Token header only, never in
// the DOM or a URL; requests carry no cookie and no referrer.

export const PROJECT_RE = /^[A-Za-z0-9]{1,64}$/;
export const CLUSTER_RE = /^[A-Za-z0-9_-]{1,64}$/;
const SESSION_KEY = "mrs-jobs-console";

let session = null; // {project, cluster, token}
// What the session's credential may do (GET /v2/{project_id}/permissions), read at sign-in and
// when the page loads; null while unknown (the call failed, or an older server has no such
// route): then every control is shown, and the server still refuses what the policy denies.
let permissions = null; // {user_name, policy: {name}, actions: {"mrs:job:stop": bool, ...}}

export function getSession() {
  return session;
}

// Sets the session in memory only; saveSession() keeps it for the tab once it is proven.
export function setSession(s) {
  session = s;
  permissions = null;
}

export function loadSession() {
  try {
    const s = JSON.parse(sessionStorage.getItem(SESSION_KEY) || "null");
    if (s && PROJECT_RE.test(s.project) && CLUSTER_RE.test(s.cluster) && s.token) return s;
  } catch (_err) {
    // A damaged entry is the same as none.
  }
  return null;
}

export function saveSession(s) {
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(s));
}

export function clearSession() {
  sessionStorage.removeItem(SESSION_KEY);
  session = null;
  permissions = null;
}

export function getPermissions() {
  return permissions;
}

// Whether the console shows the controls of ``action`` (an action of docs/api.md
// "## Permissions"): hidden only when the policy is known to deny it.
export function may(action) {
  return !permissions || permissions.actions[action] !== false;
}

// Reads what the session's credential may do. Never rejects: a failure (403 for a policy
// without mrs:credential:get, 404 from an older server, a network error) leaves it unknown.
export async function loadPermissions() {
  const s = session;
  let data = null;
  try {
    data = await api("GET", "", { resource: "permissions", cluster: false });
  } catch (_err) {
    // Unknown: everything is shown.
  }
  if (session !== s) return; // signed out (or in again) meanwhile
  const ok = data && typeof data.actions === "object" && data.actions !== null;
  permissions = ok ? data : null;
}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function apiUrl(path, query, resource, cluster) {
  // Relative to the page (/console/), so the console also works behind a path prefix.
  const scope = cluster ? `clusters/${encodeURIComponent(session.cluster)}/` : "";
  const base = `../v2/${encodeURIComponent(session.project)}/${scope}${resource}`;
  const url = new URL(base + path, document.baseURI);
  for (const [key, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, String(value));
  }
  return url;
}

// Calls the API; resolves with the parsed JSON (or the Response when raw), rejects with ApiError.
// ``resource``: the cluster's collection (job-executions; job-events for the event stream), or
// the project's when ``cluster`` is false (permissions).
export async function api(method, path, {
  query, body, raw, resource = "job-executions", cluster = true, accept = "application/json",
  headers = {}, signal,
} = {}) {
  if (!session) throw new ApiError(0, "", "Not signed in.");
  let res;
  try {
    res = await fetch(apiUrl(path, query, resource, cluster), {
      method,
      headers: {
        ...headers,
        "X-Auth-Token": session.token,
        "Content-Type": "application/json",
        Accept: accept,
      },
      signal,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
      referrerPolicy: "no-referrer",
    });
  } catch (err) {
    throw new ApiError(0, "", `Could not reach the service: ${err.message}`);
  }
  if (!res.ok) {
    let code = "";
    let msg = `HTTP ${res.status} ${res.statusText}`.trim();
    try {
      const data = await res.json();
      if (data && data.error_code !== undefined) code = String(data.error_code);
      if (data && data.error_msg !== undefined) msg = String(data.error_msg);
    } catch (_err) {
      // Not JSON: keep the status line.
    }
    throw new ApiError(res.status, code, msg);
  }
  if (raw) return res;
  const text = await res.text();
  return text ? JSON.parse(text) : null;
}

export function errorText(err) {
  if (err instanceof ApiError) return err.code ? `${err.code}: ${err.message}` : err.message;
  return String(err && err.message ? err.message : err);
}
