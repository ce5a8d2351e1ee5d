// The API as the console uses it: every request carries the key from session storage as a
// bearer token (never in a URL or a cookie); event streams are read with fetch, since
// EventSource cannot send an Authorization header.

const KEY = "groundwire.key";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || `HTTP ${status}`);
    this.status = status;
    this.code = code;
  }
}

export const session = {
  key: () => sessionStorage.getItem(KEY),
  set: (value) => sessionStorage.setItem(KEY, value),
  clear: () => sessionStorage.removeItem(KEY),
};

let onUnauthorised = () => {};
export function whenUnauthorised(handler) { onUnauthorised = handler; }

function headers(extra = {}) {
  return { Authorization: `Bearer ${session.key()}`, ...extra };
}

export async function api(method, path, body, { signal, raw } = {}) {
  const init = { method, headers: headers(), signal };
  if (body instanceof FormData) {
    init.body = body;
  } else if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (response.status === 401) {
    onUnauthorised();
    throw new ApiError(401, "unauthorised", "the key was refused");
  }
  if (raw && response.ok) return response;
  const data = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) {
    const error = (data && data.error) || {};
    throw new ApiError(response.status, error.code, error.message);
  }
  return data;
}

export const get = (path, options) => api("GET", path, undefined, options);
export const post = (path, body, options) => api("POST", path, body, options);
export const del = (path) => api("DELETE", path);
export const enc = encodeURIComponent;

// Server-sent events over fetch: calls `handle({event, data, id})` for each event; reconnects
// with Last-Event-ID after a dropped connection until `signal` aborts or an event of the
// type `last` has come (a batch's stream closes after `finished`); `onopen` is called each
// time the stream is (again) connected.
export async function stream(path, handle, { signal, last = null, onopen = () => {} } = {}) {
  let lastId = null;
  let delay = 500;
  while (!signal.aborted) {
    try {
      const extra = { Accept: "text/event-stream" };
      if (lastId !== null) extra["Last-Event-ID"] = lastId;
      const response = await fetch(path, { headers: headers(extra), signal });
      if (response.status === 401) { onUnauthorised(); return; }
      if (!response.ok) throw new ApiError(response.status);
      delay = 500;
      onopen();
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const event = { event: "message", data: "", id: null };
          for (const line of block.split("\n")) {
            if (line.startsWith(":")) continue;
            const colon = line.indexOf(":");
            const field = colon < 0 ? line : line.slice(0, colon);
            const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
            if (field === "data") event.data += (event.data ? "\n" : "") + text;
            else if (field === "event") event.event = text;
            else if (field === "id") event.id = text;
          }
          if (event.id !== null) lastId = event.id;
          if (event.data) handle({ ...event, data: JSON.parse(event.data) });
          if (last !== null && event.event === last) return;
        }
      }
    } catch (error) {
      if (signal.aborted) return;
      if (error instanceof ApiError && error.status < 500) throw error;
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 10000);
  }
}
