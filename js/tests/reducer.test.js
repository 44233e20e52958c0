import { describe, expect, it } from "vitest";
import { answer, applyEvent, emptyRun, ended, fromInteraction, itemStatus, mergeInteraction, timeline } from "../lib/reducer.js";
import { fixture } from "./helpers.js";

const NAMES = ["echo", "function_call", "function_result", "agent_files", "error", "cancel"];

function fold(events) {
  const run = emptyRun();
  let t = 0;
  for (const event of events) applyEvent(run, event, (t += 10));
  return run;
}

/** What a reader sees of a step, whichever way it was built. */
function seen(step) {
  return { type: step.type, text: step.text, code: step.code, result: step.result, isError: step.isError, arguments: step.arguments };
}

describe("the reducer, on event sequences recorded from the real gateway", () => {
  for (const name of NAMES) {
    it(`${name}: folding the events gives what GET returns afterwards`, () => {
      const { events, interaction } = fixture(name);
      const streamed = fold(events);
      const whole = fromInteraction(interaction);
      expect(streamed.id).toBe(interaction.id);
      expect(streamed.status).toBe(interaction.status);
      expect(streamed.lastEventId).toBe(events.at(-1).event_id);
      expect(ended(streamed)).toBe(true);
      expect(streamed.steps.map(seen)).toEqual(whole.steps.map(seen).map((s, i) => (
        // The stream's code results carry text only; their images come with GET.
        { ...s, result: streamed.steps[i].type.endsWith("_result") ? streamed.steps[i].result : s.result })));
      expect(streamed.usage).toEqual(whole.usage);
    });
  }

  it("echo: the answer streams in as text", () => {
    const { events } = fixture("echo");
    const run = emptyRun();
    const texts = events.map((e) => (applyEvent(run, e), answer([run])));
    expect(texts.at(3)).toBe("Hello **world**: ");
    expect(texts.at(-1)).toBe("Hello **world**: `x = 1` and\n\n- one\n- two");
  });

  it("function calls: arguments accumulate from arguments_delta; the call waits for its result", () => {
    const run = fold(fixture("function_call").events);
    const [call] = run.steps;
    expect(call).toMatchObject({ type: "function_call", name: "get_weather", id: "call_1", arguments: { city: "Oslo" } });
    expect(run.status).toBe("requires_action");
    const [item] = timeline([run]);
    expect(itemStatus(item, run)).toBe("waiting");
  });

  it("partial argument JSON is shown as it comes", () => {
    const run = emptyRun("i");
    applyEvent(run, { event_type: "step.start", index: 0, step: { type: "function_call", id: "c", name: "f", arguments: {} } });
    applyEvent(run, { event_type: "step.delta", index: 0, delta: { type: "arguments_delta", arguments: '{"city": "Os' } });
    expect(run.steps[0].argumentsText).toBe('{"city": "Os');
    applyEvent(run, { event_type: "step.delta", index: 0, delta: { type: "arguments_delta", arguments: 'lo"}' } });
    expect(run.steps[0].arguments).toEqual({ city: "Oslo" });
  });

  it("a function result in a continuation's input answers the earlier call", () => {
    const first = fromInteraction(fixture("function_call").interaction);
    const second = fromInteraction({
      id: "int_2", status: "completed",
      steps: [{ type: "user_input", content: [{ type: "function_result", call_id: "call_1", result: "sunny" }] },
        { type: "model_output", content: [{ type: "text", text: "get_weather returned: sunny" }] }],
    });
    const items = timeline([first, second]);
    expect(items.map((i) => i.step.type)).toEqual(["function_call", "model_output"]);
    expect(items[0].result.result).toBe("sunny");
    expect(itemStatus(items[0], second)).toBe("done");
  });

  it("agent: thought, code calls joined to their results, a failed step, the summary", () => {
    const run = fold(fixture("agent_files").events);
    const items = timeline([run]);
    expect(items.map((i) => i.step.type)).toEqual(["thought", "code_execution_call", "code_execution_call", "code_execution_call", "model_output"]);
    expect(items.map((i) => itemStatus(i, run))).toEqual(["done", "done", "done", "failed", "done"]);
    expect(items[1].result.result).toBe("30\n");
    expect(items[3].result.result).toContain("ZeroDivisionError");
    expect(items[1].step.endedAt - items[1].step.startedAt).toBeGreaterThan(0);
    expect(run.environmentId).toMatch(/^env_/);
  });

  it("agent: the plot comes with the whole step (GET) and is merged in", () => {
    const { events, interaction } = fixture("agent_files");
    const run = fold(events);
    expect(run.steps[4].images).toEqual([]);
    mergeInteraction(run, interaction);
    expect(run.steps[4].images).toHaveLength(1);
    expect(run.steps[4].images[0].mimeType).toBe("image/png");
    expect(atob(run.steps[4].images[0].data.slice(0, 8))).toContain("PNG");
  });

  it("error: the run fails with the error's message", () => {
    const run = fold(fixture("error").events);
    expect(run.status).toBe("failed");
    expect(run.error).toBe("RuntimeError: the model crashed on purpose");
    expect(answer([run])).toBe("partial ");
  });

  it("cancel: the run ends cancelled with what came before", () => {
    const run = fold(fixture("cancel").events);
    expect(run.status).toBe("cancelled");
    expect(answer([run]).startsWith("word word")).toBe(true);
  });

  it("unknown step and delta types are kept raw, never dropped", () => {
    const run = emptyRun("i");
    applyEvent(run, { event_type: "step.start", index: 0, step: { type: "hologram_call", id: "h1", arguments: { x: 1 } } });
    applyEvent(run, { event_type: "step.start", index: 1, step: { type: "sparkle", glitter: 3 } });
    applyEvent(run, { event_type: "step.delta", index: 1, delta: { type: "shimmer", level: 2 } });
    expect(run.steps[0].argumentsText).toContain('"x": 1');
    expect(run.steps[1].raw).toEqual({ type: "sparkle", glitter: 3 });
    expect(run.steps[1].unknownDeltas).toEqual([{ type: "shimmer", level: 2 }]);
    expect(timeline([run]).map((i) => i.step.type)).toEqual(["hologram_call", "sparkle"]);
  });
});
