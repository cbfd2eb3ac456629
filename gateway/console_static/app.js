// The console's pages, routed by the URL fragment: #/ (requests), #/requests/<id>, #/workers.
import { AuthRequired, forgetToken, getJson, request, setToken, token } from "./api.js";
import { renderRequest } from "./request.js";
import { bar, el, ms, since, statusBadge } from "./dom.js";

const main = document.getElementById("main");
const STATUSES = ["", "received", "started", "succeeded", "failed", "cancelled"];
const EXAMPLE = '<vnml><project name="example"><market name="M"><yield>0.0415</yield></market><portfolio>' +
  '<instrument name="I1"><coupon>0.04</coupon><maturityYears>2</maturityYears><notional>1000000</notional>' +
  '</instrument></portfolio><group name="price"><valuation name="bond" ' +
  'use="vn:link(/vnml/project/portfolio, instrument)"><instrument select="."/>' +
  '<market select="/vnml/project/market"/><analytics><price><amount/></price></analytics></valuation>' +
  "</group></project></vnml>";
let cleanup = () => {};
let listTimer = null;

function showTokenForm() {
  const form = document.getElementById("token-form").content.firstElementChild.cloneNode(true);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    setToken(form.elements.token.value.trim());
    route();
  });
  main.replaceChildren(form);
}

function requestRow(item) {
  const duration = item.startedAt ? since(item.startedAt, item.completedAt) : null;
  const state = item.status === "succeeded" ? "done" : item.status === "failed" || item.status === "cancelled" ? "failed" : "";
  return el("tr", { "data-testid": "request-row", "data-request-id": item.requestId },
    el("td", {}, el("a", { href: `#/requests/${encodeURIComponent(item.requestId)}` }, item.requestId)),
    el("td", {}, statusBadge(item.status, "request-status")),
    el("td", {}, item.priority),
    el("td", {}, `${item.groupsCompleted} / ${item.groupCount}`, bar(item.groupsCompleted, item.groupCount, state)),
    el("td", {}, `${item.tasksCompleted} / ${item.tasksTotal}`),
    el("td", {}, ms(since(item.receivedAt))),
    el("td", {}, ms(duration)));
}

async function renderList(params) {
  const status = params.get("status") || "";
  const query = params.get("q") || "";
  const select = el("select", { name: "status", "data-testid": "status-filter" },
    STATUSES.map((s) => el("option", { value: s, selected: s === status }, s || "any status")));
  const search = el("input", { name: "q", value: query, placeholder: "search by id", "data-testid": "id-search" });
  const filters = el("form", { class: "filters", onsubmit: (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    if (select.value) next.set("status", select.value);
    if (search.value.trim()) next.set("q", search.value.trim());
    location.hash = `#/?${next}`;
  } }, select, search, el("button", { type: "submit" }, "Filter"));
  select.addEventListener("change", () => filters.requestSubmit());
  const body = el("tbody");
  const table = el("table", { "data-testid": "request-list" },
    el("thead", {}, el("tr", {}, ["Request", "Status", "Priority", "Groups", "Tasks", "Age", "Duration"]
      .map((h) => el("th", {}, h)))), body);
  const counter = el("p", { class: "muted", "data-testid": "indexed" });
  const xml = el("textarea", { name: "xml", "data-testid": "submit-xml" }, EXAMPLE);
  const outcome = el("p", { "data-testid": "submit-outcome" });
  const submit = el("form", { onsubmit: async (event) => {
    event.preventDefault();
    const response = await request("/valuation?sync=N", { method: "POST", body: xml.value,
      headers: { "Content-Type": "application/xml" } });
    const answer = await response.json();
    if (response.status === 202) location.hash = `#/requests/${encodeURIComponent(answer.requestId)}`;
    else outcome.textContent = `${response.status}: ${answer.message || JSON.stringify(answer)}`;
  } }, xml, el("button", { type: "submit", "data-testid": "submit-button" }, "Submit request"), outcome);
  main.replaceChildren(el("h2", {}, "Recent requests"), filters, counter, table,
    el("section", {}, el("h2", {}, "Submit a request"), submit));
  const refresh = async () => {
    const url = new URLSearchParams({ limit: "100" });
    if (status) url.set("status", status);
    if (query) url.set("q", query);
    const data = await getJson(`/console/api/requests?${url}`);
    body.replaceChildren(...data.requests.map(requestRow));
    counter.textContent = `${data.requests.length} shown of ${data.indexed} recent requests`;
  };
  await refresh();
  listTimer = setInterval(() => refresh().catch(() => {}), 3000);
  return () => clearInterval(listTimer);
}

