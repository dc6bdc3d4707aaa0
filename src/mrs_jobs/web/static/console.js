// The MRS jobs console: one page over the public MRS v2 job API.
//
// Rules this file keeps: the token lives in sessionStorage and in the X-Auth-Token header only,
// never in the DOM or a URL; every value that came from the API reaches the page through
// textContent (or a checked attribute), never as HTML; no inline script or style (the page is
// served with CSP default-src 'self').
"use strict";

(() => {
  const LIVE = new Set(["NEW", "NEW_SAVING", "SUBMITTED", "ACCEPTED", "RUNNING"]);
  const SQL_TYPES = new Set(["SparkSql", "SparkScript", "HiveSql", "HiveScript"]);
  const POLL_MS = 2500;
  const LOG_TAIL_BYTES = 65536; // the first read of a log shows its last 64 KiB
  const LOG_CHUNK_BYTES = 262144;
  const LOG_KEEP_CHARS = 524288; // the log view keeps the newest 512 K characters
  const SESSION_KEY = "mrs-jobs-console";
  const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
  const PROJECT_RE = /^[A-Za-z0-9]{1,64}$/;
  const CLUSTER_RE = /^[A-Za-z0-9_-]{1,64}$/;

  const $ = (id) => document.getElementById(id);

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (key === "text") node.textContent = value;
      else if (key === "class") node.className = value;
      else if (key === "on") for (const [ev, fn] of Object.entries(value)) node.addEventListener(ev, fn);
      else if (key in node) node[key] = value;
      else node.setAttribute(key, value);
    }
    for (const child of children) if (child != null) node.append(child);
    return node;
  }

  // ---------------------------------------------------------------- session

  let session = null; // {project, cluster, token}

  function loadSession() {
    try {
      const s = JSON.parse(sessionStorage.getItem(SESSION_KEY) || "null");
      if (s && PROJECT_RE.test(s.project) && CLUSTER_RE.test(s.cluster) && s.token) return s;
    } catch (_err) {
      // A damaged entry is the same as none.
    }
    return null;
  }

  function saveSession(s) {
    sessionStorage.setItem(SESSION_KEY, JSON.stringify(s));
  }

  // ---------------------------------------------------------------- API

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  function apiUrl(path, query) {
    // Relative to the page (/console/), so the console also works behind a path prefix.
    const base = `../v2/${encodeURIComponent(session.project)}/clusters/` +
      `${encodeURIComponent(session.cluster)}/job-executions`;
    const url = new URL(base + path, document.baseURI);
    for (const [key, value] of Object.entries(query || {})) {
      if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, String(value));
    }
    return url;
  }

  // Calls the API; resolves with the parsed JSON (or the Response when raw), rejects with ApiError.
  async function api(method, path, { query, body, raw } = {}) {
    if (!session) throw new ApiError(0, "", "Not signed in.");
    let res;
    try {
      res = await fetch(apiUrl(path, query), {
        method,
        headers: {
          "X-Auth-Token": session.token,
          "Content-Type": "application/json",
          Accept: "application/json",
        },
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

  function errorText(err) {
    if (err instanceof ApiError) return err.code ? `${err.code}: ${err.message}` : err.message;
    return String(err && err.message ? err.message : err);
  }

  // ---------------------------------------------------------------- banner

  let bannerTimer = 0;

  function showBanner(text, kind) {
    clearTimeout(bannerTimer);
    const banner = $("banner");
    banner.className = kind === "info" ? "banner info" : "banner";
    banner.setAttribute("role", kind === "info" ? "status" : "alert");
    $("banner-text").textContent = text;
    banner.hidden = false;
    if (kind === "info") bannerTimer = setTimeout(hideBanner, 6000);
  }

  function hideBanner() {
    clearTimeout(bannerTimer);
    $("banner").hidden = true;
  }

  // The one place API failures land: 401 ends the session, the rest go to the banner.
  function handleError(err) {
    if (err instanceof ApiError && err.status === 401) {
      signOut(`Signed out: the token was refused (${errorText(err)}).`);
      return;
    }
    showBanner(errorText(err), "error");
  }

  // ---------------------------------------------------------------- formatting

  function pad(n) {
    return String(n).padStart(2, "0");
  }

  function fmtTime(ms) {
    const n = Number(ms);
    if (!n) return "—";
    const d = new Date(n);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
      `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }

  function fmtDuration(ms) {
    let s = Math.floor(Number(ms) / 1000);
    if (!(s > 0)) return Number(ms) > 0 ? "<1s" : "—";
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    s %= 60;
    return h ? `${h}h ${m}m ${s}s` : m ? `${m}m ${s}s` : `${s}s`;
  }

  function fmtBytes(n) {
    if (n < 1024) return `${n} B`;
    if (n < 1048576) return `${(n / 1024).toFixed(1)} KiB`;
    return `${(n / 1048576).toFixed(1)} MiB`;
  }

  function stateClass(state) {
    if (LIVE.has(state)) return "live";
    return { FINISHED: "ok", FAILED: "bad", KILLED: "killed" }[state] || "";
  }

  function resultClass(result) {
    return { SUCCEEDED: "ok", FAILED: "bad", KILLED: "killed" }[result] || "";
  }

  function progressOf(job) {
    const p = Math.round(Number(job.job_progress) || 0);
    return Math.max(0, Math.min(100, p));
  }

  function stateCell(job) {
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

  // ---------------------------------------------------------------- views

  let view = ""; // "signin" | "list" | "detail"

  function showView(name) {
    view = name;
    $("signin-view").hidden = name !== "signin";
    $("jobs-view").hidden = name !== "list";
    $("detail-view").hidden = name !== "detail";
  }

  function route() {
    stopPolling();
    if (!session) {
      $("where").hidden = true;
      $("sign-out").hidden = true;
      showView("signin");
      return;
    }
    $("where-project").textContent = session.project;
    $("where-cluster").textContent = session.cluster;
    $("where").hidden = false;
    $("sign-out").hidden = false;
    const m = /^#\/jobs\/([^/?#]+)$/.exec(location.hash);
    if (m) openDetail(decodeURIComponent(m[1]));
    else openList();
  }

  function stopPolling() {
    clearTimeout(list.timer);
    clearTimeout(detail.timer);
    list.seq++;
    detail.seq++;
  }

  // ---------------------------------------------------------------- sign-in / out

  async function onSignIn(event) {
    event.preventDefault();
    const project = $("signin-project").value.trim();
    const cluster = $("signin-cluster").value.trim();
    const token = $("signin-token").value.trim();
    if (!PROJECT_RE.test(project)) return showBanner("Project ID: 1-64 letters or digits.");
    if (!CLUSTER_RE.test(cluster)) return showBanner("Cluster ID: 1-64 of A-Z a-z 0-9 _ -.");
    if (!token) return showBanner("Enter a token.");
    $("signin-submit").disabled = true;
    session = { project, cluster, token };
    try {
      await api("GET", "", { query: { limit: 1 } }); // proves the token, project and cluster
    } catch (err) {
      session = null;
      showBanner(`Sign-in failed: ${errorText(err)}`);
      return;
    } finally {
      $("signin-submit").disabled = false;
    }
    saveSession(session);
    $("signin-token").value = "";
    hideBanner();
    resetListState();
    if (location.hash) location.hash = "";
    else route();
  }

  function signOut(message) {
    sessionStorage.removeItem(SESSION_KEY);
    session = null;
    stopPolling();
    for (const dlg of [$("delete-dialog"), $("kill-dialog")]) if (dlg.open) dlg.close();
    resetListState();
    $("signin-token").value = "";
    if (message) showBanner(message);
    else hideBanner();
    if (location.hash) location.hash = "";
    else route();
  }

  // ---------------------------------------------------------------- the list

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

  function resetListState() {
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

  function listQuery() {
    const f = list.filters;
    const q = { limit: list.limit, offset: list.page, sort_by: list.asc ? "asc" : "desc" };
    const search = f.search.trim();
    if (search) {
      if (UUID_RE.test(search)) q.job_id = search;
      else q.job_name = search;
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

  function openList() {
    showView("list");
    loadList();
  }

  async function loadList() {
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
    if (live && view === "list" && session) {
      list.timer = setTimeout(() => {
        if (document.hidden) scheduleList();
        else loadList();
      }, POLL_MS);
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
    const check = el("input", {
      type: "checkbox", class: "row-check", "aria-label": `Select job ${name || id}`,
      on: { change: (e) => toggleSelected(id, e.target.checked) },
    });
    const tr = el("tr", { "data-job-id": id },
      el("td", { class: "col-check" }, check),
      el("td", {},
        el("a", { class: "job-name", href: `#/jobs/${encodeURIComponent(id)}`, text: name || id }),
        el("span", { class: "job-id mono", text: id })),
      el("td", { text: job.user || "" }),
      el("td", { text: job.job_type || "" }),
      el("td", { class: "col-state" }, stateCell(job)),
      el("td", {}, el("span", { class: `result ${resultClass(job.job_result)}`, text: job.job_result || "" })),
      el("td", { class: "nowrap", text: fmtTime(job.submitted_time) }),
      el("td", { class: "nowrap", text: fmtTime(job.finished_time) }),
      el("td", { class: "col-actions" },
        el("div", { class: "actions" },
          el("button", {
            type: "button", class: "btn-link danger row-kill", text: "Kill", disabled: !live,
            title: live ? "Kill this job" : "Only live jobs can be killed",
            on: { click: () => openKillDialog(job) },
          }),
          el("button", {
            type: "button", class: "btn-link danger row-delete", text: "Delete",
            on: { click: () => openDeleteDialog([job]) },
          }))));
    tr._check = check;
    return tr;
  }

  function renderList() {
    const rows = new Map();
    const trs = list.jobs.map((job) => {
      const sig = rowSignature(job);
      const old = list.rows.get(job.job_id);
      // Unchanged rows are kept as they are, so polling does not steal focus or hover.
      const tr = old && old.sig === sig ? old.tr : buildRow(job);
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

  // ---------------------------------------------------------------- delete dialog

  let pendingDelete = [];

  function openDeleteDialog(jobs) {
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
    for (const id of ids) list.selected.delete(id);
    showBanner(`Deleted ${ids.length} job${ids.length === 1 ? "" : "s"}.`, "info");
    if (view === "detail" && ids.includes(detail.id)) location.hash = "";
    else if (view === "list") loadList();
  }

  // ---------------------------------------------------------------- kill dialog

  let pendingKill = null;

  function openKillDialog(job) {
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
    if (view === "list") loadList();
    else if (view === "detail") pollDetail();
  }

  // ---------------------------------------------------------------- detail

  const detail = {
    id: "",
    job: null,
    kind: "stdout",
    next: null, // the log offset to read from; null = not read yet (read the tail)
    start: 0,
    text: "",
    decoder: null,
    sqlDone: false,
    seq: 0,
    timer: 0,
  };

  function openDetail(id) {
    showView("detail");
    detail.id = id;
    detail.job = null;
    detail.sqlDone = false;
    $("detail-title").textContent = id;
    $("detail-state").textContent = "";
    $("detail-state").className = "badge";
    $("detail-kill").hidden = true;
    $("detail-fields").replaceChildren();
    $("sql-card").hidden = true;
    $("sql-results").replaceChildren();
    resetLog("stdout");
    pollDetail();
  }

  function resetLog(kind) {
    detail.kind = kind;
    detail.next = null;
    detail.start = 0;
    detail.text = "";
    detail.decoder = new TextDecoder("utf-8");
    $("log").textContent = "";
    $("log-status").textContent = "";
    $("log-stdout").setAttribute("aria-pressed", String(kind === "stdout"));
    $("log-stderr").setAttribute("aria-pressed", String(kind === "stderr"));
  }

  // Reads the job, then its log; repeats while the job is live.
  async function pollDetail() {
    clearTimeout(detail.timer);
    const seq = ++detail.seq;
    let live = false;
    try {
      const data = await api("GET", `/${encodeURIComponent(detail.id)}`);
      if (seq !== detail.seq) return;
      const job = data.job_detail;
      detail.job = job;
      live = LIVE.has(job.job_state);
      renderDetail(job);
      await readLog(seq);
      if (seq !== detail.seq) return;
      if (!live && SQL_TYPES.has(job.job_type) && !detail.sqlDone) await loadSql(seq);
    } catch (err) {
      if (seq !== detail.seq) return;
      if (err instanceof ApiError && err.code === "0176") {
        $("detail-kill").hidden = true;
        $("log-status").textContent = "";
        showBanner(`${errorText(err)} (it may have been deleted)`);
        return;
      }
      handleError(err);
      live = true; // try again
    }
    if (seq === detail.seq && live && view === "detail" && session) {
      detail.timer = setTimeout(() => (document.hidden ? null : pollDetail()), POLL_MS);
    }
  }

  function renderDetail(job) {
    const live = LIVE.has(job.job_state);
    $("detail-title").textContent = job.job_name || job.job_id;
    $("detail-state").textContent = job.job_state;
    $("detail-state").className = `badge ${stateClass(job.job_state)}`;
    $("detail-kill").hidden = !live;
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
      ["Queue", job.queue],
      ["Duration", fmtDuration(job.elapsed_time)],
      ["Submitted", fmtTime(job.submitted_time)],
      ["Started", fmtTime(job.started_time)],
      ["Finished", fmtTime(job.finished_time)],
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

  async function readLog(seq) {
    const kind = detail.kind;
    for (let round = 0; round < 8; round++) {
      const first = detail.next === null;
      const res = await api("GET", `/${encodeURIComponent(detail.id)}/log`, {
        query: { type: kind, offset: first ? -LOG_TAIL_BYTES : detail.next, limit: LOG_CHUNK_BYTES },
        raw: true,
      });
      const bytes = await res.arrayBuffer();
      if (seq !== detail.seq || kind !== detail.kind) return;
      const start = Number(res.headers.get("X-Log-Offset")) || 0;
      const next = Number(res.headers.get("X-Log-Next-Offset")) || 0;
      const size = Number(res.headers.get("X-Log-Size")) || 0;
      if (!first && size < detail.next) {
        resetLog(kind); // the file shrank: it was replaced, read it again from its tail
        continue;
      }
      if (first) detail.start = start;
      appendLog(detail.decoder.decode(new Uint8Array(bytes), { stream: true }));
      detail.next = next;
      const from = detail.start ? `, from byte ${detail.start}` : "";
      $("log-status").textContent = size ? `${fmtBytes(size)}${from}` : "no output yet";
      if (next >= size || bytes.byteLength === 0) return;
    }
  }

  function appendLog(text) {
    if (!text) return;
    const pre = $("log");
    const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 8;
    detail.text += text;
    if (detail.text.length > LOG_KEEP_CHARS) detail.text = detail.text.slice(-LOG_KEEP_CHARS);
    pre.textContent = detail.text;
    if (atBottom) pre.scrollTop = pre.scrollHeight;
  }

  async function switchLog(kind) {
    if (kind === detail.kind || view !== "detail") return;
    resetLog(kind);
    const seq = detail.seq;
    try {
      await readLog(seq);
    } catch (err) {
      handleError(err);
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

  function sqlTable(key, rows) {
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

  // ---------------------------------------------------------------- wiring

  function wire() {
    $("signin-form").addEventListener("submit", onSignIn);
    $("sign-out").addEventListener("click", () => signOut(""));
    $("banner-close").addEventListener("click", hideBanner);

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

    $("detail-back").addEventListener("click", (e) => {
      e.preventDefault();
      location.hash = "";
    });
    $("detail-kill").addEventListener("click", () => detail.job && openKillDialog(detail.job));
    $("log-stdout").addEventListener("click", () => switchLog("stdout"));
    $("log-stderr").addEventListener("click", () => switchLog("stderr"));

    window.addEventListener("hashchange", route);
    document.addEventListener("visibilitychange", () => {
      if (document.hidden || !session) return;
      if (view === "list") loadList();
      else if (view === "detail" && detail.job && LIVE.has(detail.job.job_state)) pollDetail();
    });

    // A link may prefill the project and cluster (never the token).
    const params = new URLSearchParams(location.search);
    if (PROJECT_RE.test(params.get("project_id") || "")) $("signin-project").value = params.get("project_id");
    if (CLUSTER_RE.test(params.get("cluster_id") || "")) $("signin-cluster").value = params.get("cluster_id");
  }

  wire();
  session = loadSession();
  route();
})();
