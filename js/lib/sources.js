// Where a widget reads from: the gateway straight from the page (same origin, when the kernel
// says the page may and the page can reach it), else the kernel, through id-keyed calls.
import { BrowserGateway, pageBaseUrl } from "./gateway.js";
import { invoke } from "./kernel.js";

/** The page's gateway for a widget whose `gateway` trait is a path under the page's base
 * URL (e.g. "interactions/"), or null when the page has none. */
export function pageGateway(model, doc = globalThis.document) {
  const path = model.get("gateway");
  const base = pageBaseUrl(doc);
  if (!path || base == null) return null;
  return new BrowserGateway(base + path, { doc });
}

/** File operations through the kernel (works wherever widgets do). */
export function kernelFiles(model) {
  return {
    list: (env) => invoke(model, "files", { env }).then((r) => r.files),
    read: (env, path) => invoke(model, "read", { env, path }).then((r) => r.buffer || new Uint8Array()),
    copy: (env, path, overwrite) => invoke(model, "copy", { env, path, overwrite }),
  };
}

/** File operations from the page, copying through the kernel (it knows the notebook's folder). */
export function browserFiles(model, gateway) {
  const kernel = kernelFiles(model);
  return {
    list: (env) => gateway.files(env),
    read: (env, path) => gateway.read(env, path),
    copy: kernel.copy,
  };
}
