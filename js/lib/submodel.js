// A run view inside another widget (the job board's Open, the panel's runs): a model-like
// object with its own traits that borrows its parent's comm for calls and pushed events.

export function subModel(parent, traits) {
  const handlers = new Map();
  const own = { ...traits };
  const forward = (msg, buffers) => {
    for (const fn of handlers.get("msg:custom") || []) fn(msg, buffers);
  };
  parent.on("msg:custom", forward);
  return {
    get: (name) => own[name],
    set(name, value) {
      own[name] = value;
      for (const fn of handlers.get(`change:${name}`) || []) fn();
    },
    on(name, fn) {
      if (!handlers.has(name)) handlers.set(name, new Set());
      handlers.get(name).add(fn);
    },
    off(name, fn) {
      handlers.get(name)?.delete(fn);
    },
    send: (content, callbacks, buffers) => parent.send(content, callbacks, buffers),
    close: () => parent.off("msg:custom", forward),
  };
}
