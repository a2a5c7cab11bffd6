import { heldBackLength } from '../util/held-back.ts';
import { looksPythonic, parsePythonicCalls } from './pythonic-calls.ts';

/** A parsed tool call: the function's name and its arguments as a JSON object. */
export interface ParsedToolCall {
  name: string;
  arguments: Record<string, unknown>;
}

/**
 * How a model writes tool calls: the text that opens one (and closes it, if anything does), or none when a call is
 * bare JSON at the start of the output (Llama 3.x). The JSON is an object with `name` and `arguments` (or Llama's
 * `parameters`), a list of them, or Mistral's newer `name[ARGS]{…}`; a list of Python-style calls
 * (`[name(key=value)]`, pythonic-calls.ts) is read wherever a JSON list would be.
 */
export interface ToolCallFormat {
  name: string;
  start: string | null;
  end: string | null;
  /** JSON first in the output is a call too (Llama 3.x, templates whose calls have no tag, forced tool choice). */
  bare?: boolean;
  /**
   * The JSON schema type of each function's parameters (function name → parameter → type), for calls written as
   * text rather than JSON (Qwen3-Coder's `<parameter=…>`), whose values the schema types.
   */
  parameterTypes?: ReadonlyMap<string, ReadonlyMap<string, string>>;
}

export const HERMES: ToolCallFormat = { name: 'hermes', start: '<tool_call>', end: '</tool_call>' };
export const MISTRAL: ToolCallFormat = { name: 'mistral', start: '[TOOL_CALLS]', end: null };
/** Llama 3.x: `<|python_tag|>` may open the call; bare JSON at the start of the output is one too. */
export const LLAMA3_JSON: ToolCallFormat = { name: 'llama3_json', start: '<|python_tag|>', end: null, bare: true };
/**
 * DeepSeek V3 and R1 (and R1's distilled models): `<｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME` then the arguments
 * in a json code fence, each call closed by `<｜tool▁call▁end｜>`; V3.1 writes `NAME<｜tool▁sep｜>{…}` instead.
 */
export const DEEPSEEK: ToolCallFormat = {
  name: 'deepseek',
  start: '<｜tool▁calls▁begin｜>',
  end: '<｜tool▁calls▁end｜>',
};
/** tool_choice "required" or a named function: the output is a JSON list of calls, held to it by a grammar. */
export const FORCED_JSON: ToolCallFormat = { name: 'forced', start: null, end: null, bare: true };

/**
 * The format a chat template's tool calls use, from the text it writes around them; null if it renders none.
 * `goTag` is the tag of a Go template's `{{ if .ToolCalls }}` block by Ollama's rule ('' for bare JSON), when it has one.
 */
export function toolCallFormatOf(templateSource: string, goTag: string | null = null): ToolCallFormat | null {
  if (goTag !== null) {
    if (goTag === '') return { name: 'template', start: null, end: null, bare: true };
    return { name: 'template', start: goTag, end: goTag === '<tool_call>' ? '</tool_call>' : null };
  }
  if (templateSource.includes('<tool_call>')) return HERMES;
  if (templateSource.includes('[TOOL_CALLS]')) return MISTRAL;
  if (templateSource.includes(DEEPSEEK.start!)) return DEEPSEEK;
  if (/<\|python_tag\|>|"parameters"|<\|start_header_id\|>/.test(templateSource) && /\btools\b/.test(templateSource)) {
    return LLAMA3_JSON;
  }
  return null;
}

