// The run view's DOM: a header (model or agent, thread, status, tokens, elapsed, Cancel,
// Files) and a timeline keyed by step (interaction id + index), so a repaint updates items
// in place and each item's open/closed state survives repaints and new views.
import { answer, ended, itemStatus, STOPPED_EARLY, timeline } from "./reducer.js";
import { duration, epoch, fill, h } from "./dom.js";
import { highlight, renderMarkdown } from "./markdown.js";

const LABELS = { running: "running", done: "done", failed: "failed", waiting: "waiting" };

export function statusChip(status, extra = "") {
  const s = status || "queued";
  return h("span", { class: `ji-chip ji-status-${s}`, dataset: { status: s } }, extra ? `${s} ${extra}` : s);
}

function tokens(usage) {
  const total = usage.total_tokens ?? ((usage.total_input_tokens || 0) + (usage.total_output_tokens || 0));
  return total ? `${total.toLocaleString()} tokens` : "";
}

/** Elapsed time of a run: server times when it has ended, else since it was created. */
export function runElapsed(runs, now = Date.now()) {
  const first = runs.map((r) => epoch(r.created)).filter((t) => t != null);
  if (!first.length) return "";
  const start = Math.min(...first);
  const last = runs[runs.length - 1];
  const end = ended(last) ? epoch(last.updated) ?? now : now;
  return duration(Math.max(0, end - start));
}

function defaultOpen(step) {
  return !(step.type === "thought" || step.type === "user_input" || !known(step.type));
}

function known(type) {
  return type === "model_output" || type === "thought" || type === "user_input" || type.endsWith("_call") || type.endsWith("_result");
}

function signature(item, status) {
  const s = item.step;
  const r = item.result || {};
  return [status, s.text.length, s.code.length, s.argumentsText.length, s.error, r.result?.length, r.images?.length, s.result.length, s.images.length, r.isError].join("|");
}

function images(step) {
  return step.images.map((img) => h("img", { class: "ji-image", src: `data:${img.mimeType};base64,${img.data}`, alt: `${img.mimeType} output` }));
}

function resultBlock(result) {
  if (!result) return null;
  const text = result.result.replace(/\n$/, "");
  return h("div", { class: `ji-result${result.isError ? " ji-result-error" : ""}` },
    text ? h("pre", { class: "ji-output" }, text) : null,
    images(result));
}

function elapsedOf(item) {
  const start = item.step.startedAt;
  const end = (item.result || item.step).endedAt;
  return start != null && end != null ? duration(end - start) : "";
}

function body(item) {
  const { step, result } = item;
  if (step.type === "thought") return h("div", { class: "ji-markdown", html: renderMarkdown(step.text || "…") });
  if (step.type === "code_execution_call") {
    return [h("pre", { class: "ji-code hljs" }, h("code", { html: highlight(step.code, step.language) })), resultBlock(result)];
  }
  if (step.type.endsWith("_call")) {
    return [step.argumentsText ? h("pre", { class: "ji-code hljs" }, h("code", { html: highlight(step.argumentsText, "json") })) : h("div", { class: "ji-note" }, "no arguments"), resultBlock(result)];
  }
  if (step.type.endsWith("_result")) return resultBlock(step);
  if (step.type === "user_input") return h("pre", { class: "ji-output" }, step.text || JSON.stringify(step.raw, null, 2));
  return h("pre", { class: "ji-output ji-raw" }, JSON.stringify(step.raw, null, 2));
}

function title(step) {
  if (step.type === "thought") {
    const first = (step.text || "").split("\n")[0];
    return ["Thought", first ? h("span", { class: "ji-dim" }, ` ${first.length > 80 ? `${first.slice(0, 77)}…` : first}`) : null];
  }
  if (step.type === "code_execution_call") return ["Code", h("span", { class: "ji-dim" }, ` ${step.language || ""}`)];
  if (step.type === "function_call") return ["Call ", h("code", {}, step.name || "function")];
  if (step.type.endsWith("_call")) return [step.name || step.type.replaceAll("_", " ")];
  if (step.type.endsWith("_result")) return [step.type === "code_execution_result" ? "Output" : step.type.replaceAll("_", " ")];
  if (step.type === "user_input") return ["Input"];
  return [`Step ${step.type}`];
}

