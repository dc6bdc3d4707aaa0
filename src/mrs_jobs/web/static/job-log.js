// The log viewer of the detail view: reads a job's stdout or stderr from its tail, then
// follows it by byte offset, keeping only the newest part on the page.

import { api } from "./api.js";
import { $ } from "./dom.js";
import { fmtBytes } from "./format.js";

const LOG_TAIL_BYTES = 65536; // the first read of a log shows its last 64 KiB
const LOG_CHUNK_BYTES = 262144;
const LOG_KEEP_CHARS = 524288; // the log view keeps the newest 512 K characters

const log = {
  kind: "stdout",
  next: null, // the log offset to read from; null = not read yet (read the tail)
  start: 0,
  text: "",
  decoder: null,
};

export function logKind() {
  return log.kind;
}

export function resetLog(kind) {
  log.kind = kind;
  log.next = null;
  log.start = 0;
  log.text = "";
  log.decoder = new TextDecoder("utf-8");
  $("log").textContent = "";
  $("log-status").textContent = "";
  $("log-stdout").setAttribute("aria-pressed", String(kind === "stdout"));
  $("log-stderr").setAttribute("aria-pressed", String(kind === "stderr"));
}

// Reads what is new in the log of job `id`; an answer is dropped once isCurrent() is false
// (another job was opened or the poll that asked was superseded) or the stream was switched.
export async function readLog(id, isCurrent) {
  const kind = log.kind;
  for (let round = 0; round < 8; round++) {
    const first = log.next === null;
    const res = await api("GET", `/${encodeURIComponent(id)}/log`, {
      query: { type: kind, offset: first ? -LOG_TAIL_BYTES : log.next, limit: LOG_CHUNK_BYTES },
      raw: true,
    });
    const bytes = await res.arrayBuffer();
    if (!isCurrent() || kind !== log.kind) return;
    const start = Number(res.headers.get("X-Log-Offset")) || 0;
    const next = Number(res.headers.get("X-Log-Next-Offset")) || 0;
    const size = Number(res.headers.get("X-Log-Size")) || 0;
    if (!first && size < log.next) {
      resetLog(kind); // the file shrank: it was replaced, read it again from its tail
      continue;
    }
    if (first) log.start = start;
    appendLog(log.decoder.decode(new Uint8Array(bytes), { stream: true }));
    log.next = next;
    const from = log.start ? `, from byte ${log.start}` : "";
    $("log-status").textContent = size ? `${fmtBytes(size)}${from}` : "no output yet";
    if (next >= size || bytes.byteLength === 0) return;
  }
}

function appendLog(text) {
  if (!text) return;
  const pre = $("log");
  const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 8;
  log.text += text;
  if (log.text.length > LOG_KEEP_CHARS) log.text = log.text.slice(-LOG_KEEP_CHARS);
  pre.textContent = log.text;
  if (atBottom) pre.scrollTop = pre.scrollHeight;
}
