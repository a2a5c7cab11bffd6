import { randomBytes } from 'node:crypto';
import { type ChatOutputMode, ChatOutputParser, toolCallId } from '../chat-output.ts';

/** One Responses API streaming event, before its sequence number: its type and fields. */
export type ResponseEvent = { type: string } & Record<string, unknown>;

const itemId = (prefix: string) => `${prefix}_${randomBytes(12).toString('hex')}`;

/** The text item being written: a reasoning item or the assistant's message, and its one content part. */
interface OpenItem {
  kind: 'reasoning' | 'message';
  index: number;
  item: Record<string, unknown>;
  text: string;
}

/**
 * A completion's text as the Responses API's output items, built as it streams: reasoning (`reasoning_text`), the
 * assistant's message (`output_text`) and, at the end, one `function_call` item per parsed tool call, each item
 * opened, filled and closed with the events the API streams (`emit`; a whole response ignores them). The same
 * reasoning and tool-call parsing as chat completions.
 */
export class ResponseOutput {
  readonly items: Record<string, unknown>[] = [];
  private readonly parser: ChatOutputParser;
  private open: OpenItem | null = null;

  constructor(
    mode: ChatOutputMode,
    private readonly emit: (e: ResponseEvent) => void = () => {},
  ) {
    this.parser = new ChatOutputParser(mode);
  }

  push(text: string): void {
    const part = this.parser.push(text);
    this.write('reasoning', part.reasoning);
    this.write('message', part.content);
  }

  /** The completion ended (`complete`: on its own, not cut at the token limit): the last text, then its calls. */
  finish(complete: boolean): void {
    const end = this.parser.finish();
    this.write('reasoning', end.reasoning);
    this.write('message', end.content);
    if (end.calls.length === 0 && !this.items.some((i) => i.type === 'message')) this.start('message');
    this.close(complete ? 'completed' : 'incomplete');
    for (const call of end.calls) {
      const args = JSON.stringify(call.arguments);
      const item = {
        id: itemId('fc'),
        type: 'function_call',
        status: 'in_progress',
        arguments: '',
        call_id: toolCallId(),
        name: call.name,
      };
      const output_index = this.items.push(item) - 1;
      this.emit({ type: 'response.output_item.added', output_index, item: { ...item } });
      this.emit({ type: 'response.function_call_arguments.delta', item_id: item.id, output_index, delta: args });
      this.emit({
        type: 'response.function_call_arguments.done',
        item_id: item.id,
        output_index,
        name: call.name,
        arguments: args,
      });
      Object.assign(item, { arguments: args, status: 'completed' });
      this.emit({ type: 'response.output_item.done', output_index, item: { ...item } });
    }
  }

  /** The message's text (the SDKs' `output_text`). */
  get text(): string {
    return this.items
      .filter((i) => i.type === 'message')
      .map((i) => (i.content as { text: string }[]).map((p) => p.text).join(''))
      .join('');
  }

  private write(kind: OpenItem['kind'], text: string): void {
    if (!text) return;
    const open = this.open?.kind === kind ? this.open : this.start(kind);
    open.text += text;
    const type = kind === 'message' ? 'response.output_text.delta' : 'response.reasoning_text.delta';
    const logprobs = kind === 'message' ? { logprobs: [] } : {};
    this.emit({ type, item_id: open.item.id, output_index: open.index, content_index: 0, delta: text, ...logprobs });
  }

  private start(kind: OpenItem['kind']): OpenItem {
    this.close('completed');
    const item =
      kind === 'message'
        ? { id: itemId('msg'), type: 'message', status: 'in_progress', role: 'assistant', content: [] }
        : { id: itemId('rs'), type: 'reasoning', summary: [], content: [] };
    const index = this.items.push(item) - 1;
    this.emit({ type: 'response.output_item.added', output_index: index, item: { ...item } });
    this.emit({
      type: 'response.content_part.added',
      item_id: item.id,
      output_index: index,
      content_index: 0,
      part: part(kind, ''),
    });
    this.open = { kind, index, item, text: '' };
    return this.open;
  }

  private close(status: 'completed' | 'incomplete'): void {
    const open = this.open;
    if (!open) return;
    this.open = null;
    const { kind, index, item, text } = open;
    const at = { item_id: item.id, output_index: index, content_index: 0 };
    if (kind === 'message') this.emit({ type: 'response.output_text.done', ...at, text, logprobs: [] });
    else this.emit({ type: 'response.reasoning_text.done', ...at, text });
    this.emit({ type: 'response.content_part.done', ...at, part: part(kind, text) });
    item.content = [part(kind, text)];
    if (kind === 'message') item.status = status;
    this.emit({ type: 'response.output_item.done', output_index: index, item: { ...item } });
  }
}

function part(kind: OpenItem['kind'], text: string) {
  return kind === 'message'
    ? { type: 'output_text', text, annotations: [], logprobs: [] }
    : { type: 'reasoning_text', text };
}
