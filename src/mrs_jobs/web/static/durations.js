// How long a job has run: the API's elapsed_time, counted up on the page while the job runs
// (from the answer's elapsed time and the page's own clock, so the browser's clock may be off).

import { el } from "./dom.js";
import { fmtDuration } from "./format.js";

const TICK_MS = 1000;
const running = new Set(); // the duration nodes of RUNNING jobs on the page
let timer = 0;

// A node showing the job's duration; feed it newer answers with setDuration.
export function durationNode(job) {
  const node = el("span", { class: "duration" });
  setDuration(node, job);
  return node;
}

export function setDuration(node, job) {
  node._elapsed = Math.max(0, Number(job.elapsed_time) || 0);
  node._since = performance.now();
  node.textContent = fmtDuration(node._elapsed);
  if (job.job_state === "RUNNING" && Number(job.started_time) > 0) {
    running.add(node);
    if (!timer) timer = setInterval(tick, TICK_MS);
  } else {
    running.delete(node);
  }
}

function tick() {
  for (const node of running) {
    if (!node.isConnected) running.delete(node); // its row or view is gone
    else node.textContent = fmtDuration(node._elapsed + (performance.now() - node._since));
  }
  if (!running.size) {
    clearInterval(timer);
    timer = 0;
  }
}