function table(testid, headings, rows) {
  return el("table", { "data-testid": testid },
    el("thead", {}, el("tr", {}, headings.map((h) => el("th", {}, h)))),
    el("tbody", {}, rows.length ? rows : el("tr", {}, el("td", { colspan: headings.length, class: "muted" }, "none"))));
}

async function renderWorkers() {
  const holder = el("div");
  main.replaceChildren(el("h2", {}, "Workers"), holder);
  const refresh = async () => {
    const data = await getJson("/console/api/workers");
    holder.replaceChildren(
      el("section", {}, el("h3", {}, "Streams"), table("streams", ["Stream", "Group", "Consumers", "Length",
        "Pending", "Lag", "Reclaimed"], data.streams.map((s) => el("tr", {}, [s.stream, s.group, s.consumers,
        s.length, s.pending, s.lag < 0 ? "–" : s.lag, s.reclaimed].map((v) => el("td", {}, v)))))),
      el("section", {}, el("h3", {}, "Consumers"), table("consumers", ["Consumer", "State", "Pending", "Idle"],
        data.consumers.map((c) => el("tr", { "data-testid": "consumer-row", "data-live": c.live },
          [c.name, c.live ? "live" : "quiet", c.pending, ms(c.idleMs)].map((v) => el("td", {}, v)))))),
      el("section", {}, el("h3", {}, "In-flight tasks"), table("in-flight", ["Consumer", "Request", "Group",
        "Task", "Attempt", "Deliveries", "Idle"], data.inFlight.map((t) => el("tr", {}, [t.consumer,
        el("a", { href: `#/requests/${encodeURIComponent(t.requestId)}` }, t.requestId), t.groupIndex, t.taskId,
        t.attempt, t.deliveries, ms(t.idleMs)].map((v) => el("td", {}, v)))))),
      el("section", {}, el("h3", {}, `Dead letters (${data.deadLettersTotal})`), table("dead-letters",
        ["When", "Request", "Group", "Task", "Consumer", "Deliveries", "Error", "Context"],
        data.deadLetters.map((d) => el("tr", {}, [d.deadLetteredAt, d.requestId, d.groupIndex, d.taskId, d.consumer,
          d.deliveries, el("span", { class: "error" }, d.error),
          el("details", {}, el("summary", {}, "fields"), el("pre", {}, JSON.stringify(d.fields, null, 2)))]
          .map((v) => el("td", {}, v)))))));
  };
  await refresh();
  const timer = setInterval(() => refresh().catch(() => {}), 2000);
  return () => clearInterval(timer);
}

async function route() {
  cleanup();
  cleanup = () => {};
  document.getElementById("forget-token").hidden = !token();
  const [path, search] = (location.hash.slice(1) || "/").split("?");
  const params = new URLSearchParams(search || "");
  try {
    const match = path.match(/^\/requests\/(.+)$/);
    if (match) cleanup = await renderRequest(main, decodeURIComponent(match[1]));
    else if (path === "/workers") cleanup = await renderWorkers();
    else cleanup = await renderList(params);
  } catch (error) {
    if (error instanceof AuthRequired) showTokenForm();
    else main.replaceChildren(el("p", { class: "error", "data-testid": "page-error" }, error.message));
  }
}

document.getElementById("forget-token").addEventListener("click", () => { forgetToken(); route(); });
window.addEventListener("hashchange", route);
route();
