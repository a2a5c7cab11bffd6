import { randomBytes } from 'node:crypto';
import type { GrammarSpec } from '../grammar/spec.ts';
import type { CallEvent } from '../tools/call-log.ts';
import { ReasoningParser, THINK_END, THINK_START } from '../tools/reasoning-parser.ts';
import { type ToolCallFormat, ToolCallParser, type ToolCallsEnd } from '../tools/tool-parser.ts';

/** What to separate from a chat answer's content. */
export interface ChatOutputMode {
  /** `<think>` reasoning, and whether the prompt already opened the block. */
  reasoning: { startsInside: boolean } | null;
  /** The tool-call format to parse, when the request has tools. */
  tools: ToolCallFormat | null;
  /** tool_choice named a function: its call was asked for, and OpenAI finishes such an answer with "stop". */
  namedTool?: boolean;
  /** parallel_tool_calls false: only the first call counts (vLLM drops the rest too). */
  singleCall?: boolean;
}

export interface ChatOutputPart {
  reasoning: string;
  content: string;
}

/** vLLM's `--reasoning-parser` names of the `<think>…</think>` reasoning every template that thinks is read for. */
export const THINK_REASONING_PARSERS = ['deepseek_r1', 'qwen3'] as const;

/** Whether a chat template knows thinking (Qwen3, DeepSeek-R1 distills, Ollama's `.Think`). */
export function templateThinks(source: string): boolean {
  return /<think>|enable_thinking|\.Think\b|\.IsThinkSet\b/.test(source);
}

/**
 * The reasoning part of a mode for a rendered prompt: inside the block when the prompt ends by opening it, or ends
 * with the open block of `prefill` (the last assistant message the prompt goes on from, when one was asked).
 */
export function reasoningMode(templateSource: string, prompt: string, prefill?: string): ChatOutputMode['reasoning'] {
  if (!templateThinks(templateSource)) return null;
  const end = prompt.trimEnd();
  const open = prefill?.lastIndexOf(THINK_START) ?? -1;
  const insidePrefill =
    prefill !== undefined && open > prefill.lastIndexOf(THINK_END) && end.endsWith(prefill.slice(open).trimEnd());
  return { startsInside: end.endsWith(THINK_START) || insidePrefill };
}

/**
 * A request's constraint (structured output, a forced tool call) for an answer that reasons first: held only after
 * the `<think>` block (the one the prompt opened, or one the model may open), so the model still thinks and the JSON
 * or the call lands in the content, as vLLM does with a reasoning parser.
 */
export function afterReasoning(
  grammar: GrammarSpec | undefined,
  reasoning: ChatOutputMode['reasoning'],
): GrammarSpec | undefined {
  if (!grammar || !reasoning) return grammar;
  return {
    type: 'after_reasoning',
    begin: THINK_START,
    end: THINK_END,
    startsInside: reasoning.startsInside,
    inner: grammar,
  };
}

/**
 * Reasoning first, then tool calls, out of one completion's text as it streams. A `streamed` parser tells of the
 * calls as they are written (ToolCallParser says what that changes).
 */
export class ChatOutputParser {
  private readonly reasoning: ReasoningParser | null;
  private readonly tools: ToolCallParser | null;
  private readonly singleCall: boolean;

  constructor(mode: ChatOutputMode, streamed = false) {
    this.singleCall = mode.singleCall === true;
    this.reasoning = mode.reasoning ? new ReasoningParser(mode.reasoning.startsInside) : null;
    this.tools = mode.tools ? new ToolCallParser(mode.tools, streamed) : null;
  }

  push(text: string): ChatOutputPart & { events: CallEvent[] } {
    const r = this.reasoning ? this.reasoning.push(text) : { reasoning: '', content: text };
    if (!this.tools) return { ...r, events: [] };
    const t = this.tools.push(r.content);
    return { reasoning: r.reasoning, content: t.content, events: this.counted(t.events) };
  }

  /** Whether text pushed so far is held back that may yet come out as content. */
  get holdsContent(): boolean {
    return Boolean(this.reasoning?.holdsContent || this.tools?.holdsContent);
  }

  /** The rest of the answer, its calls, and what a stream of them is still to be told. */
  finish(): ChatOutputPart & ToolCallsEnd {
    const r = this.reasoning ? this.reasoning.finish() : { reasoning: '', content: '' };
    if (!this.tools) return { ...r, calls: [], cut: null, events: [] };
    const before = this.tools.push(r.content);
    const end = this.tools.finish();
    return {
      reasoning: r.reasoning,
      content: before.content + end.content,
      calls: this.singleCall ? end.calls.slice(0, 1) : end.calls,
      cut: this.singleCall && end.calls.length > 0 ? null : end.cut,
      events: this.counted([...before.events, ...end.events]),
    };
  }

  private counted(events: CallEvent[]): CallEvent[] {
    return this.singleCall ? events.filter((e) => e.index === 0) : events;
  }
}

/** A tool call id as OpenAI writes them. */
export function toolCallId(): string {
  return `call_${randomBytes(12).toString('hex')}`;
}
