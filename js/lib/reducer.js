// The run view's state, folded from an interaction's SSE events or from a whole Interaction
// resource (GET). Pure: no DOM, no I/O, so it is tested against recorded event sequences.
// The kernel's Transcript (render/transcript.py) folds the same events for text displays;
// this one keeps what a timeline needs besides: per-step status, times and raw JSON.

export const TERMINAL = new Set(["completed", "failed", "cancelled", "incomplete", "budget_exceeded"]);
export const PAUSED = new Set(["requires_action"]);
export const STOPPED_EARLY = {
  incomplete: "stopped early: an output or step limit was reached; ask it to go on",
  budget_exceeded: "stopped: the token budget was used up; raise it to go further",
};

/** A run that has seen nothing yet. `now` is injected so tests control time. */
export function emptyRun(id = null) {
  return {
    id, status: null, model: null, agent: null, environmentId: null, created: null,
    updated: null, usage: {}, steps: [], error: null, lastEventId: null, events: 0,
  };
}

export function ended(run) {
  return TERMINAL.has(run.status) || PAUSED.has(run.status) || run.error != null;
}

function textOf(content) {
  if (content == null) return "";
  if (typeof content === "string") return content;
  if (Array.isArray(content)) return content.map(textOf).join("");
  if (typeof content === "object") return typeof content.text === "string" ? content.text : "";
  return String(content);
}

function imagesOf(result) {
  if (!Array.isArray(result)) return [];
  return result
    .filter((b) => b && typeof b === "object" && b.type === "image" && b.data)
    .map((b) => ({ mimeType: b.mime_type || "image/png", data: b.data }));
}

function resultText(result) {
  if (typeof result === "string") return result;
  if (Array.isArray(result)) return textOf(result.filter((b) => b && b.type !== "image"));
  return result == null ? "" : JSON.stringify(result, null, 1);
}

function pretty(value) {
  return value == null || (typeof value === "object" && Object.keys(value).length === 0)
    ? ""
    : JSON.stringify(value, null, 2);
}

/** One step of the view from a wire step (a skeleton from step.start, or a whole one). */
export function stepFromWire(index, wire, now = null) {
  const type = wire.type || "unknown";
  const step = {
    index, type, raw: wire, status: "running", startedAt: now, endedAt: null,
    text: "", id: wire.id || null, callId: wire.call_id || null, name: wire.name || null,
    argumentsText: "", arguments: null, code: "", language: "", result: "", images: [],
    isError: false, error: null,
  };
  if (type === "model_output") {
    step.text = textOf(wire.content);
    if (wire.error && wire.error.message) step.error = wire.error.message;
  } else if (type === "thought") {
    step.text = textOf(wire.summary);
  } else if (type === "user_input") {
    step.text = textOf(wire.content);
    step.inputs = Array.isArray(wire.content) ? wire.content : [];
  } else if (type === "code_execution_call") {
    const args = wire.arguments || {};
    step.code = args.code || "";
    step.language = args.language || "python";
  } else if (type.endsWith("_result")) {
    step.result = resultText(wire.result);
    step.images = imagesOf(wire.result);
    step.isError = Boolean(wire.is_error);
  } else if (type.endsWith("_call")) {
    step.arguments = wire.arguments && Object.keys(wire.arguments).length ? wire.arguments : null;
    step.argumentsText = pretty(step.arguments);
  }
  return step;
}

function applyDelta(step, delta) {
  const kind = delta.type || "";
  if (kind === "text") {
    step.text += delta.text || "";
  } else if (kind === "thought_summary") {
    step.text += textOf(delta.content);
  } else if (kind === "thought_signature") {
    // opaque: nothing to show
  } else if (kind === "arguments_delta") {
    step.partialArguments = (step.partialArguments || "") + (delta.arguments || "");
    try {
      step.arguments = JSON.parse(step.partialArguments);
      step.argumentsText = pretty(step.arguments);
    } catch {
      step.argumentsText = step.partialArguments; // still partial JSON: shown as it comes
    }
  } else if (kind === "code_execution_call") {
    const args = delta.arguments || {};
    step.code += args.code || "";
    step.language = args.language || step.language || "python";
  } else if (kind.endsWith("_result")) {
    step.result += resultText(delta.result);
    step.images.push(...imagesOf(delta.result));
    if (delta.is_error) step.isError = true;
  } else if (kind.endsWith("_call")) {
    const { type: _t, ...rest } = delta;
    step.arguments = { ...(step.arguments || {}), ...(rest.arguments || rest) };
    step.argumentsText = pretty(step.arguments);
  } else if (["image", "audio", "video", "document"].includes(kind)) {
    if (kind === "image" && delta.data) step.images.push({ mimeType: delta.mime_type || "image/png", data: delta.data });
    else (step.media ||= []).push(delta);
  } else {
    (step.unknownDeltas ||= []).push(delta);
  }
}

