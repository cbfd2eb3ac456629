// Talking to the gateway: the bearer token (kept in sessionStorage, sent as a header, never in a URL)
// and a fetch-based reader of the event stream (EventSource cannot send an Authorization header).
const TOKEN_KEY = "vnml.console.token";

export class AuthRequired extends Error {}

export function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }
export function setToken(value) { sessionStorage.setItem(TOKEN_KEY, value); }
export function forgetToken() { sessionStorage.removeItem(TOKEN_KEY); }

function headers(extra = {}) {
  const sent = { ...extra };
  if (token()) sent.Authorization = `Bearer ${token()}`;
  return sent;
}

export async function request(path, options = {}) {
  const response = await fetch(path, { ...options, headers: headers(options.headers), cache: "no-store" });
  if (response.status === 401) throw new AuthRequired("token required");
  return response;
}

export async function getJson(path) {
  const response = await request(path);
  const body = await response.json();
  if (!response.ok) throw new Error(body.message || `HTTP ${response.status}`);
  return body;
}

function parseBlock(block) {
  const event = { name: "message", id: null, data: "" };
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "event") event.name = value;
    else if (field === "id") event.id = value;
    else if (field === "data") event.data += (event.data ? "\n" : "") + value;
  }
  return event.data ? event : null;
}

// Follows /valuation/{id}/events, reconnecting with Last-Event-ID until the terminal event arrives or
// stop() is called. onEvent(name, data) gets every lifecycle and progress event.
export function followEvents(requestId, onEvent, isTerminal) {
  const controller = new AbortController();
  let lastId = null;
  let stopped = false;
  let failures = 0;
  const run = async () => {
    while (!stopped && failures < 20) {
      try {
        const extra = { Accept: "text/event-stream" };
        if (lastId !== null) extra["Last-Event-ID"] = lastId;
        const response = await fetch(`/valuation/${encodeURIComponent(requestId)}/events`,
          { headers: headers(extra), signal: controller.signal, cache: "no-store" });
        if (!response.ok) return;
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value.replace(/\r\n/g, "\n");
          let cut;
          while ((cut = buffer.indexOf("\n\n")) >= 0) {
            const event = parseBlock(buffer.slice(0, cut));
            buffer = buffer.slice(cut + 2);
            if (!event) continue;
            if (event.id !== null) lastId = event.id;
            failures = 0;
            onEvent(event.name, JSON.parse(event.data));
            if (isTerminal(event.name)) { stopped = true; return; }
          }
        }
      } catch (error) {
        if (stopped || controller.signal.aborted) return;
      }
      failures += 1;
      await new Promise((resolve) => setTimeout(resolve, Math.min(5000, 250 * 2 ** failures)));
    }
  };
  run();
  return { stop() { stopped = true; controller.abort(); } };
}