/** Calls in `body` (the text after the opening tag), or null when it is not a call. */
export function parseCallBody(body: string, format?: ToolCallFormat): ParsedToolCall[] | null {
  const text = body.trim();
  if (text.startsWith('<function=')) return parseXmlCalls(text, format?.parameterTypes);
  if (text.startsWith(DEEPSEEK_CALL)) return parseDeepSeekCalls(text);
  if (looksPythonic(text)) return parsePythonicCalls(text);
  const mistral = /^([A-Za-z0-9_.-]+)\[ARGS\]/.exec(text);
  if (mistral) {
    const args = parseJsonPrefix(text.slice(mistral[0].length));
    if (!args || !isObject(args.value)) return null;
    const rest = args.rest.trim();
    const more = rest.startsWith(MISTRAL.start!) ? parseCallBody(rest.slice(MISTRAL.start!.length)) : rest ? null : [];
    return more && [{ name: mistral[1]!, arguments: args.value }, ...more];
  }
  const calls: ParsedToolCall[] = [];
  // Calls may be separated by ',' (a list whose '[' was part of the tag) or ';' (Llama 3.2); a tag's list ends in ']'.
  const skip = (t: string) => t.replace(/^[\s,;]+/, '');
  let rest = skip(text);
  while (rest && rest !== ']') {
    const parsed = parseJsonPrefix(rest);
    if (!parsed) return null;
    const items = Array.isArray(parsed.value) ? parsed.value : [parsed.value];
    for (const item of items) {
      const call = asCall(item);
      if (!call) return null;
      calls.push(call);
    }
    rest = skip(parsed.rest).trimEnd();
  }
  return calls.length > 0 ? calls : null;
}

const DEEPSEEK_CALL = '<｜tool▁call▁begin｜>';
const DEEPSEEK_CALLS = /<｜tool▁call▁begin｜>([\s\S]*?)<｜tool▁sep｜>([\s\S]*?)<｜tool▁call▁end｜>/g;

/** DeepSeek's calls (see DEEPSEEK): V3 / R1's `function`, the name and a json fence, or V3.1's name and JSON. */
function parseDeepSeekCalls(text: string): ParsedToolCall[] | null {
  const calls: ParsedToolCall[] = [];
  let end = 0;
  for (const m of text.matchAll(DEEPSEEK_CALLS)) {
    if (text.slice(end, m.index).trim()) return null;
    end = m.index + m[0].length;
    const fenced = m[1]!.trim() === 'function' && /^([^\n]+)\n```(?:json)?\n?([\s\S]*?)\n?```\s*$/.exec(m[2]!);
    const [name, json] = fenced ? [fenced[1]!, fenced[2]!] : [m[1]!, m[2]!];
    let args: unknown;
    try {
      args = JSON.parse(json);
    } catch {
      return null;
    }
    if (!isObject(args) || !name.trim()) return null;
    calls.push({ name: name.trim(), arguments: args });
  }
  return calls.length > 0 && !text.slice(end).trim() ? calls : null;
}

const XML_FUNCTION = /<function=([^>\n]+)>([\s\S]*?)<\/function>/g;
const XML_PARAMETER = /<parameter=([^>\n]+)>([\s\S]*?)<\/parameter>/g;

/**
 * Qwen3-Coder's calls: `<function=NAME>` then `<parameter=P>` value `</parameter>` for each argument, each value on
 * lines of its own (one newline trimmed each side). A value is text: the function's schema types it (as vLLM's
 * qwen3_coder parser does); a parameter the schema does not know stays a string.
 */
function parseXmlCalls(
  text: string,
  types: ReadonlyMap<string, ReadonlyMap<string, string>> | undefined,
): ParsedToolCall[] | null {
  const calls: ParsedToolCall[] = [];
  let end = 0;
  for (const fn of text.matchAll(XML_FUNCTION)) {
    if (text.slice(end, fn.index).trim()) return null;
    end = fn.index + fn[0].length;
    const name = fn[1]!.trim();
    const args: Record<string, unknown> = {};
    let inner = 0;
    for (const p of fn[2]!.matchAll(XML_PARAMETER)) {
      if (fn[2]!.slice(inner, p.index).trim()) return null;
      inner = p.index + p[0].length;
      const param = p[1]!.trim();
      args[param] = typedValue(p[2]!.replace(/^\n/, '').replace(/\n$/, ''), types?.get(name)?.get(param));
    }
    if (fn[2]!.slice(inner).trim()) return null;
    calls.push({ name, arguments: args });
  }
  return calls.length > 0 && !text.slice(end).trim() ? calls : null;
}

/** A text value as its schema type asks: numbers, booleans, JSON objects and arrays parsed; "null" is null. */
function typedValue(value: string, type: string | undefined): unknown {
  if (value.trim().toLowerCase() === 'null') return null;
  if (type === undefined || type === 'string') return value;
  const v = value.trim();
  if (type === 'integer') return /^-?\d+$/.test(v) ? Number(v) : value;
  if (type === 'number') return v !== '' && Number.isFinite(Number(v)) ? Number(v) : value;
  if (type === 'boolean') return v === 'true' ? true : v === 'false' ? false : value;
  try {
    return JSON.parse(v);
  } catch {
    return value;
  }
}

