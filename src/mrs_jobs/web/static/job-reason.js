// Why a job ended as it did: its diagnostics at the top of the detail, and which of its logs
// to open first (the one that holds the reason, not an empty stdout).

import { api } from "./api.js";
import { $ } from "./dom.js";
import { LIVE } from "./format.js";

const PROBE_BYTES = 65536; // the tail of each log searched for the reason's words
const HEADINGS = { FAILED: "Why it failed", KILLED: "Why it was killed" };

function diagnosticsOf(job) {
  return String((job && job.diagnostics) || "").trim();
}

// The reason box: shown while the job has diagnostics, or when it failed without any.
export function renderReason(job) {
  const text = diagnosticsOf(job);
  const failed = job.job_result === "FAILED";
  const box = $("detail-reason");
  box.hidden = !text && !failed;
  box.className = `reason ${job.job_result === "KILLED" ? "killed" : "bad"}`;
  $("detail-reason-title").textContent = HEADINGS[job.job_result] || "Diagnostics";
  $("detail-reason-text").textContent = text || "The service recorded no reason; see the job's log.";
}

export function hideReason() {
  $("detail-reason").hidden = true;
  $("detail-reason-text").textContent = "";
}

// Reads the end of one log: its size and its last PROBE_BYTES as text.
async function probe(id, kind) {
  const res = await api("GET", `/${encodeURIComponent(id)}/log`, {
    query: { type: kind, offset: -PROBE_BYTES, limit: PROBE_BYTES },
    raw: true,
  });
  const text = new TextDecoder("utf-8").decode(await res.arrayBuffer());
  return { size: Number(res.headers.get("X-Log-Size")) || 0, text };
}

// Distinctive pieces of the engine's words (the lines after the service's own reason), as
// they appear in a log: each line up to a masked value, and its exception name alone.
function clues(diagnostics) {
  const out = [];
  for (const line of diagnostics.split("\n").slice(1)) {
    const plain = line.split("******")[0].replace(/\.\.\.$/, "").trim().slice(0, 80);
    if (plain.length >= 8) out.push(plain);
    const head = plain.split(": ")[0];
    if (head.length >= 8 && head !== plain) out.push(head);
  }
  return out;
}

// Which log the detail opens on. A live job: stdout, followed as it grows. An ended one: the
// log whose end holds the engine's words from diagnostics; else, for a job that did not
// succeed, stderr when it has anything; else whichever is not empty (stdout first).
export async function chooseLog(id, job) {
  if (LIVE.has(job.job_state)) return "stdout";
  const [out, err] = await Promise.all([probe(id, "stdout"), probe(id, "stderr")]);
  for (const clue of clues(diagnosticsOf(job))) {
    const inErr = err.text.includes(clue);
    const inOut = out.text.includes(clue);
    if (inErr !== inOut) return inErr ? "stderr" : "stdout";
    if (inErr) break; // in both: the rules below decide
  }
  if (job.job_result !== "SUCCEEDED" && err.size > 0) return "stderr";
  return out.size === 0 && err.size > 0 ? "stderr" : "stdout";
}
