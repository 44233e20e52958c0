import { describe, expect, it, vi } from "vitest";
import { parseCsv } from "../lib/csv.js";
import { mountFileBrowser, treeOrder } from "../lib/filebrowser.js";
import { preview, previewKind } from "../lib/preview.js";
import { fixture } from "./helpers.js";

const bytes = (text) => new TextEncoder().encode(text);
const PNG = Uint8Array.from(atob(fixture("agent_files").interaction.steps[4].result[1].data), (c) => c.charCodeAt(0));

describe("file previews per type", () => {
  it("CSV: a table of its first rows", () => {
    const csv = `x,square\n${Array.from({ length: 80 }, (_, i) => `${i},${i * i}`).join("\n")}\n`;
    const el = preview({ path: "data.csv", mime_type: "text/csv" }, bytes(csv));
    expect(el.dataset.kind).toBe("csv");
    expect([...el.querySelectorAll("th")].map((th) => th.textContent)).toEqual(["x", "square"]);
    expect(el.querySelectorAll("tbody tr")).toHaveLength(50);
    expect(el.querySelector("tbody tr:nth-child(3) td:nth-child(2)").textContent).toBe("4");
    expect(el.querySelector(".ji-note").textContent).toBe("first 50 rows");
  });

  it("CSV parsing: quotes, doubled quotes, CRLF", () => {
    expect(parseCsv('a,"b, c","say ""hi"""\r\n1,2,3').rows).toEqual([["a", "b, c", 'say "hi"'], ["1", "2", "3"]]);
  });

  it("images: an <img> of the file's bytes", () => {
    globalThis.URL.createObjectURL ||= () => "blob:x";
    const urls = [];
    const el = preview({ path: "plot.png", mime_type: "image/png" }, PNG, urls);
    expect(el.dataset.kind).toBe("image");
    expect(el.querySelector("img").getAttribute("alt")).toBe("plot.png");
    expect(urls).toHaveLength(1);
  });

  it("HTML: in a sandboxed iframe that runs no script", () => {
    const el = preview({ path: "report.html", mime_type: "text/html" }, bytes("<h1>Hi</h1><script>parent.x=1</script>"));
    const frame = el.querySelector("iframe");
    expect(frame.getAttribute("sandbox")).toBe("");
    expect(frame.getAttribute("srcdoc")).toContain("<h1>Hi</h1>");
  });

  it("text and code: highlighted", () => {
    const el = preview({ path: "main.py", mime_type: "text/x-python" }, bytes("import os\n"));
    expect(el.dataset.kind).toBe("text");
    expect(el.querySelector(".hljs-keyword").textContent).toBe("import");
  });

  it("other files: no preview, a download", () => {
    const el = preview({ path: "model.bin", mime_type: "application/octet-stream" }, Uint8Array.from([0, 1, 2, 0]));
    expect(el.dataset.kind).toBe("binary");
    expect(el.textContent).toContain("use Download");
  });

  it("kinds by name and type", () => {
    expect(previewKind("a/b.CSV")).toBe("csv");
    expect(previewKind("x.svg")).toBe("image");
    expect(previewKind("notes", "", bytes("plain words"))).toBe("text");
  });
});

describe("the file browser", () => {
  const entries = [
    { name: "plot.png", path: "plot.png", type: "file", size_bytes: String(PNG.length), mime_type: "image/png", modified: "2026-12-02T02:20:30Z" },
    { name: "sub", path: "sub", type: "directory", size_bytes: "0", mime_type: "", modified: "2026-12-02T02:20:30Z" },
    { name: "data.csv", path: "data.csv", type: "file", size_bytes: "40", mime_type: "text/csv", modified: "2026-12-02T02:20:29Z" },
    { name: "a.txt", path: "sub/a.txt", type: "file", size_bytes: "2", mime_type: "text/plain", modified: "2026-12-02T02:20:29Z" },
  ];

  it("orders the tree: directories first, each before its contents", () => {
    expect(treeOrder(entries).map((e) => e.path)).toEqual(["sub", "sub/a.txt", "data.csv", "plot.png"]);
  });

  it("lists with sizes, previews a selection, and asks before overwriting", async () => {
    const copies = [];
    const source = {
      list: async () => entries,
      read: async (env, path) => (path === "data.csv" ? bytes("x,square\n0,0\n1,1\n") : PNG),
      copy: async (env, path, overwrite) => {
        copies.push({ env, path, overwrite });
        if (!overwrite) throw new Error(`${path} exists in the notebook's folder`);
        return { path };
      },
    };
    const el = document.createElement("div");
    mountFileBrowser(el, { source, env: "env_1" });
    await vi.waitFor(() => expect(el.querySelectorAll(".ji-file")).toHaveLength(4));
    const csv = el.querySelector('[data-path="data.csv"]');
    expect(csv.querySelector(".ji-file-size").textContent).toBe("40 B");
    csv.click();
    await vi.waitFor(() => expect(el.querySelector(".ji-preview-csv table")).not.toBeNull());
    const copy = [...el.querySelectorAll("button")].find((b) => b.textContent === "Copy to notebook folder");
    copy.click();
    await vi.waitFor(() => expect([...el.querySelectorAll("button")].some((b) => b.textContent === "Overwrite")).toBe(true));
    expect(copies).toEqual([{ env: "env_1", path: "data.csv", overwrite: false }]);
    [...el.querySelectorAll("button")].find((b) => b.textContent === "Overwrite").click();
    await vi.waitFor(() => expect(el.textContent).toContain("copied to data.csv"));
    expect(copies[1].overwrite).toBe(true);
  });
});