/** Each function's parameters' JSON schema types (the first that is not "null" where a list is given). */
export function parameterTypesOf(
  tools: readonly { function: { name: string; parameters?: Record<string, unknown> | null } }[],
): Map<string, Map<string, string>> {
  const byFunction = new Map<string, Map<string, string>>();
  for (const { function: fn } of tools) {
    const properties = fn.parameters?.properties;
    const types = new Map<string, string>();
    if (isObject(properties)) {
      for (const [param, schema] of Object.entries(properties)) {
        const type = isObject(schema) ? schema.type : undefined;
        const first = Array.isArray(type) ? type.find((t) => t !== 'null') : type;
        if (typeof first === 'string') types.set(param, first);
      }
    }
    byFunction.set(fn.name, types);
  }
  return byFunction;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function asCall(item: unknown): ParsedToolCall | null {
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

/** The first JSON value at the start of `text` and what follows it, or null. */
function parseJsonPrefix(text: string): { value: unknown; rest: string } | null {
  const open = text[0];
  if (open !== '{' && open !== '[') return null;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') {
      depth--;
      if (depth === 0) {
        try {
          return { value: JSON.parse(text.slice(0, i + 1)), rest: text.slice(i + 1) };
        } catch {
          return null;
        }
      }
    }
  }
  return null;
}

/**
 * Separates tool calls from content as the output streams. Content streams until something that may open a call
 * (the format's tag, or for Llama 3 a `{` first in the output); from there the text is held until the output ends,
 * then parsed: calls if it parses as calls, else it was content after all.
 */
export class ToolCallParser {
  private buffer = '';
  private sawContent = false;
  private inCall = false;
  private callText = '';

  constructor(private readonly format: ToolCallFormat) {}

  /** Content that is safe to stream now. */
  push(text: string): string {
    if (this.inCall) {
      this.callText += text;
      return '';
    }
    this.buffer += text;
    const start = this.format.start;
    const at = start ? this.buffer.indexOf(start) : -1;
    if (at >= 0) {
      const before = this.buffer.slice(0, at);
      this.enterCall(this.buffer.slice(at));
      return before;
    }
    if (!this.sawContent && this.format.bare) {
      const lead = this.buffer.trimStart();
      if (lead.startsWith('{') || lead.startsWith('[')) {
        this.enterCall(lead);
        return '';
      }
      if (!lead) return '';
    }
    const keep = start ? heldBackLength(this.buffer, [start]) : 0;
    const out = this.buffer.slice(0, this.buffer.length - keep);
    this.buffer = this.buffer.slice(this.buffer.length - keep);
    if (out.trim()) this.sawContent = true;
    return out;
  }

  /** Whether text is held that may yet turn out to be content (a possible tag, or a call that may not parse). */
  get holdsContent(): boolean {
    return this.inCall || this.buffer !== '';
  }

  /** At the end: the remaining content and the calls (none when the held text did not parse as calls). */
  finish(): { content: string; calls: ParsedToolCall[] } {
    if (!this.inCall) return { content: this.buffer, calls: [] };
    const { start, end } = this.format;
    const calls: ParsedToolCall[] = [];
    const text = this.callText;
    // Each call opens with the tag (hermes: <tool_call>{…}</tool_call> repeated); a Llama 3 call may have none.
    const pieces = start && text.startsWith(start) ? text.split(start).slice(1) : [text];
    for (const piece of pieces) {
      let body = piece;
      if (end) {
        const close = body.indexOf(end);
        if (close >= 0) body = body.slice(0, close);
      }
      if (!body.trim()) continue;
      const parsed = parseCallBody(body, this.format);
      if (!parsed) return { content: text, calls: [] };
      calls.push(...parsed);
    }
    return { content: '', calls };
  }

  private enterCall(text: string): void {
    this.inCall = true;
    this.callText = text;
    this.buffer = '';
  }
}