function takeUsage(run, usage) {
  if (!usage) return;
  const kept = {};
  for (const [k, v] of Object.entries(usage)) if (Number.isInteger(v)) kept[k] = v;
  run.usage = kept;
}

function takeInteraction(run, interaction) {
  if (!interaction) return;
  run.id = interaction.id || run.id;
  run.status = interaction.status || run.status;
  run.model = interaction.model || run.model;
  run.agent = interaction.agent || run.agent;
  run.environmentId = interaction.environment_id || run.environmentId;
  run.created = interaction.created || run.created;
  run.updated = interaction.updated || run.updated;
  takeUsage(run, interaction.usage);
  if (Array.isArray(interaction.errors) && interaction.errors.length) {
    run.error = interaction.errors.map((e) => e.message || "").join("; ") || run.error;
  }
}

/** Fold one wire event (a parsed SSE `data:` object) into `run`; returns the step it
 * touched (or null). `now` (ms) stamps step starts and ends for their elapsed time. */
export function applyEvent(run, event, now = null) {
  run.events += 1;
  if (event.event_id) run.lastEventId = event.event_id;
  const kind = event.event_type;
  if (kind === "interaction.created" || kind === "interaction.completed") {
    takeInteraction(run, event.interaction);
    if (kind === "interaction.completed") {
      for (const step of run.steps) if (step && step.status === "running") finishStep(step, now);
    }
  } else if (kind === "interaction.status_update") {
    run.status = event.status || run.status;
    takeUsage(run, event.usage);
  } else if (kind === "step.start") {
    run.steps[event.index] = stepFromWire(event.index, event.step || {}, now);
    return run.steps[event.index];
  } else if (kind === "step.delta") {
    const step = (run.steps[event.index] ||= stepFromWire(event.index, { type: "model_output" }, now));
    applyDelta(step, event.delta || {});
    return step;
  } else if (kind === "step.stop") {
    const step = run.steps[event.index];
    if (step) finishStep(step, now);
    takeUsage(run, event.usage);
    return step || null;
  } else if (kind === "error") {
    run.error = (event.error && event.error.message) || "the interaction failed";
    run.status = "failed";
  }
  return null;
}

function finishStep(step, now) {
  step.endedAt = now;
  step.status = step.isError || step.error ? "failed" : "done";
}

/** A run from a whole Interaction resource (a GET, or a saved snapshot). */
export function fromInteraction(interaction) {
  const run = emptyRun();
  takeInteraction(run, interaction);
  run.steps = (interaction.steps || []).map((wire, i) => {
    const step = stepFromWire(i, wire);
    finishStep(step, null);
    return step;
  });
  return run;
}

/** Merge what only the whole steps carry (a code result's images) into a followed run. */
export function mergeInteraction(run, interaction) {
  takeInteraction(run, interaction);
  (interaction.steps || []).forEach((wire, i) => {
    const step = run.steps[i];
    if (!step) {
      run.steps[i] = stepFromWire(i, wire);
      finishStep(run.steps[i], null);
    } else if (step.type.endsWith("_result") && !step.images.length) {
      step.images = imagesOf(wire.result);
    }
  });
  return run;
}

/** True if a step's whole form (GET) may hold what its deltas could not: images. */
export function wantsWholeStep(step) {
  return Boolean(step && step.type === "code_execution_result" && step.status !== "running" && !step.images.length);
}

/** The timeline: calls joined to their results (id <-> call_id), in order. */
export function timeline(runs) {
  const items = [];
  const calls = new Map();
  for (const run of runs) {
    for (const step of run.steps) {
      if (!step) continue;
      const key = `${run.id || "run"}:${step.index}`;
      if (step.type.endsWith("_result") && step.callId && calls.has(step.callId)) {
        calls.get(step.callId).result = step;
        continue;
      }
      if (step.type === "user_input") {
        // A continuation's input: function results answer calls of the previous round.
        let rest = false;
        for (const part of step.inputs || []) {
          const call = part && part.type === "function_result" ? calls.get(part.call_id) : null;
          if (call) call.result = { ...stepFromWire(step.index, part), status: part.is_error ? "failed" : "done" };
          else rest = true;
        }
        if (!rest) continue;
      }
      const item = { key, step, result: null };
      if (step.type.endsWith("_call") && step.id) calls.set(step.id, item);
      items.push(item);
    }
  }
  return items;
}

/** The status of a timeline item: a call runs until its result has come. */
export function itemStatus(item, run) {
  const { step, result } = item;
  if (result) return result.status === "running" ? "running" : result.isError ? "failed" : "done";
  if (step.type.endsWith("_call") && step.type !== "function_call" && !ended(run)) return "running";
  if (step.type === "function_call" && step.status !== "running") return PAUSED.has(run.status) ? "waiting" : "done";
  return step.status;
}

/** The answer text: model_output steps, in order. */
export function answer(runs) {
  return runs.flatMap((r) => r.steps.filter((s) => s && s.type === "model_output").map((s) => s.text)).join("");
}
