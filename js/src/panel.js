// The agent panel: a prompt, model/agent and environment pickers, options, Run, and the run
// views below. Runs start in the background on the kernel (it answers at once); a second Run
// while one is going waits its turn in the queue (background runs do not wait).
import { ended } from "../lib/reducer.js";
import { fill, frameScheduler, h } from "../lib/dom.js";
import { invoke } from "../lib/kernel.js";
import { mountRunView } from "../lib/runview.js";
import { pageGateway } from "../lib/sources.js";
import { subModel } from "../lib/submodel.js";
import { RunController } from "./run.js";

function options(values, selected) {
  return values.map((v) => h("option", { value: v.value, selected: v.value === selected }, v.label));
}

export default {
  render({ model, el }) {
    const gateway = model.get("follower") === "browser" ? pageGateway(model) : null;
    const prompt = h("textarea", { class: "ji-prompt", placeholder: "Ask a model or give an agent a task…", "aria-label": "prompt" });
    const who = h("select", { class: "ji-who-picker", "aria-label": "model or agent" });
    const env = h("select", { class: "ji-env-picker", "aria-label": "environment" });
    const thread = h("input", { class: "ji-thread", type: "text", size: 10, value: model.get("thread") || "default", "aria-label": "thread" });
    const background = h("input", { class: "ji-background", type: "checkbox" });
    const maxTokens = h("input", { class: "ji-max-tokens", type: "number", min: 1, step: 1, placeholder: "none", style: "width: 6em", "aria-label": "max tokens" });
    const run = h("button", { class: "ji-button ji-primary ji-run-button", type: "button", onclick: () => enqueue() }, "Run");
    const status = h("span", { class: "ji-note", role: "status" });
    const queueBox = h("div", { class: "ji-queue" });
    el.append(h("div", { class: "ji-panel" },
      prompt,
      h("div", { class: "ji-options" },
        h("label", {}, "model/agent ", who),
        h("label", {}, "environment ", env),
        h("label", {}, "thread ", thread),
        h("label", {}, background, "background"),
        h("label", {}, "max tokens ", maxTokens),
        h("span", { class: "ji-spacer" }), run, status),
      queueBox));

    function pickers() {
      const choices = [
        ...(model.get("models") || []).map((m) => ({ value: `model:${m}`, label: m })),
        ...(model.get("agents") || []).map((a) => ({ value: `agent:${a}`, label: `agent ${a}` })),
      ];
      fill(who, options(choices, who.value || `model:${model.get("default_model")}`));
      const envs = [{ value: "", label: "new" }, ...(model.get("environments") || []).map((e) => ({ value: e, label: e }))];
      fill(env, options(envs, env.value));
      env.disabled = !who.value.startsWith("agent:");
    }
    who.addEventListener("change", () => { env.disabled = !who.value.startsWith("agent:"); });

    const queue = []; // {request, box}
    const views = [];
    let active = null;

    function enqueue() {
      const input = prompt.value.trim();
      if (!input) {
        fill(status, "write a prompt first");
        return;
      }
      const [kind, name] = who.value.split(/:(.*)/s);
      const request = {
        input, [kind]: name, thread: thread.value.trim() || "default",
        environment: kind === "agent" && env.value ? env.value : null,
        background: background.checked,
        max_tokens: maxTokens.value ? Number(maxTokens.value) : null,
      };
      const box = h("div", { class: "ji-queued" }, h("div", { class: "ji-note" }, `queued: ${input.slice(0, 60)}`));
      queueBox.prepend(box);
      queue.push({ request, box });
      prompt.value = "";
      pump();
    }

    async function pump() {
      fill(status, queue.length ? `${queue.length} waiting` : "");
      while (queue.length && (!active || queue[0].request.background)) {
        const next = queue.shift();
        fill(status, queue.length ? `${queue.length} waiting` : "");
        const started = start(next);
        if (!next.request.background) {
          active = started;
          started.finally(() => { active = null; pump(); });
        }
      }
    }

    async function start({ request, box }) {
      let answer;
      try {
        answer = await invoke(model, "run", request);
      } catch (error) {
        fill(box, h("div", { class: "ji-error" }, `could not start: ${error.message}`));
        return;
      }
      const sub = subModel(model, {
        interaction_ids: [answer.id], snapshots: answer.snapshot ? [answer.snapshot] : [], gateway: model.get("gateway"),
        follower: gateway ? "browser" : "kernel", thread: request.thread, label: "",
      });
      const ctl = new RunController(sub, { gateway });
      fill(box);
      const view = mountRunView(box, ctl);
      views.push({ ctl, sub, id: answer.id });
      // The page follows the run, or asks the kernel to (now that this view hears its events).
      if (gateway) ctl.start();
      else invoke(model, "follow", { id: answer.id }).catch((e) => { ctl.message = `the kernel could not follow this run: ${e.message}`; ctl.changed(); });
      // Done when the run ends (the queue's next waits for this).
      return new Promise((resolve) => {
        const paint = frameScheduler(() => {
          view.paint();
          const last = ctl.runs().at(-1);
          if (last && ended(last)) resolve();
        });
        ctl.subscribe(paint);
        view.paint();
      });
    }

    const onLists = () => pickers();
    for (const name of ["models", "agents", "environments"]) model.on(`change:${name}`, onLists);
    pickers();
    return () => {
      for (const name of ["models", "agents", "environments"]) model.off(`change:${name}`, onLists);
      for (const { ctl, sub, id } of views) {
        ctl.dispose();
        sub.close();
        if (!gateway) invoke(model, "unfollow", { id }).catch(() => {});
      }
    };
  },
};
