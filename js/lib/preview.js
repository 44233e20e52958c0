// File previews by type: text and code (highlighted), CSV as a table of its first rows,
// images, HTML in a sandboxed iframe (no scripts), anything else as a download.
import { parseCsv } from "./csv.js";
import { h, size } from "./dom.js";
import { highlight, languageOf } from "./markdown.js";

export const PREVIEW_BYTES = 256 * 1024; // text shown at most; the download has it all
const IMAGE = /^image\/(png|jpeg|gif|webp|svg\+xml|bmp)$/;
const TEXT_EXT = new Set(["txt", "md", "py", "sh", "js", "mjs", "json", "sql", "yml", "yaml",
  "toml", "cfg", "ini", "log", "xml", "r", "c", "h", "cpp", "rs", "go", "java", "ts", "tsv"]);

/** What kind of preview a file gets: "csv" | "image" | "html" | "text" | "binary". */
export function previewKind(path, mimeType = "", bytes = null) {
  const ext = (path.split(".").pop() || "").toLowerCase();
  const mime = (mimeType || "").toLowerCase();
  if (ext === "csv" || mime === "text/csv") return "csv";
  if (IMAGE.test(mime) || ["png", "jpg", "jpeg", "gif", "webp", "svg", "bmp"].includes(ext)) return "image";
  if (ext === "html" || ext === "htm" || mime === "text/html") return "html";
  if (mime.startsWith("text/") || TEXT_EXT.has(ext) || mime === "application/json") return "text";
  if (bytes && looksLikeText(bytes)) return "text";
  return "binary";
}

function looksLikeText(bytes) {
  const head = bytes.subarray(0, 4096);
  if (head.includes(0)) return false;
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(head);
    return true;
  } catch {
    return false;
  }
}

function mimeOf(path, mimeType) {
  if (mimeType && mimeType !== "application/octet-stream") return mimeType;
  const ext = (path.split(".").pop() || "").toLowerCase();
  return { png: "image/png", jpg: "image/jpeg", jpeg: "image/jpeg", gif: "image/gif", webp: "image/webp",
    svg: "image/svg+xml", bmp: "image/bmp", html: "text/html", htm: "text/html", csv: "text/csv" }[ext] || "application/octet-stream";
}

/** A Blob of a file's bytes with its type (for downloads and images). */
export function blobOf(bytes, path, mimeType) {
  return new Blob([bytes], { type: mimeOf(path, mimeType) });
}

/** The preview element for a file's bytes. `urls` collects object URLs to revoke later. */
export function preview(file, bytes, urls = []) {
  const kind = previewKind(file.path, file.mime_type, bytes);
  const text = () => new TextDecoder().decode(bytes.subarray(0, PREVIEW_BYTES));
  const cut = bytes.length > PREVIEW_BYTES ? h("div", { class: "ji-note" }, `first ${size(PREVIEW_BYTES)} of ${size(bytes.length)}`) : null;
  if (kind === "csv") {
    const { rows, truncated } = parseCsv(text(), 51);
    const [head = [], ...body] = rows;
    return h("div", { class: "ji-preview ji-preview-csv", dataset: { kind } },
      h("table", { class: "ji-table" },
        h("thead", {}, h("tr", {}, head.map((c) => h("th", {}, c)))),
        h("tbody", {}, body.map((r) => h("tr", {}, r.map((c) => h("td", {}, c)))))),
      truncated || cut ? h("div", { class: "ji-note" }, `first ${body.length} rows`) : null);
  }
  if (kind === "image") {
    const url = URL.createObjectURL(blobOf(bytes, file.path, file.mime_type));
    urls.push(url);
    return h("div", { class: "ji-preview ji-preview-image", dataset: { kind } }, h("img", { src: url, alt: file.path }));
  }
  if (kind === "html") {
    // No allow-scripts, no allow-same-origin: the page is shown, never run.
    return h("div", { class: "ji-preview ji-preview-html", dataset: { kind } },
      h("iframe", { sandbox: "", srcdoc: text(), title: file.path, referrerpolicy: "no-referrer" }), cut);
  }
  if (kind === "text") {
    return h("div", { class: "ji-preview ji-preview-text", dataset: { kind } },
      h("pre", { class: "ji-code hljs" }, h("code", { html: highlight(text(), languageOf(file.path)) })), cut);
  }
  return h("div", { class: "ji-preview ji-preview-binary", dataset: { kind } },
    h("div", { class: "ji-note" }, `${file.mime_type || "binary file"}, ${size(bytes.length)}: no preview; use Download`));
}
