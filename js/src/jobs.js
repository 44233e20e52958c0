// The job board (`%interactions jobs`): this notebook's background jobs, live, with Cancel
// and Open (a run view below the table). It follows the gateway's stream of the session's
// job changes (from the page when it can, else the kernel does and sets `rows`), so it is
// right after a kernel restart or a reload; nothing polls.
import { clock, duration, epoch, fill, frameScheduler, h } from "../lib/dom.js";
import { pageFeed, running } from "../lib/jobfeed.js";
import { invoke } from "../lib/kernel.js";
import { mountRunView } from "../lib/runview.js";
import { statusChip } from "../lib/runview.js";
import { pageGateway } from "../lib/sources.js";
import { subModel } from "../lib/submodel.js";
import { RunController } from "./run.js";

const TICK_MS = 1000; // the elapsed column's clock, while a job runs (no network)

export default {
  render({ model, el }) {
    const gateway = model.get("follower") === "browser" ? pageGateway(model) : null;
    let rows = model.get("rows") || [];
    let asOf = model.get("as_of");
    let message = "";
    let opened = null; // {id, ctl, view, sub}
    const body = h("tbody");
    const note = h("span", { class: "ji-note" });
    const runBox = h("div", { class: "ji-open-run" });
    const root = h("div", { class: "ji-jobs" },
      h("div", { class: "ji-toolbar" }, h("span", { class: "ji-title" }, "Background jobs"), note),
      h("table", { class: "ji-table" },
        h("thead", {}, h("tr", {}, ["status", "job", "thread", "model/agent", "steps", "tokens", "elapsed", ""].map((c) => h("th", {}, c)))),
        body),
      runBox);
    el.append(root);

    function elapsed(row) {
      const start = epoch(row.created);
      if (start == null) return "";
      const end = running(row) ? Date.now() : epoch(row.updated) ?? Date.now();
      return duration(Math.max(0, end - start));
    }

    async function cancel(row) {
      message = `cancelling ${row.id}…`;
      paint();
      try {
        if (gateway) await gateway.cancel(row.id);
        else await invoke(model, "cancel", { id: row.id });
        message = `asked ${row.id} to stop`;
      } catch (error) {
        message = `could not cancel ${row.id}: ${error.message}`;
      }
      paint(); // the row itself changes when the gateway says so
    }

    /** Close the opened run; the kernel stops following it for this board. */
    function closeOpened() {
      opened.ctl.dispose();
      opened.sub.close();
      if (!gateway) invoke(model, "unfollow", { id: opened.id }).catch(() => {});
      opened = null;
    }

    function open(row) {
      if (opened) {
        const same = opened.id === row.id;
        closeOpened();
        fill(runBox);
        if (same) return paint();
      }
      const sub = subModel(model, {
        interaction_ids: [row.id], snapshots: [], gateway: model.get("gateway"),
        follower: gateway ? "browser" : "kernel", thread: row.thread, label: "",
      });
      const ctl = new RunController(sub, { gateway });
      const view = mountRunView(runBox, ctl);
      ctl.subscribe(frameScheduler(view.paint));
      opened = { id: row.id, ctl, sub };
      if (gateway) ctl.start();
      else invoke(model, "follow", { id: row.id }).catch((e) => { message = e.message; paint(); });
      // The job's story so far, whoever follows it: one GET, then the stream from there on.
      ctl.fetchWhole(ctl.run(row.id));
      view.paint();
      paint();
    }

    function paint() {
      fill(body, rows.map((row) =>
        h("tr", { dataset: { job: row.id, status: row.status || "queued" } },
          h("td", {}, statusChip(row.status)),
          h("td", {}, h("code", {}, row.id)),
          h("td", {}, row.thread || ""),
          h("td", {}, row.agent || row.model || ""),
          h("td", { class: "ji-steps" }, row.steps ?? ""),
          h("td", { class: "ji-tokens" }, row.tokens ? row.tokens.toLocaleString() : ""),
          h("td", {}, elapsed(row)),
          h("td", {},
            running(row) ? h("button", { class: "ji-button ji-cancel", type: "button", onclick: () => cancel(row) }, "Cancel") : null,
            " ",
            h("button", { class: "ji-button ji-open", type: "button", "aria-pressed": String(opened?.id === row.id), onclick: () => open(row) }, opened?.id === row.id ? "Close" : "Open")))));
      if (!rows.length) fill(body, h("tr", {}, h("td", { colspan: 8, class: "ji-note" }, "no background jobs in this notebook")));
      fill(note, [message, asOf ? `as of ${clock(asOf)}` : ""].filter(Boolean).join(" · "));
    }

    const onRows = () => { rows = model.get("rows") || []; asOf = model.get("as_of"); paint(); };
    model.on("change:rows", onRows);
    model.on("change:as_of", onRows);
    let unsubscribe = null;
    if (gateway) {
      const feed = pageFeed(gateway, model.get("session_key"));
      unsubscribe = feed.subscribe(() => {
        if (feed.error) message = `could not read the gateway: ${feed.error.message}`;
        else if (message.startsWith("could not read")) message = "";
        if (feed.rows && feed.rows !== rows) {
          // What the page saw is what a saved notebook keeps. The time goes first: setting
          // `rows` calls onRows at once, which reads both back from the model.
          model.set("as_of", new Date().toISOString());
          model.set("rows", feed.rows);
          model.save_changes && model.save_changes();
        }
        paint();
      });
    }
    const timer = setInterval(() => { if (rows.some(running)) paint(); }, TICK_MS);
    paint();
    return () => {
      clearInterval(timer);
      if (unsubscribe) unsubscribe();
      model.off("change:rows", onRows);
      model.off("change:as_of", onRows);
      if (opened) closeOpened();
    };
  },
};
