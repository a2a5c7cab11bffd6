import { heldBackLength } from '../util/held-back.ts';
import { type CallEvent, CallLog, type ToolCall, type WrittenCall } from './call-log.ts';
import { CallPieces, type CallTags, firstOpening } from './call-pieces.ts';
import { CallStream } from './call-stream.ts';
import { asCall, isObject } from './call-text.ts';
import { DEEPSEEK_CALL, parseDeepSeekCalls } from './deepseek-calls.ts';
import { parseGlmCall } from './glm-calls.ts';
import { KIMI_CALL, parseKimiCalls } from './kimi-calls.ts';
import { looksPythonic, parseCallSequence, parsePythonicCalls } from './pythonic-calls.ts';
import { type ParameterTypes, parseXmlCalls } from './xml-calls.ts';

/** A parsed tool call: the function's name and its arguments as a JSON object. */
export interface ParsedToolCall {
  name: string;
  arguments: Record<string, unknown>;
}

/**
 * How a model writes tool calls: the tags that open one (each with the tag that closes it, if anything does), or none
 * when a call is bare JSON at the start of the output (Llama 3.x). The JSON is an object with `name` and `arguments`
 * (or Llama's `parameters`), a list of them, or Mistral's newer `name[ARGS]{…}`; a list of Python-style calls
 * (`[name(key=value)]`, pythonic-calls.ts) is read wherever a JSON list would be.
 */
export interface ToolCallFormat {
  name: string;
  /** The tags that open calls (a model may write any of them), the first one written opening the call text. */
  tags: readonly CallTags[];
  /** JSON first in the output is a call too (Llama 3.x, templates whose calls have no tag, forced tool choice). */
  bare?: boolean;
  /**
   * The JSON schema type of each function's parameters (function name → parameter → type), for calls written as
   * text rather than JSON (Qwen3-Coder's `<parameter=…>`, GLM's `<arg_value>`), whose values the schema types.
   */
  parameterTypes?: ParameterTypes;
  /**
   * Reads each body whole, where its first characters do not tell its form (GLM 4.5's call: a name, then argument
   * pairs): a stream is told its calls as the body's closing tag is read.
   */
  readBody?: (body: string, types: ParameterTypes | undefined) => ParsedToolCall[] | null;
}

const MISTRAL_TAG = '[TOOL_CALLS]';

export const HERMES: ToolCallFormat = { name: 'hermes', tags: [{ start: '<tool_call>', end: '</tool_call>' }] };
export const MISTRAL: ToolCallFormat = { name: 'mistral', tags: [{ start: MISTRAL_TAG, end: null }] };
/** Llama 3.x: `<|python_tag|>` may open the call; bare JSON at the start of the output is one too. */
export const LLAMA3_JSON: ToolCallFormat = {
  name: 'llama3_json',
  tags: [{ start: '<|python_tag|>', end: null }],
  bare: true,
};
/**
 * DeepSeek V3 and R1 (and R1's distilled models): `<｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME` then the arguments
 * in a json code fence, each call closed by `<｜tool▁call▁end｜>`; V3.1 writes `NAME<｜tool▁sep｜>{…}` instead.
 */
export const DEEPSEEK: ToolCallFormat = {
  name: 'deepseek',
  tags: [{ start: '<｜tool▁calls▁begin｜>', end: '<｜tool▁calls▁end｜>' }],
};
/** Calls written as a Python list, `[name(key=value), …]`, the whole output (pythonic-calls.ts reads the body). */
export const PYTHONIC: ToolCallFormat = { name: 'pythonic', tags: [], bare: true };
/** Llama 4's pythonic calls: the list may come between `<|python_start|>` and `<|python_end|>`. */
export const LLAMA4_PYTHONIC: ToolCallFormat = {
  name: 'llama4_pythonic',
  tags: [{ start: '<|python_start|>', end: '<|python_end|>' }],
  bare: true,
};
/** Phi-4-mini: `functools[{…}, …]`, a JSON list after the marker (its '[' taken with it: vLLM's rule). */
export const PHI4_MINI: ToolCallFormat = { name: 'phi4_mini_json', tags: [{ start: 'functools[', end: null }] };
/**
 * Granite 3.x: `<|tool_call|>` then a JSON list (3.1 may write `<tool_call>`); a list first in the output is calls too.
 */
