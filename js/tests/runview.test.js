import { describe, expect, it, vi } from "vitest";
import { RunController } from "../src/run.js";
import { mountRunView } from "../lib/runview.js";
import { BrowserGateway, StreamSlots } from "../lib/gateway.js";
import { fakeModel, fixture, jsonResponse, sse, streamResponse } from "./helpers.js";

function kernelView(name, extra = {}) {
  const { events } = fixture(name);
  const id = events[0].interaction.id;
  const model = fakeModel({ interaction_ids: [id], snapshots: [], gateway: "", follower: "kernel", thread: "default", label: "", ...extra });
  const ctl = new RunController(model, { gateway: null });
  const el = document.createElement("div");
  const view = mountRunView(el, ctl);
  return { model, ctl, el, view, events, id };
}

function push(model, id, events) {
  model.receive({ type: "events", id, events });
}

describe("the run view renders each step type from recorded sequences", () => {
  it("agent: thought collapsed, code with output, the failed step, the plot, the answer", () => {
    const { model, el, view, events, id, ctl } = kernelView("agent_files");
    push(model, id, events);
    ctl.takeSnapshots();
    model.set("snapshots", [fixture("agent_files").interaction]); // the final snapshot brings the plot
    view.paint();
    const items = [...el.querySelectorAll(".ji-item")];
    expect(items.map((i) => i.dataset.type)).toEqual(["thought", "code_execution_call", "code_execution_call", "code_execution_call", "model_output"]);
    expect(items[0].open).toBe(false);
    expect(items[1].open).toBe(true);
    expect(items[1].querySelector(".ji-code").textContent).toContain("csv.writer");
    expect(items[1].querySelector(".ji-output").textContent).toBe("30");
    expect(items[2].querySelector("img.ji-image").getAttribute("src")).toMatch(/^data:image\/png;base64,iVBOR/);
    expect(items[3].dataset.status).toBe("failed");
    expect(items[3].querySelector(".ji-result-error").textContent).toContain("ZeroDivisionError");
    expect(items[4].querySelector(".ji-markdown pre code")).not.toBeNull(); // the fenced block
    expect(el.querySelector(".ji-chip").dataset.status).toBe("completed");
    expect(el.querySelector(".ji-meta").textContent).toContain("320 tokens");
    expect(el.querySelector(".ji-files-button").hidden).toBe(false);
    expect(el.querySelector(".ji-cancel").hidden).toBe(true);
  });

  it("echo: rendered Markdown, code highlighted", () => {
    const { model, el, view, events, id } = kernelView("echo");
    push(model, id, events);
    view.paint();
    const answer = el.querySelector(".ji-answer .ji-markdown");
    expect(answer.querySelector("strong").textContent).toBe("world");
    expect(answer.querySelectorAll("li")).toHaveLength(2);
  });

  it("a fenced python block is highlighted", () => {
    const { model, el, view, id } = kernelView("echo");
    push(model, id, [
      { event_type: "step.start", index: 0, step: { type: "model_output", content: [] } },
      { event_type: "step.delta", index: 0, delta: { type: "text", text: "```python\ndef f(x):\n    return 1\n```" } },
    ]);
    view.paint();
    expect(el.querySelector(".ji-answer .hljs-keyword").textContent).toBe("def");
  });

  it("raw HTML in an answer is shown as text, never run", () => {
    const { model, el, view, id } = kernelView("echo");
    push(model, id, [
      { event_type: "step.start", index: 0, step: { type: "model_output", content: [] } },
      { event_type: "step.delta", index: 0, delta: { type: "text", text: "<img src=x onerror=alert(1)>" } },
    ]);
    view.paint();
    expect(el.querySelector(".ji-answer img")).toBeNull();
    expect(el.querySelector(".ji-answer").textContent).toContain("<img src=x onerror=alert(1)>");
  });

  it("function call: the call with its arguments, waiting for its result", () => {
    const { model, el, view, events, id } = kernelView("function_call");
    push(model, id, events);
    view.paint();
    const call = el.querySelector('[data-type="function_call"]');
    expect(call.querySelector("summary code").textContent).toBe("get_weather");
    expect(call.querySelector(".ji-code").textContent).toContain('"city": "Oslo"');
    expect(call.dataset.status).toBe("waiting");
  });

  it("an unknown step type renders as its raw JSON", () => {
    const { model, el, view, id } = kernelView("echo");
    push(model, id, [{ event_type: "step.start", index: 0, step: { type: "sparkle", glitter: 3 } }]);
    view.paint();
    const item = el.querySelector('[data-type="sparkle"]');
    expect(item.querySelector(".ji-raw").textContent).toContain('"glitter": 3');
  });

  it("error: the error is shown and the status is failed", () => {
    const { model, el, view, events, id } = kernelView("error");
    push(model, id, events);
    view.paint();
    expect(el.querySelector(".ji-chip").dataset.status).toBe("failed");
    expect(el.querySelector(".ji-notice .ji-error").textContent).toContain("the model crashed on purpose");
  });

  it("open/closed state is keyed by step and survives repaints and new views", () => {
    const { model, el, view, events, id, ctl } = kernelView("agent_files");
    push(model, id, events.slice(0, 8));
    view.paint();
    const thought = () => el.querySelector('[data-type="thought"]');
    thought().open = true;
    thought().dispatchEvent(new Event("toggle"));
    push(model, id, events.slice(8));
    view.paint();
    expect(thought().open).toBe(true);
    const code = () => el.querySelector('[data-type="code_execution_call"]');
    code().open = false;
    code().dispatchEvent(new Event("toggle"));
    const other = document.createElement("div");
    mountRunView(other, ctl).paint();
    expect(other.querySelector('[data-type="thought"]').open).toBe(true);
    expect(other.querySelector('[data-type="code_execution_call"]').open).toBe(false);
  });

  it("a repaint with nothing new leaves the step elements in place (no layout jump)", () => {
    const { model, el, view, events, id } = kernelView("agent_files");
    push(model, id, events.slice(0, 12));
    view.paint();
    const before = [...el.querySelectorAll(".ji-item")];
    push(model, id, events.slice(12, 14));
    view.paint();
    const after = [...el.querySelectorAll(".ji-item")];
    expect(after.slice(0, before.length)).toEqual(before);
  });
});

