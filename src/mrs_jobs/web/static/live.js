// The cluster's job events as they happen: GET .../job-events as Server-Sent Events, read with
// fetch (an EventSource cannot send the X-Auth-Token header, and the token never goes in a
// URL). While it is connected the views refresh when a job changes, and the list polls only
// slowly, for progress (which is not an event). A stream that ends (the server ends each after
// a few minutes, to check the credential again) or drops reconnects after a second and
// resumes after the last event it gave (Last-Event-ID); a server without the stream (404) is
// left alone: the views keep polling.

import { ApiError, api, getSession } from "./api.js";

const RETRY_MS = 1000;
const live = { ctrl: null, lastId: "", connected: false, onEvent: null, retry: null };

export function isLive() {
  return live.connected;
}

// Starts the stream for the session's cluster unless it runs; onEvent(data) per event.
export function startLive(onEvent) {
  live.onEvent = onEvent;
  if (!live.ctrl) connect();
}

export function stopLive() {
  if (live.ctrl) live.ctrl.abort();
  clearTimeout(live.retry);
  Object.assign(live, { ctrl: null, lastId: "", connected: false });
}

// Splits an SSE text into its events; returns [{id, data}, ...] and the unfinished rest.
export function parseSse(text) {
  const events = [];
  let rest = text.replace(/\r\n/g, "\n");
  let at;
  while ((at = rest.indexOf("\n\n")) >= 0) {
    const fields = { id: "", data: "" };
    for (const line of rest.slice(0, at).split("\n")) {
      if (line.startsWith("id: ")) fields.id = line.slice(4);
      else if (line.startsWith("data: ")) fields.data += line.slice(6);
    }
    if (fields.data) events.push(fields);
    rest = rest.slice(at + 2);
  }
  return { events, rest };
}

async function connect() {
  const ctrl = new AbortController();
  live.ctrl = ctrl;
  let again = true;
  try {
    const resume = live.lastId ? { "Last-Event-ID": live.lastId } : {};
    const res = await api("GET", "", {
      resource: "job-events", query: live.lastId ? {} : { after: "now" }, raw: true,
      accept: "text/event-stream", headers: resume, signal: ctrl.signal,
    });
    live.connected = true;
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      const { events, rest } = parseSse(buffer + value);
      buffer = rest;
      for (const e of events) deliver(e);
    }
  } catch (err) {
    if (err instanceof ApiError && err.status !== 0 && err.status !== 503) again = false;
  }
  live.connected = false;
  if (again && live.ctrl === ctrl && getSession()) live.retry = setTimeout(connect, RETRY_MS);
}

function deliver({ id, data }) {
  live.lastId = id;
  try {
    live.onEvent(JSON.parse(data).data);
  } catch (_err) {
    // One bad event is skipped; the next ones still arrive.
  }
}
