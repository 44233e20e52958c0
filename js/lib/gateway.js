// The gateway as the page reaches it: the Jupyter server extension at {baseUrl}interactions/,
// same origin, authenticated by the server's cookie (plus the XSRF header on POST). Streams
// are SSE read with fetch, resumed with last_event_id after a drop.

const API = "v1beta";
// Browsers open at most 6 HTTP/1.1 connections per host; JupyterLab needs some for itself,
// so all views of a page share at most this many open streams (visible views first).
export const MAX_STREAMS = 4;

function pageConfig(doc) {
  const el = doc && doc.getElementById && doc.getElementById("jupyter-config-data");
  if (!el) return null;
  try {
    return JSON.parse(el.textContent || "{}");
  } catch {
    return null;
  }
}

/** The page's Jupyter base URL (from jupyter-config-data), or null outside Jupyter pages. */
export function pageBaseUrl(doc = globalThis.document) {
  const config = pageConfig(doc);
  return config && typeof config.baseUrl === "string" ? config.baseUrl : null;
}

/** The server token the page itself uses for API calls, when the page has one (JupyterLab
 * sends it as `Authorization: token ...`, as we do; otherwise the cookie authenticates). */
function pageToken(doc) {
  const config = pageConfig(doc);
  return config && typeof config.token === "string" && config.token ? config.token : null;
}

function xsrfToken(doc) {
  const match = /(?:^|;\s*)_xsrf=([^;]*)/.exec((doc && doc.cookie) || "");
  return match ? decodeURIComponent(match[1]) : null;
}

export class GatewayError extends Error {
  constructor(message, status = 0) {
    super(message);
    this.status = status;
  }
}

/** Parse SSE text incrementally: returns [events, rest]. `[DONE]` yields {done: true}. */
export function parseSse(buffer) {
  const events = [];
  let rest = buffer.replaceAll("\r\n", "\n");
  let cut;
  while ((cut = rest.indexOf("\n\n")) >= 0) {
    const frame = rest.slice(0, cut);
    rest = rest.slice(cut + 2);
    const data = frame.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).replace(/^ /, "")).join("\n");
    if (!data) continue;
    if (data === "[DONE]") events.push({ done: true });
    else events.push(JSON.parse(data));
  }
  return [events, rest];
}

export class BrowserGateway {
  /** `root`: the gateway's URL path, e.g. "/user/me/interactions/". */
  constructor(root, { fetch = globalThis.fetch.bind(globalThis), doc = globalThis.document } = {}) {
    this.root = root.endsWith("/") ? root : `${root}/`;
    this.fetch = fetch;
    this.doc = doc;
  }

