// Requests to the kernel side of a widget: id-keyed custom messages answered by
// {type: "reply", id, result, error} (binary results ride in the message's buffers).

export class KernelError extends Error {}

const pending = new WeakMap(); // model -> Map(id -> {resolve, reject})

function table(model) {
  let calls = pending.get(model);
  if (!calls) {
    calls = new Map();
    pending.set(model, calls);
    model.on("msg:custom", (msg, buffers) => {
      if (!msg || msg.type !== "reply") return;
      const call = calls.get(msg.id);
      if (!call) return;
      calls.delete(msg.id);
      if (msg.error) call.reject(new KernelError(msg.error));
      else call.resolve(buffers && buffers.length ? { ...msg.result, buffer: toBytes(buffers[0]) } : msg.result);
    });
  }
  return calls;
}

function toBytes(view) {
  if (view instanceof Uint8Array) return view;
  if (view instanceof ArrayBuffer) return new Uint8Array(view);
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

let counter = 0;

/** Ask the kernel side of `model` to run `method(args)`; resolves with its result. */
export function invoke(model, method, args = {}, { timeout = 60000 } = {}) {
  const calls = table(model);
  const id = `c${++counter}`;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      calls.delete(id);
      reject(new KernelError(`the kernel did not answer ${method} (busy, or restarted?)`));
    }, timeout);
    calls.set(id, {
      resolve: (v) => { clearTimeout(timer); resolve(v); },
      reject: (e) => { clearTimeout(timer); reject(e); },
    });
    model.send({ type: "call", id, method, args });
  });
}