describe("cancel", () => {
  it("through the kernel: an id-keyed call", async () => {
    const { model, ctl, events, id } = kernelView("cancel");
    push(model, id, events.slice(0, 5));
    const done = ctl.cancel();
    expect(model.sent.at(-1)).toMatchObject({ type: "call", method: "cancel", args: { id } });
    model.receive({ type: "reply", id: model.sent.at(-1).id, result: { status: "cancelled" } });
    await done;
    expect(ctl.notice()).toBeNull();
  });

  it("from the page: POST cancel with the XSRF cookie as X-XSRFToken", async () => {
    document.cookie = "_xsrf=2|abc|def";
    const calls = [];
    const fetch = async (url, init) => {
      calls.push({ url, init });
      return jsonResponse({ id: "int_1", status: "cancelled" });
    };
    const gateway = new BrowserGateway("/base/interactions/", { fetch, doc: document });
    const model = fakeModel({ interaction_ids: ["int_1"], snapshots: [], gateway: "interactions/", follower: "browser" });
    const ctl = new RunController(model, { gateway });
    await ctl.cancel();
    expect(calls[0].url).toBe("/base/interactions/v1beta/interactions/int_1/cancel");
    expect(calls[0].init.method).toBe("POST");
    expect(calls[0].init.headers["X-XSRFToken"]).toBe("2|abc|def");
    expect(calls[0].init.credentials).toBe("same-origin");
  });

  it("a refused cancel says why", async () => {
    const { model, ctl, id } = kernelView("cancel");
    const done = ctl.cancel();
    model.receive({ type: "reply", id: model.sent.at(-1).id, error: "int_x had already ended" });
    await done;
    expect(ctl.notice()).toBe("could not cancel: int_x had already ended");
    expect(id).toBeTruthy();
  });
});

