import type { ParsedToolCall } from './tool-parser.ts';

/** A function name as tools may declare one (the request schema's rule): letters, digits, _ . or -. */
export const TOOL_NAME = /^[A-Za-z0-9_.-]{1,128}$/;

/**
 * Every match of the global `pattern` in `text`, or null when there is none or anything but whitespace lies before,
 * between or after them: text that is a run of calls and nothing else.
 */
export function wholeMatches(text: string, pattern: RegExp): RegExpMatchArray[] | null {
  const matches = [...text.matchAll(pattern)];
  let end = 0;
  for (const m of matches) {
    if (text.slice(end, m.index).trim()) return null;
    end = m.index! + m[0].length;
  }
  return matches.length > 0 && !text.slice(end).trim() ? matches : null;
}

/** obj[key] = value as an own property, whatever the key ("__proto__" included). */
export function setOwn(obj: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `text` read as a JSON object, or null when it is not one. */
export function jsonObject(text: string): Record<string, unknown> | null {
  try {
    const value = JSON.parse(text);
    return isObject(value) ? value : null;
  } catch {
    return null;
  }
}

/** A JSON call object as a call: its name, and its `arguments` (Llama: `parameters`), JSON text parsed; else null. */
export function asCall(item: unknown): ParsedToolCall | null {
  if (!isObject(item) || typeof item.name !== 'string') return null;
  let args = item.arguments ?? item.parameters ?? {};
  if (typeof args === 'string') {
    try {
      args = JSON.parse(args);
    } catch {
      return null;
    }
  }
  return isObject(args) ? { name: item.name, arguments: args } : null;
}
