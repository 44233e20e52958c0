// The job board's rows: a session's background jobs as the gateway streams them
// (`sessions/{key}/events`: the jobs as they are, then each change). One stream per page and
// session, however many boards show it; resumed after the last event seen when it drops.
import { resumable } from "./gateway.js";
import { TERMINAL } from "./reducer.js";

const RETRY_MS = 2000; // after the gateway ended the stream (it stopped): try again

export function running(row) {
  return !TERMINAL.has(row.status);
}

/** The rows after one event of the stream (rows keep their order; a new job goes last). */
export function applyJobEvent(rows, event) {
  if (event.event_type === "session.jobs") return [...(event.jobs || [])];
  if (event.event_type !== "job.updated" || !event.job) return rows;
  const at = rows.findIndex((row) => row.id === event.job.id);
  if (at < 0) return [...rows, event.job];
  const next = [...rows];
  next[at] = event.job;
  return next;
}

export class JobFeed {
  constructor(gateway, key, { sleep = (ms) => new Promise((r) => setTimeout(r, ms)), retries = 5 } = {}) {
    this.gateway = gateway;
    this.key = key;
    this.sleep = sleep;
    this.retries = retries;
    this.rows = null; // null until the first event
    this.lastEventId = null;
    this.error = null;
    this.listeners = new Set();
    this.abort = null;
  }

  /** Call `listener()` on each change; the first subscriber opens the stream, the last one
   * to leave closes it. */
  subscribe(listener) {
    this.listeners.add(listener);
    if (!this.abort) this.run();
    else if (this.rows) listener();
    return () => {
      this.listeners.delete(listener);
      if (!this.listeners.size && this.abort) {
        this.abort.abort();
        this.abort = null;
      }
    };
  }

  receive(event) {
    this.lastEventId = event.event_id || this.lastEventId;
    this.rows = applyJobEvent(this.rows || [], event);
    this.error = null;
    this.notify();
  }

  notify() {
    for (const listener of this.listeners) listener();
  }

  async run() {
    const abort = (this.abort = new AbortController());
    while (!abort.signal.aborted) {
      try {
        await resumable(
          (lastEventId, onEvent) => this.gateway.sessionEvents(this.key, { lastEventId, onEvent, signal: abort.signal }),
          { last: () => this.lastEventId, onEvent: (event) => this.receive(event), retries: this.retries, sleep: this.sleep });
      } catch (error) {
        if (error && error.name === "AbortError") return;
        this.error = error;
        this.notify();
      }
      if (!abort.signal.aborted) await this.sleep(RETRY_MS);
    }
  }
}

/** The page's one JobFeed of session `key` (every board's module instance shares it). */
export function pageFeed(gateway, key) {
  const shared = (globalThis.__jupyterInteractions ||= {});
  const feeds = (shared.jobFeeds ||= new Map());
  if (!feeds.has(key)) feeds.set(key, new JobFeed(gateway, key));
  return feeds.get(key);
}
