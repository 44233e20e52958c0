import { describe, expect, it } from "vitest";
import panel from "../src/panel.js";
import { fakeModel, fixture } from "./helpers.js";

function answer(model, method, result) {
  const call = model.sent.findLast((m) => m.type === "call" && m.method === method);
  model.receive({ type: "reply", id: call.id, result });
}

describe("a run started from a panel the kernel follows", () => {
  it("asks the kernel to follow it once its view can hear the events, and to stop when the panel goes", async () => {
    const { events } = fixture("echo");
    const id = events[0].interaction.id;
    const model = fakeModel({ models: ["echo"], agents: [], environments: [], default_model: "echo", thread: "default", gateway: "", follower: "kernel" });
    const el = document.createElement("div");
    const dispose = panel.render({ model, el });
    const calls = (method) => model.sent.filter((m) => m.type === "call" && m.method === method).map((m) => m.args);
    el.querySelector(".ji-prompt").value = "hello";
    el.querySelector(".ji-run-button").click();
    expect(calls("run")).toHaveLength(1);
    expect(calls("follow")).toEqual([]); // not before the run view exists
    answer(model, "run", { id });
    await expect.poll(() => calls("follow")).toEqual([{ id }]);
    model.receive({ type: "events", id, events }); // what the kernel's follower pushes
    await expect.poll(() => el.querySelector(".ji-chip")?.dataset.status).toBe("completed");
    expect(el.querySelector(".ji-markdown").textContent).toContain("Hello world");
    dispose();
    expect(calls("unfollow")).toEqual([{ id }]);
  });
});
