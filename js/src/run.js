// The run view widget: one interaction (or a chain of function-call rounds) as a header and a
// timeline. It follows the events itself from the page when the kernel says so (`follower`
// "browser"), else folds the events the kernel pushes; what lasts comes in `snapshots`.
import { applyEvent, emptyRun, ended, fromInteraction, mergeInteraction, wantsWholeStep } from "../lib/reducer.js";
import { follow, pageSlots } from "../lib/gateway.js";
import { invoke } from "../lib/kernel.js";
import { frameScheduler } from "../lib/dom.js";
import { mountFileBrowser } from "../lib/filebrowser.js";
import { mountRunView } from "../lib/runview.js";
import { browserFiles, kernelFiles, pageGateway } from "../lib/sources.js";

const SLICE_MS = 3000; // a stream yields its slot to a waiting view after this long

export class RunController {
  constructor(model, { gateway = pageGateway(model), slots = pageSlots(), now = () => Date.now() } = {}) {
    this.model = model;
    this.gateway = gateway;
    this.slots = slots;
    this.now = now;
    this.byId = new Map();
    this.open = new Map();
    this.listeners = new Set();
    this.following = new Set();
    this.message = null;
    this.browser = model.get("follower") === "browser" && gateway != null;
    this.takeSnapshots();
    this.onSnapshots = () => { this.takeSnapshots(); this.changed(); };
    this.onIds = () => { this.start(); this.changed(); };
    this.onMessage = (msg) => this.receive(msg);
    model.on("change:snapshots", this.onSnapshots);
    model.on("change:interaction_ids", this.onIds);
    model.on("msg:custom", this.onMessage);
  }

  dispose() {
    this.model.off("change:snapshots", this.onSnapshots);
    this.model.off("change:interaction_ids", this.onIds);
    this.model.off("msg:custom", this.onMessage);
    this.disposed = true;
  }

  ids() {
    return this.model.get("interaction_ids") || [];
  }

  run(id) {
    let run = this.byId.get(id);
    if (!run) {
      run = emptyRun(id);
      this.byId.set(id, run);
    }
    return run;
  }

  runs() {
    return this.ids().map((id) => this.run(id));
  }

  label() { return this.model.get("label"); }
  thread() { return this.model.get("thread"); }
  notice() { return this.message; }
  canCancel() { return true; }

  subscribe(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  changed() {
    this.reportStatuses();
    for (const listener of this.listeners) listener();
  }

  /** Saved or final interactions: they replace what was folded, keeping step times. */
  takeSnapshots() {
    for (const snapshot of this.model.get("snapshots") || []) {
      if (!snapshot || !snapshot.id) continue;
      const known = this.byId.get(snapshot.id);
      if (!known || !known.events) {
        this.byId.set(snapshot.id, fromInteraction(snapshot));
      } else if (ended(fromInteraction(snapshot)) || !this.following.has(snapshot.id)) {
        mergeInteraction(known, snapshot);
        if (ended(known)) for (const s of known.steps) if (s && s.status === "running") s.status = s.isError ? "failed" : "done";
      }
    }
  }

  /** Events the kernel pushed (it follows when the page cannot). */
  receive(msg) {
    if (!msg || msg.type !== "events") return;
    const run = this.run(msg.id);
    for (const event of msg.events) this.apply(run, event);
    this.changed();
  }

  apply(run, event) {
    const step = applyEvent(run, event, this.now());
    if (event.event_type === "step.stop" && wantsWholeStep(step)) this.fetchWhole(run);
  }

  /** The page follows, so the kernel hears each run's status from here (its Job stays true
   * without reading the stream): a synced trait, saved on a change of status only, however
   * the status changed (an event or a fetch of the whole interaction). */
  reportStatuses() {
    if (!this.browser) return;
    const reported = this.model.get("statuses") || {};
    const moved = this.runs().filter((run) => run.id && run.status && reported[run.id] !== run.status);
    if (!moved.length) return;
    const next = { ...reported };
    for (const run of moved) next[run.id] = run.status;
    this.model.set("statuses", next);
    this.model.save_changes();
  }

  async fetchWhole(run) {
    try {
      const whole = this.browser ? await this.gateway.get(run.id) : await invoke(this.model, "get", { id: run.id });
      mergeInteraction(run, whole);
      this.changed();
    } catch { /* the images come with the final snapshot */ }
  }

  start() {
    if (!this.browser) return;
    for (const id of this.ids()) {
      if (this.following.has(id) || ended(this.run(id))) continue;
      this.following.add(id);
      this.followInPage(id);
    }
  }

  async followInPage(id) {
    const run = this.run(id);
    while (!ended(run) && !this.disposed) {
      const release = await this.slots.acquire();
      const abort = new AbortController();
      const started = this.now();
      const slice = setInterval(() => {
        if (this.slots.waiting.length && this.now() - started > SLICE_MS) abort.abort();
      }, 500);
      try {
        await follow(this.gateway, id, {
          run, signal: abort.signal,
          onEvent: (event) => { this.apply(run, event); this.changed(); },
        });
      } catch (error) {
        if (!error || error.name !== "AbortError") {
          this.browser = false;
          this.message = `the page lost the gateway (${error && error.message}); the kernel follows instead`;
          this.model.send({ type: "follow", by: "kernel", id, last_event_id: run.lastEventId });
          this.changed();
          return;
        }
      } finally {
        clearInterval(slice);
        release();
      }
    }
    if (ended(run) && !this.disposed) {
      this.fetchWhole(run);
      this.model.send({ type: "ended", id }); // a background job's view gets its final state
    }
  }

  async cancel() {
    const last = this.runs().at(-1);
    if (!last || !last.id) return;
    this.message = "cancelling…";
    this.changed();
    try {
      if (this.browser) await this.gateway.cancel(last.id);
      else await invoke(this.model, "cancel", { id: last.id });
      this.message = null;
    } catch (error) {
      this.message = `could not cancel: ${error.message}`;
    }
    this.changed();
  }

  fileSource() {
    return this.browser ? browserFiles(this.model, this.gateway) : kernelFiles(this.model);
  }

  toggleFiles(box) {
    const env = this.runs().map((r) => r.environmentId).filter(Boolean).at(-1);
    if (!env) return;
    if (this.files) {
      this.files.dispose();
      this.files = null;
      this.filesOpen = false;
    } else {
      this.files = mountFileBrowser(box, { source: this.fileSource(), env });
      this.filesOpen = true;
    }
    this.changed();
  }
}

const controllers = new WeakMap();

function controllerOf(model) {
  let ctl = controllers.get(model);
  if (!ctl) {
    ctl = new RunController(model);
    controllers.set(model, ctl);
    ctl.start();
  }
  return ctl;
}

export default {
  initialize({ model }) {
    controllerOf(model);
  },
  render({ model, el }) {
    const ctl = controllerOf(model);
    const view = mountRunView(el, ctl);
    let lastSteps = 0;
    const paint = () => {
      view.paint();
      const done = ctl.runs().reduce((n, r) => n + r.steps.filter((s) => s && s.status !== "running").length, 0);
      if (ctl.files && done !== lastSteps) ctl.files.refresh(); // the agent may have written files
      lastSteps = done;
      view.root.querySelector(".ji-files-button").setAttribute("aria-expanded", String(Boolean(ctl.files)));
    };
    const schedule = frameScheduler(paint);
    const unsubscribe = ctl.subscribe(schedule);
    const ticker = setInterval(() => { if (!ended(ctl.runs().at(-1) || { status: "completed" })) schedule(); }, 1000);
    paint();
    return () => {
      unsubscribe();
      clearInterval(ticker);
    };
  },
};
