import type { ToolCall } from '../../tools/call-log.ts';
import { type AnswerEnd, type BlockKind, type BlockSink, blockId } from '../output-blocks.ts';

/** One Messages API streaming event: its type and fields. */
export type MessageEvent = { type: string } & Record<string, unknown>;

/**
 * An answer's blocks as Anthropic's content blocks: `thinking`, `text`, and a `tool_use` block per call, each
 * started, filled and stopped with the events the API streams (`emit`; a whole message ignores them).
 */
export class MessageOutput implements BlockSink {
  readonly content: Record<string, unknown>[] = [];

  constructor(private readonly emit: (e: MessageEvent) => void = () => {}) {}

  open(kind: BlockKind, index: number): void {
    this.content[index] =
      kind === 'text' ? { type: 'text', text: '', citations: null } : { type: 'thinking', thinking: '', signature: '' };
    this.emit({ type: 'content_block_start', index, content_block: { ...this.content[index] } });
  }

  delta(kind: BlockKind, index: number, text: string): void {
    const delta = kind === 'text' ? { type: 'text_delta', text } : { type: 'thinking_delta', thinking: text };
    this.emit({ type: 'content_block_delta', index, delta });
  }

  close(kind: BlockKind, index: number, text: string): void {
    this.content[index]![kind === 'text' ? 'text' : 'thinking'] = text;
    this.emit({ type: 'content_block_stop', index });
  }

  callStart(index: number, name: string): void {
    const block = { type: 'tool_use', id: blockId('toolu'), name, input: {}, caller: { type: 'direct' } };
    this.content[index] = block;
    this.emit({ type: 'content_block_start', index, content_block: { ...block } });
  }

  callArguments(index: number, text: string): void {
    this.emit({ type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: text } });
  }

  /** A call cut short keeps its empty input (its arguments streamed as far as they got). */
  callEnd(index: number, call: ToolCall | null): void {
    if (call) this.content[index]!.input = call.arguments;
    this.emit({ type: 'content_block_stop', index });
  }
}

/**
 * Why the answer stopped, as Anthropic says it: its end of turn with tool calls, one of the request's stop sequences
 * (named), the token limit (the model's context when that is what cut it: `contextBound`), or its end of turn.
 */
export function stopOf(end: AnswerEnd, stopSequences: readonly string[], contextBound: boolean) {
  const sequence =
    end.reason === 'stop' && typeof end.stopReason === 'string' && stopSequences.includes(end.stopReason)
      ? end.stopReason
      : null;
  const limit = contextBound ? 'model_context_window_exceeded' : 'max_tokens';
  const reason =
    end.reason === 'length' ? limit : sequence ? 'stop_sequence' : end.calls.length > 0 ? 'tool_use' : 'end_turn';
  return { stop_reason: reason, stop_sequence: sequence, stop_details: null, container: null };
}

/** Anthropic's usage of one answer: tokens in and out (so far: `end` null), the rest of its fields empty. */
export function usageOf(inputTokens: number, end: AnswerEnd | null) {
  return {
    input_tokens: inputTokens,
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: 0,
    cache_creation: null,
    output_tokens: end?.outputTokens ?? 0,
    output_tokens_details: { thinking_tokens: end?.reasoningTokens ?? 0 },
    server_tool_use: null,
    inference_geo: null,
    service_tier: null,
    speed: null,
  };
}