describe("following from the page", () => {
  it("resumes from the last event after a dropped stream and ends as the full run", async () => {
    const { events, interaction } = fixture("agent_files");
    const id = interaction.id;
    const urls = [];
    const fetch = async (url) => {
      urls.push(url);
      if (url.includes("stream=true")) {
        const after = /last_event_id=ev_(\d+)/.exec(url);
        const from = after ? Number(after[1]) : 0;
        // The first connection drops after ten events (no [DONE]).
        return from === 0 ? streamResponse(sse(events.slice(0, 10), { done: false })) : streamResponse(sse(events.slice(from)));
      }
      return jsonResponse(interaction);
    };
    const gateway = new BrowserGateway("/interactions/", { fetch, doc: document });
    const model = fakeModel({ interaction_ids: [id], snapshots: [], gateway: "interactions/", follower: "browser" });
    const ctl = new RunController(model, { gateway, slots: new StreamSlots(4) });
    await ctl.followInPage(id);
    const streams = urls.filter((u) => u.includes("stream=true"));
    expect(streams).toHaveLength(2);
    expect(streams[1]).toContain("last_event_id=ev_10");
    const run = ctl.run(id);
    expect(run.status).toBe("completed");
    expect(run.events).toBe(events.length); // each event once: nothing lost, nothing doubled
    await vi.waitFor(() => expect(run.steps[4].images).toHaveLength(1)); // merged from GET
    // The kernel was asked for nothing; it is only told the job ended (for its final state).
    expect(model.sent).toEqual([{ type: "ended", id }]);
  });

  it("the page tells the kernel each change of status, not each event (a synced trait)", async () => {
    const { events, interaction } = fixture("agent_files");
    const fetch = async (url) => (url.includes("stream=true") ? streamResponse(sse(events)) : jsonResponse(interaction));
    const gateway = new BrowserGateway("/interactions/", { fetch, doc: document });
    const model = fakeModel({ interaction_ids: [interaction.id], snapshots: [], gateway: "interactions/", follower: "browser" });
    const saved = [];
    model.save_changes = () => saved.push(model.get("statuses"));
    const ctl = new RunController(model, { gateway, slots: new StreamSlots(4) });
    await ctl.followInPage(interaction.id);
    expect(events.length).toBeGreaterThan(20);
    expect(saved).toEqual([{ [interaction.id]: "in_progress" }, { [interaction.id]: "completed" }]);
  });

  it("a view whose page loses the gateway hands following to the kernel", async () => {
    const fetch = async () => jsonResponse({ error: { message: "no such interaction" } }, 404);
    const gateway = new BrowserGateway("/interactions/", { fetch, doc: document });
    const model = fakeModel({ interaction_ids: ["int_9"], snapshots: [], gateway: "interactions/", follower: "browser" });
    const ctl = new RunController(model, { gateway, slots: new StreamSlots(4) });
    await ctl.followInPage("int_9");
    expect(model.sent).toEqual([{ type: "follow", by: "kernel", id: "int_9", last_event_id: null }]);
    expect(ctl.notice()).toContain("the kernel follows instead");
  });

  it("streams share the page's slots: a waiting view gets one when another yields", async () => {
    const slots = new StreamSlots(1);
    const first = await slots.acquire();
    let second = false;
    const waiting = slots.acquire().then((release) => { second = true; return release; });
    await Promise.resolve();
    expect(second).toBe(false);
    first();
    (await waiting)();
    expect(second).toBe(true);
    expect(slots.busy).toBe(0);
  });
});

describe("coalescing", () => {
  it("many pushed events between frames paint once", async () => {
    const { model, ctl, events, id } = kernelView("cancel");
    const { frameScheduler } = await import("../lib/dom.js");
    const frames = [];
    let paints = 0;
    const schedule = frameScheduler(() => (paints += 1), (f) => frames.push(f));
    ctl.subscribe(schedule);
    for (const event of events) push(model, id, [event]);
    expect(frames).toHaveLength(1);
    frames.shift()();
    expect(paints).toBe(1);
  });
});