export const GRANITE: ToolCallFormat = {
  name: 'granite',
  tags: [
    { start: '<|tool_call|>', end: null },
    { start: '<tool_call>', end: null },
  ],
  bare: true,
};
/** granite-20b-functioncalling: `<function_call> {…}`, one call after each tag. */
export const GRANITE_20B_FC: ToolCallFormat = {
  name: 'granite-20b-fc',
  tags: [{ start: '<function_call>', end: null }],
};
/** Jamba's JSON list and MiniMax-M1's objects one a line, both between `<tool_calls>` and `</tool_calls>`. */
export const TOOL_CALLS_BLOCK: ToolCallFormat = {
  name: 'tool_calls',
  tags: [{ start: '<tool_calls>', end: '</tool_calls>' }],
};
/** InternLM 2 / 2.5: `<|action_start|><|plugin|>{"name": …, "parameters": …}<|action_end|>`. */
export const INTERNLM: ToolCallFormat = {
  name: 'internlm',
  tags: [{ start: '<|action_start|><|plugin|>', end: '<|action_end|>' }],
};
/**
 * xLAM: a JSON list of calls, bare at the start of the output or (as vLLM's xlam parser reads them) in a code fence,
 * after `[TOOL_CALLS]` or between `<tool_call>` tags.
 */
export const XLAM: ToolCallFormat = {
  name: 'xlam',
  tags: [
    { start: '```json', end: '```' },
    { start: '```\n', end: '```' },
    { start: MISTRAL_TAG, end: null },
    HERMES.tags[0]!,
  ],
  bare: true,
};
/** GLM 4.5 / 4.6: `<tool_call>NAME` then `<arg_key>K</arg_key><arg_value>V</arg_value>`… `</tool_call>`. */
export const GLM45: ToolCallFormat = { name: 'glm45', tags: HERMES.tags, readBody: parseGlmCall };
/**
 * Kimi K2: calls between `<|tool_calls_section_begin|>` and `<|tool_calls_section_end|>` (kimi-calls.ts reads them);
 * some checkpoints write `tool_call_section` for `tool_calls_section`.
 */
export const KIMI_K2: ToolCallFormat = {
  name: 'kimi_k2',
  tags: [
    { start: '<|tool_calls_section_begin|>', end: '<|tool_calls_section_end|>' },
    { start: '<|tool_call_section_begin|>', end: '<|tool_call_section_end|>' },
  ],
};

/** OLMo 3: Python-style calls a line each, not in a list, between `<function_calls>` and `</function_calls>`. */
export const OLMO3: ToolCallFormat = {
  name: 'olmo3',
  tags: [{ start: '<function_calls>', end: '</function_calls>' }],
  readBody: parseCallSequence,
};

/**
 * vLLM's `--tool-call-parser` names for the formats above (Qwen3-Coder's `<function=…>` calls come inside Hermes'
 * `<tool_call>` tags; DeepSeek V3.1's calls inside V3's).
 */
export const TOOL_CALL_PARSERS: Readonly<Record<string, ToolCallFormat>> = {
  hermes: HERMES,
  qwen3_coder: HERMES,
  qwen3_xml: HERMES,
  mistral: MISTRAL,
  llama3_json: LLAMA3_JSON,
  llama4_json: LLAMA3_JSON,
  llama4_pythonic: LLAMA4_PYTHONIC,
  deepseek_v3: DEEPSEEK,
  deepseek_v31: DEEPSEEK,
  pythonic: PYTHONIC,
  phi4_mini_json: PHI4_MINI,
  granite: GRANITE,
  'granite-20b-fc': GRANITE_20B_FC,
  jamba: TOOL_CALLS_BLOCK,
  minimax: TOOL_CALLS_BLOCK,
  internlm: INTERNLM,
  xlam: XLAM,
  kimi_k2: KIMI_K2,
  glm45: GLM45,
  olmo3: OLMO3,
};

/** tool_choice "required" or a named function: the output is a JSON list of calls, held to it by a grammar. */
export const FORCED_JSON: ToolCallFormat = { name: 'forced', tags: [], bare: true };

/** Text that only one format's templates write, looked for in this order. */
const TEMPLATE_MARKERS: readonly (readonly [string, ToolCallFormat])[] = [
  [KIMI_K2.tags[0]!.start, KIMI_K2],
  ['<tool_calls>', TOOL_CALLS_BLOCK],
  ['<arg_key>', GLM45],
  ['<tool_call>', HERMES],
  [MISTRAL_TAG, MISTRAL],
  [DEEPSEEK.tags[0]!.start, DEEPSEEK],
  [INTERNLM.tags[0]!.start, INTERNLM],
  ['<function_call>', GRANITE_20B_FC],
  [PHI4_MINI.tags[0]!.start, PHI4_MINI],
  [OLMO3.tags[0]!.start, OLMO3],
];