function renderItem(item, status, open, onToggle) {
  const { step } = item;
  if (step.type === "model_output") {
    return h("div", { class: "ji-item ji-answer", dataset: { key: item.key, type: step.type, status } },
      h("div", { class: "ji-markdown", html: renderMarkdown(step.text) }),
      step.error ? h("div", { class: "ji-error" }, step.error) : null);
  }
  const details = h("details", { class: `ji-item ji-step ji-step-${step.type}`, dataset: { key: item.key, type: step.type, status }, open },
    h("summary", {},
      h("span", { class: "ji-step-title" }, title(step)),
      h("span", { class: "ji-step-meta" }, h("span", { class: `ji-chip ji-step-status ji-status-${status}` }, LABELS[status] || status), h("span", { class: "ji-dim" }, elapsedOf(item)))),
    h("div", { class: "ji-step-body" }, body(item)));
  details.addEventListener("toggle", () => onToggle(details.open));
  return details;
}

/** Build the view in `el`; returns {paint}. `ctl` holds runs, open states and actions. */
export function mountRunView(el, ctl) {
  const who = h("span", { class: "ji-who" });
  const chip = h("span", {});
  const meta = h("span", { class: "ji-dim ji-meta" });
  const cancel = h("button", { class: "ji-button ji-cancel", type: "button", onclick: () => ctl.cancel() }, "Cancel");
  const files = h("button", { class: "ji-button ji-files-button", type: "button", "aria-expanded": "false", onclick: () => ctl.toggleFiles(filesBox) }, "Files");
  const items = h("div", { class: "ji-timeline" });
  const notice = h("div", { class: "ji-notice", role: "status" });
  const filesBox = h("div", { class: "ji-files-box" });
  const root = h("div", { class: "ji-run" },
    h("div", { class: "ji-header" }, who, chip, meta, h("span", { class: "ji-spacer" }), cancel, files),
    items, notice, filesBox);
  el.append(root);
  const shown = new Map(); // key -> {el, sig}

  function paint() {
    const runs = ctl.runs();
    const last = runs[runs.length - 1];
    const label = ctl.label() || (last && (last.agent ? `agent ${last.agent}` : last.model ? `model ${last.model}` : ""));
    fill(who, label || "interaction");
    const status = last ? (last.error && last.status !== "cancelled" ? "failed" : last.status) : null;
    fill(chip, statusChip(status));
    const usage = runs.reduce((sum, r) => {
      for (const [k, v] of Object.entries(r.usage)) sum[k] = (sum[k] || 0) + v;
      return sum;
    }, {});
    fill(meta, [ctl.thread() ? `thread ${ctl.thread()}` : "", tokens(usage), runElapsed(runs)].filter(Boolean).join(" · "));
    const running = Boolean(last) && !ended(last);
    cancel.hidden = !running || !ctl.canCancel();
    files.hidden = !runs.some((r) => r.environmentId);
    root.dataset.status = status || "queued";

    const list = timeline(runs);
    const keep = new Set();
    let previous = null;
    for (const item of list) {
      const run = runs.find((r) => item.key.startsWith(`${r.id || "run"}:`)) || last;
      const itemState = itemStatus(item, run);
      const sig = signature(item, itemState);
      keep.add(item.key);
      let entry = shown.get(item.key);
      if (!entry || entry.sig !== sig) {
        const open = ctl.open.has(item.key) ? ctl.open.get(item.key) : defaultOpen(item.step);
        const node = renderItem(item, itemState, open, (isOpen) => ctl.open.set(item.key, isOpen));
        if (entry) entry.el.replaceWith(node);
        entry = { el: node, sig };
        shown.set(item.key, entry);
      }
      const expected = previous ? previous.nextSibling : items.firstChild;
      if (expected !== entry.el) items.insertBefore(entry.el, expected);
      previous = entry.el;
    }
    for (const [key, entry] of shown) {
      if (!keep.has(key)) {
        entry.el.remove();
        shown.delete(key);
      }
    }
    const notes = [];
    if (last && last.error && last.status !== "cancelled") notes.push(h("div", { class: "ji-error" }, `Error: ${last.error}`));
    else if (last && STOPPED_EARLY[last.status]) notes.push(h("div", { class: "ji-note" }, `${last.status}: ${STOPPED_EARLY[last.status]}`));
    if (ctl.notice()) notes.push(h("div", { class: "ji-note" }, ctl.notice()));
    if (!list.length && !notes.length) notes.push(h("div", { class: "ji-note" }, running || !last ? "waiting for the first step…" : "no steps"));
    fill(notice, notes);
  }

  return { paint, root, answer: () => answer(ctl.runs()) };
}
