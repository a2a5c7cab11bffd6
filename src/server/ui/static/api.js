/**
 * Calls to the server's APIs. The page lives at <server>/ui/, so API paths resolve against the folder above it
 * (a proxy may serve pagoda under a prefix). With an API key set, every call carries it; a 401 asks for the key
 * (once for all calls waiting on it), keeps it for this tab in sessionStorage, and tries again.
 */

const KEY = 'pagoda.apiKey';
const base = new URL('../', location.href);

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** @type {(message: string) => Promise<string | null>} */
let askKey = async () => null;
let pendingKey = null;
// After the user declines, calls fail without asking again (a page polling every second would nag) until the
// header's button asks.
let declined = false;
const keyListeners = new Set();

/** How the page asks for a key: `ask(message)` resolves to the key, or null when the user declines. */
export function setKeyPrompt(ask) {
  askKey = ask;
}

/** Called whenever the server is seen to want a key (to show a button to change it). */
export function onKeyNeeded(listener) {
  keyListeners.add(listener);
}

async function askForKey(message) {
  pendingKey ??= askKey(message).finally(() => {
    pendingKey = null;
  });
  const key = await pendingKey;
  if (key) sessionStorage.setItem(KEY, key);
  declined = !key;
  return Boolean(key);
}

/** Asks for a key now (the header's button); returns whether one was given. */
export function changeKey() {
  return askForKey('Enter the API key of this server.');
}

async function errorMessage(res) {
  const text = await res.text();
  try {
    const body = JSON.parse(text);
    // Ollama's routes answer {error: "..."}, OpenAI's {error: {message}}.
    return typeof body.error === 'string' ? body.error : (body.error?.message ?? text);
  } catch {
    return text || res.statusText;
  }
}

/**
 * fetch() of an API path (e.g. "api/tags"); resolves to an ok Response, else throws ApiError with the server's words.
 * @param {string} path
 * @param {{ method?: string, body?: unknown, signal?: AbortSignal }} [init]
 */
export async function api(path, { method = 'GET', body, signal } = {}) {
  for (;;) {
    /** @type {Record<string, string>} */
    const headers = {};
    const key = sessionStorage.getItem(KEY);
    if (key) headers.authorization = `Bearer ${key}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(new URL(path, base), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
    if (res.status !== 401) {
      if (!res.ok) throw new ApiError(res.status, await errorMessage(res));
      return res;
    }
    const message = await errorMessage(res);
    for (const listener of keyListeners) listener();
    if (declined || !(await askForKey(message))) throw new ApiError(401, message);
  }
}

export const getJson = async (path) => (await api(path)).json();
export const postJson = async (path, body, method = 'POST') => (await api(path, { method, body })).json();

/** The objects of an NDJSON response body as they arrive. */
export async function* ndjson(res) {
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buffer += value;
    const lines = buffer.split('\n');
    buffer = lines.pop();
    for (const line of lines) if (line.trim()) yield JSON.parse(line);
  }
  if (buffer.trim()) yield JSON.parse(buffer);
}
