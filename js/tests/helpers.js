// Test helpers: recorded fixtures, a model double with anywidget's surface, and a fetch
// double serving SSE from recorded events.
import { readFileSync } from "node:fs";
import { join } from "node:path";

export function fixture(name) {
  return JSON.parse(readFileSync(join(import.meta.dirname, "fixtures", `${name}.json`), "utf8"));
}

/** get/set/on/off/send/save_changes, with what was sent kept in `sent`. */
export function fakeModel(traits = {}) {
  const handlers = new Map();
  const state = { ...traits };
  const model = {
    sent: [],
    get: (name) => state[name],
    set(name, value) {
      state[name] = value;
      for (const fn of handlers.get(`change:${name}`) || []) fn();
    },
    save_changes() {},
    on(name, fn) {
      if (!handlers.has(name)) handlers.set(name, new Set());
      handlers.get(name).add(fn);
    },
    off(name, fn) {
      handlers.get(name)?.delete(fn);
    },
    send(content) {
      model.sent.push(content);
    },
    /** Deliver a custom message from the kernel. */
    receive(msg, buffers = []) {
      for (const fn of handlers.get("msg:custom") || []) fn(msg, buffers);
    },
    listeners: (name) => (handlers.get(name) || new Set()).size,
  };
  return model;
}

export function sse(events, { done = true } = {}) {
  return events.map((e) => `data: ${JSON.stringify(e)}\n\n`).join("") + (done ? "data: [DONE]\n\n" : "");
}

/** A Response whose body streams `text` in chunks of `chunk` characters. */
export function streamResponse(text, chunk = 40) {
  const encoder = new TextEncoder();
  let offset = 0;
  const body = new ReadableStream({
    pull(controller) {
      if (offset >= text.length) {
        controller.close();
        return;
      }
      controller.enqueue(encoder.encode(text.slice(offset, offset + chunk)));
      offset += chunk;
    },
  });
  return new Response(body, { status: 200, headers: { "Content-Type": "text/event-stream" } });
}

/** A Response whose body sends `text`, then stays open (as a live feed does) until `signal`
 * aborts, when reading it fails with an AbortError, as fetch's own bodies do. */
export function openStreamResponse(text, signal) {
  const encoder = new TextEncoder();
  const body = new ReadableStream({
    start(controller) {
      controller.enqueue(encoder.encode(text));
      signal?.addEventListener("abort", () => controller.error(new DOMException("aborted", "AbortError")));
    },
  });
  return new Response(body, { status: 200, headers: { "Content-Type": "text/event-stream" } });
}

export function jsonResponse(value, status = 200) {
  return new Response(JSON.stringify(value), { status, headers: { "Content-Type": "application/json" } });
}