  async request(path, { method = "GET", body, signal, raw = false } = {}) {
    const headers = {};
    const token = pageToken(this.doc);
    if (token) headers.Authorization = `token ${token}`;
    if (method !== "GET") {
      const xsrf = xsrfToken(this.doc);
      if (xsrf) headers["X-XSRFToken"] = xsrf;
    }
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await this.fetch(this.root + path, {
        method, headers, signal, credentials: "same-origin",
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (error) {
      if (error && error.name === "AbortError") throw error;
      throw new GatewayError(`the gateway is unreachable: ${error && error.message}`);
    }
    if (!response.ok) {
      let message = `${response.status} ${response.statusText}`;
      try {
        const payload = await response.json();
        if (payload && payload.error && payload.error.message) message = payload.error.message;
      } catch { /* not JSON */ }
      throw new GatewayError(message, response.status);
    }
    return raw ? response : response.json();
  }

  /** True if the page may use the gateway: an authenticated read answers (a 404 for an id
   * that cannot exist), not a 401/403; the open health route alone would not tell. */
  async health() {
    try {
      const answer = await this.request("health");
      if (!answer || answer.ok === false || answer.name !== "jupyter-interactions") return false;
      await this.get("ji-page-probe");
      return true;
    } catch (error) {
      return error instanceof GatewayError && error.status === 404;
    }
  }

  get(id) {
    return this.request(`${API}/interactions/${encodeURIComponent(id)}`);
  }

  cancel(id) {
    return this.request(`${API}/interactions/${encodeURIComponent(id)}/cancel`, { method: "POST", body: {} });
  }

  async files(env, path = "") {
    const listing = await this.request(
      `${API}/environments/${encodeURIComponent(env)}/files/${encodePath(path)}?recursive=true&page_size=1000`);
    return listing.files || [];
  }

  async read(env, path) {
    const response = await this.request(
      `${API}/environments/${encodeURIComponent(env)}/files/${encodePath(path)}?alt=media`, { raw: true });
    return new Uint8Array(await response.arrayBuffer());
  }

  /** Read an interaction's events from after `lastEventId`, calling `onEvent(event)` for
   * each; resolves when the stream ends ([DONE]), rejects on a drop or an HTTP error. */
  stream(id, { lastEventId = null, onEvent, signal } = {}) {
    return this.events(`${API}/interactions/${encodeURIComponent(id)}?stream=true`, { lastEventId, onEvent, signal });
  }

  /** A session's job changes (`session.jobs`, then `job.updated`), as `stream` reads them. */
  sessionEvents(key, { lastEventId = null, onEvent, signal } = {}) {
    return this.events(`${API}/sessions/${encodeURIComponent(key)}/events`, { lastEventId, onEvent, signal });
  }

  /** Read an SSE route from after `lastEventId` (the `last_event_id` query parameter). */
  async events(path, { lastEventId = null, onEvent, signal } = {}) {
    const resume = lastEventId ? `${path.includes("?") ? "&" : "?"}last_event_id=${encodeURIComponent(lastEventId)}` : "";
    const response = await this.request(path + resume, { raw: true, signal });
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw new GatewayError("the stream ended before [DONE]");
      buffer += decoder.decode(value, { stream: true });
      const [events, rest] = parseSse(buffer);
      buffer = rest;
      for (const event of events) {
        if (event.done) return;
        onEvent(event);
      }
    }
  }
}

function encodePath(path) {
  return String(path || "").replace(/^\/+/, "").split("/").map(encodeURIComponent).join("/");
}

/** Follow one interaction to its end, resuming from the last event after each drop (up to
 * `retries` in a row, backing off). Calls `onEvent`; returns when the stream is done. */
export function follow(gateway, id, { run, onEvent, signal, retries = 5, sleep = defaultSleep }) {
  return resumable((lastEventId, onEach) => gateway.stream(id, { lastEventId, signal, onEvent: onEach }), {
    last: () => run.lastEventId, onEvent, retries, sleep,
  });
}

/** Read `open(lastEventId, onEvent)` until it ends, re-opening it after the last event seen
 * when it drops (up to `retries` drops in a row, backing off); HTTP 4xx and aborts end it. */
export async function resumable(open, { last, onEvent, retries = 5, sleep = defaultSleep }) {
  let drops = 0;
  for (;;) {
    try {
      await open(last(), (event) => {
        drops = 0;
        onEvent(event);
      });
      return;
    } catch (error) {
      if (error && error.name === "AbortError") throw error;
      if (error instanceof GatewayError && error.status >= 400 && error.status < 500) throw error;
      drops += 1;
      if (drops > retries) throw error;
      await sleep(Math.min(200 * drops, 2000));
    }
  }
}

function defaultSleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A page-wide limit on open streams: `acquire()` resolves with a release function. */
export class StreamSlots {
  constructor(size = MAX_STREAMS) {
    this.size = size;
    this.busy = 0;
    this.waiting = [];
  }

  acquire() {
    return new Promise((resolve) => {
      const grant = () => {
        this.busy += 1;
        let released = false;
        resolve(() => {
          if (released) return;
          released = true;
          this.busy -= 1;
          const next = this.waiting.shift();
          if (next) next();
        });
      };
      if (this.busy < this.size) grant();
      else this.waiting.push(grant);
    });
  }
}

/** The one StreamSlots of this page (every widget's module instance shares it). */
export function pageSlots() {
  const shared = (globalThis.__jupyterInteractions ||= {});
  return (shared.slots ||= new StreamSlots());
}
