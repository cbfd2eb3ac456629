// One request: its groups as a timeline, live over the event stream while it runs, and its outcome.
import { followEvents, getJson, request } from "./api.js";
import { bar, el, ms, since, statusBadge } from "./dom.js";

const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);
const RESPONSE_PREVIEW_CHARS = 65536;

function taskRows(tasks) {
  return tasks.map((t) => el("tr", {}, el("td", {}, t.taskId), el("td", {}, t.status), el("td", {}, t.attempt),
    el("td", {}, ms(t.durationMs)), el("td", {}, t.worker), el("td", { class: "error" }, t.error)));
}

function taskTable(title, tasks, testid) {
  if (!tasks.length) return null;
  return el("details", { open: testid === "troubled" },
    el("summary", {}, `${title} (${tasks.length})`),
    el("table", { "data-testid": testid }, el("thead", {}, el("tr", {},
      ["Task", "Status", "Attempt", "Duration", "Worker", "Error"].map((h) => el("th", {}, h)))),
    el("tbody", {}, taskRows(tasks))));
}

function groupCard(group, live) {
  const completed = live && live.groupIndex === group.groupIndex ? Math.max(live.tasksCompleted, group.tasksCompleted)
    : group.tasksCompleted;
  const expected = live && live.groupIndex === group.groupIndex ? live.tasksExpected || group.tasksExpected
    : group.tasksExpected;
  const state = group.status === "completed" ? "done" : group.status === "failed" ? "failed" : "";
  const took = group.startedAt ? since(group.startedAt, group.completedAt) : null;
  return el("div", { class: "group", "data-testid": "group", "data-group-index": group.groupIndex },
    el("h3", {}, `Group ${group.groupIndex} `, statusBadge(group.status || "waiting", "group-status")),
    el("p", { "data-testid": "group-tasks" }, `${completed} / ${expected} tasks`,
      group.tasksFailed ? `, ${group.tasksFailed} failed` : "", `, ${group.tasksRetried} retried · `,
      `took ${ms(took)} · task time ${ms(group.durationMsTotal)}, slowest ${ms(group.durationMsMax)}`),
    bar(completed, expected, state),
    taskTable("Slowest tasks", group.slowest, "slowest"),
    taskTable("Retries and failures", group.troubled, "troubled"));
}

async function outcome(detail) {
  const status = detail.status;
  if (status.status === "failed") {
    return el("section", {}, el("h3", {}, "Failure"),
      el("pre", { class: "error", "data-testid": "failure-detail" }, JSON.stringify(status.detail, null, 2)));
  }
  if (status.status === "succeeded") {
    const response = await request(`/valuation/${encodeURIComponent(status.requestId)}/results`);
    const text = await response.text();
    return el("section", {}, el("h3", {}, "Response"),
      el("pre", { "data-testid": "response-xml" }, text.slice(0, RESPONSE_PREVIEW_CHARS)));
  }
  return null;
}

export async function renderRequest(main, requestId) {
  const capabilities = await getJson("/console/api/capabilities");
  let detail = await getJson(`/console/api/requests/${encodeURIComponent(requestId)}`);
  let live = null;
  let pending = null;
  const heading = el("div");
  const timeline = el("div", { class: "timeline", "data-testid": "timeline" });
  const ending = el("div");
  const events = el("ol", { "data-testid": "events", class: "muted" });
  const draw = async () => {
    const s = detail.status;
    const cancel = capabilities.cancel && detail.canCancel && !TERMINAL.has(s.status)
      ? el("button", { type: "button", "data-testid": "cancel", onclick: async () => {
        await request(`/valuation/${encodeURIComponent(requestId)}/cancel`, { method: "POST" });
      } }, "Cancel") : null;
    heading.replaceChildren(el("h2", {}, "Request ", el("code", {}, s.requestId), " ",
      statusBadge(s.status, "detail-status")), el("p", {}, `priority ${detail.priority} · `,
      `${s.progress.groupsCompleted} / ${s.groupCount} groups · ${detail.retryCount} retries · received `,
      s.receivedAt || "–", " · took ", ms(s.startedAt ? since(s.startedAt, s.completedAt) : null)), cancel);
    timeline.replaceChildren(...detail.groups.map((g) => groupCard(g, live)));
    if (TERMINAL.has(s.status) && !ending.childElementCount) {
      const node = await outcome(detail);
      if (node) ending.replaceChildren(node);
    }
  };
  const reload = () => {
    if (pending) return;
    pending = setTimeout(async () => {
      pending = null;
      detail = await getJson(`/console/api/requests/${encodeURIComponent(requestId)}`);
      await draw();
    }, 300);
  };
  main.replaceChildren(heading, timeline, ending, el("h3", {}, "Events"), events);
  await draw();
  let follower = null;
  if (!TERMINAL.has(detail.status.status)) {
    follower = followEvents(requestId, (name, data) => {
      if (name === "progress") live = data;
      else events.append(el("li", {}, `${data.timestamp} ${name}`,
        data.groupIndex !== undefined ? ` group ${data.groupIndex}` : ""));
      reload();
    }, (name) => TERMINAL.has(name));
  }
  // A slow safety net next to the stream: a proxy that buffers or drops it cannot freeze the page.
  const poll = setInterval(() => { if (!TERMINAL.has(detail.status.status)) reload(); }, 5000);
  return () => { if (follower) follower.stop(); if (pending) clearTimeout(pending); clearInterval(poll); };
}