/**
 * The format a chat template's tool calls use, from the text it writes around them; null if it renders none.
 * `goTag` is the tag of a Go template's `{{ if .ToolCalls }}` block by Ollama's rule ('' for bare JSON), when it has one.
 */
export function toolCallFormatOf(templateSource: string, goTag: string | null = null): ToolCallFormat | null {
  if (goTag !== null) {
    if (goTag === '') return { name: 'template', tags: [], bare: true };
    return { name: 'template', tags: [{ start: goTag, end: goTag === '<tool_call>' ? '</tool_call>' : null }] };
  }
  const has = (text: string) => templateSource.includes(text);
  const marked = TEMPLATE_MARKERS.find(([marker]) => has(marker));
  if (marked) return marked[1];
  // Granite's role tags tell its `<|tool_call|>` from Phi-4-mini's.
  if (has('<|tool_call|>') && has('<|start_of_role|>')) return GRANITE;
  if (!/\btools\b/.test(templateSource)) return null;
  if (/<\|python_tag\|>|"parameters"|<\|start_header_id\|>/.test(templateSource)) return LLAMA3_JSON;
  // A Llama 4 template that writes no JSON calls writes pythonic ones.
  if (has('<|header_start|>')) return LLAMA4_PYTHONIC;
  return null;
}

