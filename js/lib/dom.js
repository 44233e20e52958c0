// Tiny DOM helpers shared by the widgets (no framework: the views are small and keyed).

/** Create an element: h("div", {class: "x", onclick: fn}, child, "text", ...). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value == null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") el.addEventListener(name.slice(2), value);
    else if (name === "class") el.className = value;
    else if (name === "html") el.innerHTML = value;
    else if (name === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child == null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** "1.2 s", "3 min 4 s": a duration in milliseconds, for people. */
export function duration(ms) {
  if (ms == null || !Number.isFinite(ms) || ms < 0) return "";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** "1.5 KB": a size in bytes, for people. */
export function size(bytes) {
  if (bytes == null || !Number.isFinite(Number(bytes))) return "";
  const n = Number(bytes);
  if (n < 1024) return `${n} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let value = n / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

/** Milliseconds since the epoch of an RFC 3339 time, or null. */
export function epoch(time) {
  if (!time) return null;
  const t = Date.parse(time);
  return Number.isNaN(t) ? null : t;
}

/** A short local time for a server timestamp: "14:03:22". */
export function clock(time) {
  const t = epoch(time);
  return t == null ? "" : new Date(t).toLocaleTimeString([], { hour12: false });
}

/** Coalesce repaints: `schedule()` runs `paint` once on the next animation frame. */
export function frameScheduler(paint, raf = globalThis.requestAnimationFrame || ((f) => setTimeout(f, 16))) {
  let queued = false;
  return () => {
    if (queued) return;
    queued = true;
    raf(() => {
      queued = false;
      paint();
    });
  };
}
