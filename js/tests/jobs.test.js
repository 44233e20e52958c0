import { describe, expect, it } from "vitest";
import { BrowserGateway } from "../lib/gateway.js";
import { JobFeed, applyJobEvent } from "../lib/jobfeed.js";
import jobs from "../src/jobs.js";
import { fakeModel, openStreamResponse, sse, streamResponse } from "./helpers.js";

const job = (id, status, steps = 0) => ({ id, status, thread: "default", model: "slow", agent: null, created: "2026-12-02T10:00:00Z", updated: "2026-12-02T10:00:00Z", steps, tokens: steps * 3, environment_id: null });
const snapshot = (jobs, n = 0) => ({ event_type: "session.jobs", event_id: `se_ab_${n}`, jobs });
const updated = (row, n) => ({ event_type: "job.updated", event_id: `se_ab_${n}`, job: row });

describe("the job board follows the session's job changes", () => {
  it("folds the jobs as they are, then each change in place, a new job last", () => {
    let rows = applyJobEvent([], snapshot([job("a", "completed", 1), job("b", "in_progress")]));
    rows = applyJobEvent(rows, updated(job("b", "in_progress", 1), 1));
    rows = applyJobEvent(rows, updated(job("c", "in_progress"), 2));
    rows = applyJobEvent(rows, updated(job("b", "cancelled", 1), 3));
    expect(rows.map((r) => [r.id, r.status, r.steps])).toEqual([["a", "completed", 1], ["b", "cancelled", 1], ["c", "in_progress", 0]]);
    expect(applyJobEvent(rows, { event_type: "something.else" })).toBe(rows);
  });

  it("one stream per page and session, resumed after the last event when it drops", async () => {
    const urls = [];
    const fetch = async (url, { signal }) => {
      urls.push(url);
      // The first stream drops after two events; the second stays open, as a live feed does.
      if (!url.includes("last_event_id")) return streamResponse(sse([snapshot([job("a", "in_progress")]), updated(job("a", "in_progress", 1), 1)], { done: false }));
      return openStreamResponse(sse([updated(job("a", "completed", 1), 2)], { done: false }), signal);
    };
    const feed = new JobFeed(new BrowserGateway("/i/", { fetch, doc: document }), "nb/x.ipynb", { sleep: async () => {} });
    const seen = [];
    const stop = feed.subscribe(() => seen.push(feed.rows.map((r) => r.status).join()));
    const again = feed.subscribe(() => {});
    await expect.poll(() => seen.at(-1)).toBe("completed");
    expect(urls[0]).toBe("/i/v1beta/sessions/nb%2Fx.ipynb/events");
    expect(urls[1]).toBe("/i/v1beta/sessions/nb%2Fx.ipynb/events?last_event_id=se_ab_1");
    expect(urls).toHaveLength(2); // two boards, one stream (and one resume)
    stop();
    again();
    expect(feed.abort).toBeNull(); // the last board gone: the stream is closed
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(urls).toHaveLength(2); // and not opened again
  });

  it("renders the rows the page reads and keeps them in the model (a saved notebook's)", async () => {
    const fetch = async (url, { signal }) => openStreamResponse(sse([snapshot([job("int_1", "in_progress", 2)])], { done: false }), signal);
    document.body.innerHTML = '<script id="jupyter-config-data" type="application/json">{"baseUrl": "/"}</script>';
    globalThis.fetch = fetch;
    const model = fakeModel({ rows: [], as_of: "", session_key: "nb.ipynb", gateway: "interactions/", follower: "browser" });
    const el = document.createElement("div");
    const dispose = jobs.render({ model, el });
    await expect.poll(() => el.querySelectorAll("tr[data-job]").length).toBe(1);
    const row = el.querySelector("tr[data-job='int_1']");
    expect(row.dataset.status).toBe("in_progress");
    expect(row.querySelector(".ji-steps").textContent).toBe("2");
    expect(model.get("rows")).toHaveLength(1);
    expect(model.get("as_of")).toBeTruthy();
    dispose();
  });
});

describe("a row opened on a board the kernel follows", () => {
  it("asks the kernel to follow the job, and to stop when it is closed or the board goes", () => {
    const model = fakeModel({ rows: [job("int_1", "in_progress", 2), job("int_2", "in_progress")], as_of: "", session_key: "nb.ipynb", gateway: "", follower: "kernel" });
    const el = document.createElement("div");
    const dispose = jobs.render({ model, el });
    const calls = (method) => model.sent.filter((m) => m.type === "call" && m.method === method).map((m) => m.args.id);
    const openButton = (id) => el.querySelector(`tr[data-job='${id}'] .ji-open`);
    openButton("int_1").click();
    expect(calls("follow")).toEqual(["int_1"]);
    openButton("int_1").click(); // Close
    expect(calls("unfollow")).toEqual(["int_1"]);
    openButton("int_1").click();
    openButton("int_2").click(); // another row: the first one closes
    expect(calls("follow")).toEqual(["int_1", "int_1", "int_2"]);
    expect(calls("unfollow")).toEqual(["int_1", "int_1"]);
    dispose(); // the board's view removed
    expect(calls("unfollow")).toEqual(["int_1", "int_1", "int_2"]);
  });
});
