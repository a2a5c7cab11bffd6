import type { TokenLogprob } from '../../engine/types.ts';
import type { ToolCall } from '../../tools/call-log.ts';
import { toolCallId } from '../chat-output.ts';
import { type BlockKind, type BlockSink, blockId as itemId } from '../output-blocks.ts';
import { chatLogprobs } from './common.ts';

/** One Responses API streaming event, before its sequence number: its type and fields. */
export type ResponseEvent = { type: string } & Record<string, unknown>;

function part(kind: BlockKind, text: string, logprobs: unknown[] = []) {
  return kind === 'text' ? { type: 'output_text', text, annotations: [], logprobs } : { type: 'reasoning_text', text };
}

/**
 * An answer's blocks as the Responses API's output items: a reasoning item (`reasoning_text`), the assistant's message
 * (`output_text`), one `function_call` item per call; each opened, filled and closed with the events the API streams
 * (`emit`; a whole response ignores them). A call cut short is an incomplete item with its arguments so far.
 */
export class ResponseOutput implements BlockSink {
  readonly items: Record<string, unknown>[] = [];
  /** Each text item's token logprobs so far (by output index), in the API's shape. */
  private readonly logprobs = new Map<number, unknown[]>();

  constructor(private readonly emit: (e: ResponseEvent) => void = () => {}) {}

  /** The message's text (the SDKs' `output_text`). */
  get text(): string {
    return this.items
      .filter((i) => i.type === 'message')
      .map((i) => (i.content as { text: string }[]).map((p) => p.text).join(''))
      .join('');
  }

  open(kind: BlockKind, index: number): void {
    const item =
      kind === 'text'
        ? { id: itemId('msg'), type: 'message', status: 'in_progress', role: 'assistant', content: [] }
        : { id: itemId('rs'), type: 'reasoning', summary: [], content: [] };
    this.items[index] = item;
    this.emit({ type: 'response.output_item.added', output_index: index, item: { ...item } });
    this.emit({ type: 'response.content_part.added', ...this.at(index), part: part(kind, '') });
  }

  delta(kind: BlockKind, index: number, text: string, tokens?: readonly TokenLogprob[]): void {
    if (kind === 'text') {
      const logprobs = tokens ? chatLogprobs([...tokens]) : [];
      this.logprobs.set(index, [...(this.logprobs.get(index) ?? []), ...logprobs]);
      this.emit({ type: 'response.output_text.delta', ...this.at(index), delta: text, logprobs });
    } else this.emit({ type: 'response.reasoning_text.delta', ...this.at(index), delta: text });
  }

  close(kind: BlockKind, index: number, text: string, complete: boolean): void {
    const logprobs = this.logprobs.get(index) ?? [];
    if (kind === 'text') this.emit({ type: 'response.output_text.done', ...this.at(index), text, logprobs });
    else this.emit({ type: 'response.reasoning_text.done', ...this.at(index), text });
    this.emit({ type: 'response.content_part.done', ...this.at(index), part: part(kind, text, logprobs) });
    const item = this.items[index]!;
    item.content = [part(kind, text, logprobs)];
    if (kind === 'text') item.status = complete ? 'completed' : 'incomplete';
    this.emit({ type: 'response.output_item.done', output_index: index, item: { ...item } });
  }

  callStart(index: number, name: string): void {
    const item = {
      id: itemId('fc'),
      type: 'function_call',
      status: 'in_progress',
      arguments: '',
      call_id: toolCallId(),
      name,
    };
    this.items[index] = item;
    this.emit({ type: 'response.output_item.added', output_index: index, item: { ...item } });
  }

  callArguments(index: number, text: string): void {
    const item = this.items[index]!;
    item.arguments += text;
    this.emit({ type: 'response.function_call_arguments.delta', item_id: item.id, output_index: index, delta: text });
  }

  callEnd(index: number, call: ToolCall | null): void {
    const item = this.items[index]!;
    const args = call?.argumentsJson ?? (item.arguments as string);
    const at = { item_id: item.id, output_index: index };
    this.emit({ type: 'response.function_call_arguments.done', ...at, name: item.name, arguments: args });
    Object.assign(item, { arguments: args, status: call ? 'completed' : 'incomplete' });
    this.emit({ type: 'response.output_item.done', output_index: index, item: { ...item } });
  }

  private at(index: number) {
    return { item_id: this.items[index]!.id, output_index: index, content_index: 0 };
  }
}
