// The session (project, cluster, token) and the one function that calls the MRS v2 API.
//
// The token lives in this tab's sessionStorage and in the X-Auth-Token header only, never in
// the DOM or a URL; requests carry no cookie and no referrer.

export const PROJECT_RE = /^[A-Za-z0-9]{1,64}$/;
export const CLUSTER_RE = /^[A-Za-z0-9_-]{1,64}$/;
const SESSION_KEY = "mrs-jobs-console";

let session = null; // {project, cluster, token}

export function getSession() {
  return session;
}

// Sets the session in memory only; saveSession() keeps it for the tab once it is proven.
export function setSession(s) {
  session = s;
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
}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function apiUrl(path, query, resource) {
  // Relative to the page (/console/), so the console also works behind a path prefix.
  const base = `../v2/${encodeURIComponent(session.project)}/clusters/` +
    `${encodeURIComponent(session.cluster)}/${resource}`;
  const url = new URL(base + path, document.baseURI);
  for (const [key, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, String(value));
  }
  return url;
}

// Calls the API; resolves with the parsed JSON (or the Response when raw), rejects with ApiError.
// ``resource``: the cluster's collection (job-executions; job-events for the event stream).
export async function api(method, path, {
  query, body, raw, resource = "job-executions", accept = "application/json", headers = {}, signal,
} = {}) {
  if (!session) throw new ApiError(0, "", "Not signed in.");
  let res;
  try {
    res = await fetch(apiUrl(path, query, resource), {
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
