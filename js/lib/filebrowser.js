// The file browser: an environment's tree with sizes and times, a preview of the selected
// file, Download (to the browser) and Copy to the notebook's folder (never overwriting
// without asking). `source` lists and reads (the gateway from the page, or the kernel).
import { blobOf, preview } from "./preview.js";
import { clock, fill, h, size } from "./dom.js";

function depth(path) {
  return path.split("/").length - 1;
}

/** Entries in tree order: each directory before its contents, names sorted. */
export function treeOrder(entries) {
  return [...entries].sort((a, b) => {
    const pa = a.path.split("/");
    const pb = b.path.split("/");
    for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
      if (pa[i] !== pb[i]) {
        const aDir = i < pa.length - 1 || a.type === "directory";
        const bDir = i < pb.length - 1 || b.type === "directory";
        if (aDir !== bDir) return aDir ? -1 : 1;
        return pa[i] < pb[i] ? -1 : 1;
      }
    }
    return pa.length - pb.length;
  });
}

export function mountFileBrowser(el, { source, env, title = null }) {
  const state = { entries: [], selected: null, error: null, loading: false, note: null, urls: [], shown: null };
  const list = h("div", { class: "ji-files-list", role: "listbox", "aria-label": "files" });
  const pane = h("div", { class: "ji-files-preview" });
  const status = h("span", { class: "ji-note ji-files-status" });
  const root = h("div", { class: "ji-files", dataset: { env } },
    h("div", { class: "ji-toolbar" },
      h("span", { class: "ji-title" }, title || `Files of ${env}`),
      status,
      h("button", { class: "ji-button", type: "button", onclick: () => refresh() }, "Refresh")),
    h("div", { class: "ji-files-body" }, list, pane));
  el.append(root);

  function paintList() {
    const rows = treeOrder(state.entries).map((entry) =>
      h("div", {
        class: `ji-file${entry.type === "directory" ? " ji-dir" : ""}${state.selected === entry.path ? " ji-selected" : ""}`,
        role: "option", tabindex: entry.type === "directory" ? null : 0, "aria-selected": state.selected === entry.path,
        dataset: { path: entry.path, type: entry.type },
        style: `padding-left: ${0.5 + depth(entry.path) * 1.1}em`,
        onclick: () => entry.type !== "directory" && select(entry.path),
        onkeydown: (e) => (e.key === "Enter" || e.key === " ") && entry.type !== "directory" && (e.preventDefault(), select(entry.path)),
      },
      h("span", { class: "ji-file-name" }, (entry.type === "directory" ? "▸ " : "") + entry.name),
      h("span", { class: "ji-file-size" }, entry.type === "directory" ? "" : size(entry.size_bytes)),
      h("span", { class: "ji-file-time" }, clock(entry.modified))));
    fill(list, rows.length ? rows : h("div", { class: "ji-note" }, state.loading ? "loading…" : "no files yet"));
    fill(status, state.error ? `error: ${state.error}` : `${state.entries.filter((e) => e.type !== "directory").length} files`);
  }

  async function refresh() {
    state.loading = true;
    try {
      state.entries = await source.list(env);
      state.error = null;
    } catch (error) {
      state.error = error.message;
    }
    state.loading = false;
    paintList();
    const current = state.entries.find((e) => e.path === state.selected);
    if (current && state.shown && current.modified !== state.shown.modified) select(current.path);
  }

  async function select(path) {
    state.selected = path;
    paintList();
    const file = state.entries.find((e) => e.path === path);
    if (!file) return;
    fill(pane, h("div", { class: "ji-note" }, `loading ${path}…`));
    let bytes;
    try {
      bytes = await source.read(env, path);
    } catch (error) {
      fill(pane, h("div", { class: "ji-error" }, `could not read ${path}: ${error.message}`));
      return;
    }
    for (const url of state.urls.splice(0)) URL.revokeObjectURL(url);
    state.shown = file;
    const message = h("span", { class: "ji-note", role: "status" });
    fill(pane,
      h("div", { class: "ji-toolbar" },
        h("span", { class: "ji-title" }, path),
        h("span", { class: "ji-note" }, `${size(bytes.length)} · ${clock(file.modified)}`),
        h("button", { class: "ji-button", type: "button", onclick: () => download(file, bytes) }, "Download"),
        source.copy ? h("button", { class: "ji-button", type: "button", onclick: () => copy(file, false, message) }, "Copy to notebook folder") : null,
        message),
      preview(file, bytes, state.urls));
  }

  function download(file, bytes) {
    const url = URL.createObjectURL(blobOf(bytes, file.path, file.mime_type));
    const link = h("a", { href: url, download: file.name || file.path.split("/").pop() });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  async function copy(file, overwrite, message) {
    fill(message, "copying…");
    try {
      const done = await source.copy(env, file.path, overwrite);
      fill(message, `copied to ${done.path}`);
    } catch (error) {
      if (/exists/.test(error.message) && !overwrite) {
        fill(message, `${error.message} `,
          h("button", { class: "ji-button ji-danger", type: "button", onclick: () => copy(file, true, message) }, "Overwrite"));
      } else {
        fill(message, `could not copy: ${error.message}`);
      }
    }
  }

  paintList();
  refresh();
  return {
    refresh,
    select,
    dispose() {
      for (const url of state.urls.splice(0)) URL.revokeObjectURL(url);
      root.remove();
    },
  };
}
