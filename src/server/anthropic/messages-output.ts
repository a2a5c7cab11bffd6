import { randomBytes } from 'node:crypto';
import type { ParsedToolCall } from '../../tools/tool-parser.ts';
import type { AnswerEnd, BlockKind, BlockSink } from '../output-blocks.ts';

/** One Messages API streaming event: its type and fields. */
export type MessageEvent = { type: string } & Record<string, unknown>;

export const anthropicId = (prefix: string) => `${prefix}_${randomBytes(12).toString('hex')}`;

/**
 * An answer's blocks as Anthropic's content blocks: `thinking`, `text`, and a `tool_use` block per call, each
 * started, filled and stopped with the events the API streams (`emit`; a whole message ignores them).
 */
export class MessageOutput implements BlockSink {
  readonly content: Record<string, unknown>[] = [];

  constructor(private readonly emit: (e: MessageEvent) => void = () => {}) {}

  open(kind: BlockKind, index: number): void {
    this.content[index] =
      kind === 'text' ? { type: 'text', text: '' } : { type: 'thinking', thinking: '', signature: '' };
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

  call(call: ParsedToolCall, index: number): void {
    const block = { type: 'tool_use', id: anthropicId('toolu'), name: call.name, input: call.arguments };
    this.content[index] = block;
    this.emit({ type: 'content_block_start', index, content_block: { ...block, input: {} } });
    const partial_json = JSON.stringify(call.arguments);
    this.emit({ type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json } });
    this.emit({ type: 'content_block_stop', index });
  }
}

/**
 * Why the answer stopped, as Anthropic says it: a tool call, one of the request's stop sequences (named), the token
 * limit, or its end of turn.
 */
export function stopOf(end: AnswerEnd, stopSequences: readonly string[]) {
  const sequence = typeof end.stopReason === 'string' && stopSequences.includes(end.stopReason) ? end.stopReason : null;
  const reason =
    end.calls.length > 0
      ? 'tool_use'
      : end.reason === 'length'
        ? 'max_tokens'
        : sequence
          ? 'stop_sequence'
          : 'end_turn';
  return { stop_reason: reason, stop_sequence: sequence };
}