/** Calls in `body` (the text after the opening tag), or null when it is not a call. */
export function parseCallBody(body: string, format?: ToolCallFormat): ParsedToolCall[] | null {
  if (format?.readBody) return format.readBody(body, format.parameterTypes);
  const text = body.trim();
  if (text.startsWith('<function=')) return parseXmlCalls(text, format?.parameterTypes);
  if (text.startsWith(DEEPSEEK_CALL)) return parseDeepSeekCalls(text);
  if (text.startsWith(KIMI_CALL)) return parseKimiCalls(text);
  if (looksPythonic(text)) return parsePythonicCalls(text);
  const mistral = /^([A-Za-z0-9_.-]+)\[ARGS\]/.exec(text);
  if (mistral) {
    const args = parseJsonPrefix(text.slice(mistral[0].length));
    if (!args || !isObject(args.value)) return null;
    const rest = args.rest.trim();
    const more = rest.startsWith(MISTRAL_TAG) ? parseCallBody(rest.slice(MISTRAL_TAG.length)) : rest ? null : [];
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

/** The first JSON value at the start of `text` and what follows it, or null. */
export function parseJsonPrefix(text: string): { value: unknown; rest: string } | null {
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

/** The end of an answer's calls: the content left, the calls, and what a stream of them is still to be told. */
export interface ToolCallsEnd {
  content: string;
  calls: ToolCall[];
  /**
   * The text was calls cut short (the token limit, a stop string): the call it was writing, its name once written
   * (else null) and its arguments so far. Only where the text cannot be content: a forced answer (its list is
   * pagoda's, not the model's), a stream that told of a call already.
   */
  cut: { name: string | null; argumentsJson: string } | null;
  /** What a stream of the calls is told at the end (an answer not streamed: every call, whole). */
  events: CallEvent[];
}

/**
 * Separates tool calls from content as the output streams. Content streams until something that may open a call
 * (the format's tag, or for Llama 3 a `{` first in the output); from there the text is held until the output ends,
 * then parsed: calls if it parses as calls, else it was content after all. A `streamed` parser also tells of the calls
 * as they are written (call-stream.ts); what it told stands: if the text then does not parse as calls, the answer is
 * the calls as far as they were written, not the text.
 */
export class ToolCallParser {
  private buffer = '';
  private sawContent = false;
  private calls: CallStream | null = null;

  constructor(
    private readonly format: ToolCallFormat,
    private readonly streamed = false,
  ) {}

  /** Content that is safe to stream now, and (streamed) what the calls written so far add. */
  push(text: string): { content: string; events: CallEvent[] } {
    const content = this.read(text);
    const events = this.calls?.log.take() ?? [];
    return { content, events: this.streamed ? events : [] };
  }

  /** Whether text is held that may yet turn out to be content (a possible tag, or a call that may not parse). */
  get holdsContent(): boolean {
    return this.calls !== null || this.buffer !== '';
  }

  /**
   * At the end: the remaining content and the calls the held text parses as (none: it was content), or the calls as
   * far as they were written where the text does not parse but cannot be content (see `ToolCallsEnd.cut`).
   */
  finish(): ToolCallsEnd {
    const whole = this.parse();
    const written = this.calls?.log.calls ?? [];
    const told = this.streamed ? written : [];
    if (whole.calls.length > 0) {
      const calls = whole.calls.map((call, i) => withJson(call, written[i]));
      const extendsTold = told.every(
        (w, i) => calls[i]?.name === w.name && calls[i].argumentsJson.startsWith(w.argumentsJson),
      );
      if (extendsTold) return { content: whole.content, calls, cut: null, events: this.tell(calls) };
    }
    if (told.length === 0 && !(this.format === FORCED_JSON && whole.content.trim())) {
      return { content: whole.content, calls: [], cut: null, events: [] };
    }
    // What was written stands (a stream was told all of it as it came).
    const calls = written.flatMap((w) => w.call ?? []);
    const open = written.at(-1)?.call === null ? written.at(-1)! : null;
    const cut = { name: open?.name ?? null, argumentsJson: open?.argumentsJson ?? '' };
    return { content: '', calls, cut, events: this.streamed ? [] : this.tell(calls) };
  }

  /** The events that bring a stream from what it was told to `calls`: the rest of each one, the ones not begun. */
  private tell(calls: ToolCall[]): CallEvent[] {
    const log = this.streamed && this.calls ? this.calls.log : new CallLog();
    calls.forEach((call, i) => {
      if (i === log.calls.length) log.start(call.name);
      const told = log.calls[i]!;
      log.append(i, call.argumentsJson.slice(told.argumentsJson.length));
      if (!told.call) log.end(i);
    });
    return log.take();
  }

  /** The content that is safe to stream now. */
  private read(text: string): string {
    if (this.calls) {
      this.calls.push(text);
      return '';
    }
    this.buffer += text;
    const opening = firstOpening(this.buffer, this.format.tags);
    if (opening) {
      const before = this.buffer.slice(0, opening.at);
      this.enterCall(this.buffer.slice(opening.at), opening.tags);
      return before;
    }
    if (!this.sawContent && this.format.bare) {
      const lead = this.buffer.trimStart();
      // What may yet be an opening tag (xLAM's `[TOOL_CALLS]`) is not bare JSON yet.
      if (lead && this.format.tags.some((t) => t.start.startsWith(lead))) return '';
      if (lead.startsWith('{') || lead.startsWith('[')) {
        this.enterCall(lead, null);
        return '';
      }
      if (!lead) return '';
    }
    const keep = heldBackLength(
      this.buffer,
      this.format.tags.map((t) => t.start),
    );
    const out = this.buffer.slice(0, this.buffer.length - keep);
    this.buffer = this.buffer.slice(this.buffer.length - keep);
    if (out.trim()) this.sawContent = true;
    return out;
  }

  /** The held text read whole: its calls, or the text as content when it does not parse as calls. */
  private parse(): { content: string; calls: ParsedToolCall[] } {
    if (!this.calls) return { content: this.buffer, calls: [] };
    const text = this.calls.text;
    const calls: ParsedToolCall[] = [];
    for (const body of callBodies(text, this.calls.tags)) {
      if (!body.trim()) continue;
      const parsed = parseCallBody(body, this.format);
      if (!parsed) return { content: text, calls: [] };
      calls.push(...parsed);
    }
    return { content: '', calls };
  }

  /** The call text begins: at the opening tag `tags.start`, or (no tags) bare JSON. */
  private enterCall(text: string, tags: CallTags | null): void {
    this.calls = new CallStream(this.format, tags, text);
    this.buffer = '';
  }
}

/** The bodies of a whole call text, cut as a stream of it is (call-pieces.ts). */
function callBodies(text: string, tags: CallTags | null): string[] {
  const bodies = tags ? [] : [''];
  const pieces = new CallPieces(tags, {
    piece: () => bodies.push(''),
    body: (body) => {
      bodies[bodies.length - 1] += body;
    },
  });
  pieces.push(text);
  pieces.finish();
  return bodies;
}

/** A parsed call with its arguments' JSON text: as written to a stream where that is this call, else JSON.stringify's. */
function withJson(call: ParsedToolCall, written: WrittenCall | undefined): ToolCall {
  const same =
    written?.call?.name === call.name && JSON.stringify(written.call.arguments) === JSON.stringify(call.arguments);
  return { ...call, argumentsJson: same ? written.argumentsJson : JSON.stringify(call.arguments) };
}
