import { randomBytes } from 'node:crypto';
import type { FinishReason, RequestOutput, TokenLogprob } from '../engine/types.ts';
import type { CallEvent, ToolCall } from '../tools/call-log.ts';
import type { ParsedToolCall } from '../tools/tool-parser.ts';
import { type ChatOutputMode, ChatOutputParser } from './chat-output.ts';

/** An output block's id as the APIs write them: `msg_…`, `fc_…`, `toolu_…`. */
export const blockId = (prefix: string) => `${prefix}_${randomBytes(12).toString('hex')}`;

/** A run of an answer's text: its reasoning, or what it says. */
export type BlockKind = 'reasoning' | 'text';

/**
 * What a block-structured answer is told as it streams (the Responses API's output items, Anthropic's content
 * blocks). Blocks are numbered in order, tool calls included.
 */
export interface BlockSink {
  open(kind: BlockKind, index: number): void;
  /** More of a block's text; `logprobs`: the tokens that made it, when the request asked for them (text blocks). */
  delta(kind: BlockKind, index: number, text: string, logprobs?: readonly TokenLogprob[]): void;
  /** The block's end with its whole text; `complete` is false when the answer was cut at the token limit. */
  close(kind: BlockKind, index: number, text: string, complete: boolean): void;
  /** A tool call's block, after the text, once its name is known. */
  callStart(index: number, name: string): void;
  /** More of the call's arguments (JSON text). */
  callArguments(index: number, text: string): void;
  /** The call's end: whole, or null when the answer ended while it was being written (its arguments as far as they got). */
  callEnd(index: number, call: ToolCall | null): void;
}

/**
 * A completion's text as blocks, with chat completions' reasoning and tool-call parsing: reasoning and text blocks as
 * the text alternates between them, then one block per tool call (`streamed`: each as it is written, else all at the
 * end). An answer with neither text nor calls still has one (empty) text block, unless it was a forced call cut short.
 */
export class OutputBlocks {
  private readonly parser: ChatOutputParser;
  private open:
    | { kind: BlockKind; index: number; text: string }
    | { kind: 'call'; index: number; call: number }
    | null = null;
  private count = 0;
  private hasText = false;
  /** The logprobs of tokens whose text the parser holds back and may yet give out as content. */
  private held: TokenLogprob[] = [];

  constructor(
    mode: ChatOutputMode,
    private readonly sink: BlockSink,
    streamed = false,
  ) {
    this.parser = new ChatOutputParser(mode, streamed);
  }

  /**
   * More of the completion's text, and the logprobs of the tokens that made it if asked for: they go with the text
   * block's part of it (a token that ends the reasoning and starts the answer counts as the answer's). A token whose
   * text is held back (the start of what may be a tag) keeps its logprob until the text comes out as content, or
   * turns out to be reasoning, a tag or a call.
   */
  push(text: string, logprobs?: readonly TokenLogprob[] | null): void {
    const part = this.parser.push(text);
    const tokens = [...this.held, ...(logprobs ?? [])];
    this.write('reasoning', part.reasoning);
    this.held = [];
    if (part.content) this.write('text', part.content, tokens);
    else if (this.parser.holdsContent) this.held = tokens;
    this.tell(part.events);
  }

  /** Whether the answer is inside its reasoning (the tokens just pushed count as reasoning). */
  get reasoning(): boolean {
    return this.open?.kind === 'reasoning';
  }

  /** The completion ended (`complete`: on its own, not cut at the token limit): the last text, then its calls. */
  finish(complete: boolean): ParsedToolCall[] {
    const end = this.parser.finish();
    this.write('reasoning', end.reasoning);
    this.write('text', end.content, this.held);
    this.held = [];
    this.tell(end.events, complete);
    // A forced call cut short has no text to show (its list is pagoda's format); the calls it finished follow.
    if (end.calls.length === 0 && !this.hasText && !end.cut) this.start('text');
    this.close(complete);
    return end.calls;
  }

  /**
   * Call events as blocks: one opens at a call's start (closing the block before it, `complete` unless the answer
   * was cut), takes its arguments, closes at its end.
   */
  private tell(events: CallEvent[], complete = true): void {
    for (const e of events) {
      if (e.type === 'start') {
        this.close(complete);
        this.open = { kind: 'call', index: this.count++, call: e.index };
        this.sink.callStart(this.open.index, e.name);
        continue;
      }
      const open = this.open?.kind === 'call' && this.open.call === e.index ? this.open : null;
      if (!open) continue;
      if (e.type === 'arguments') this.sink.callArguments(open.index, e.text);
      else {
        this.open = null;
        this.sink.callEnd(open.index, e.call);
      }
    }
  }

  private write(kind: BlockKind, text: string, logprobs?: readonly TokenLogprob[]): void {
    if (!text) return;
    const open = this.open?.kind === kind ? this.open : this.start(kind);
    open.text += text;
    this.sink.delta(kind, open.index, text, logprobs);
  }

  private start(kind: BlockKind) {
    this.close(true);
    if (kind === 'text') this.hasText = true;
    const open = { kind, index: this.count++, text: '' };
    this.open = open;
    this.sink.open(kind, open.index);
    return open;
  }

  /** Closes the open block; a call still open was cut short. */
  private close(complete: boolean): void {
    const open = this.open;
    if (!open) return;
    this.open = null;
    if (open.kind === 'call') this.sink.callEnd(open.index, null);
    else this.sink.close(open.kind, open.index, open.text, complete);
  }
}

/** How an answer ended: why (null when the client went away first), the stop string or id, its calls and counts. */
export interface AnswerEnd {
  reason: FinishReason | null;
  stopReason: string | number | null;
  calls: ParsedToolCall[];
  outputTokens: number;
  /** The output tokens that went to reasoning (those pushed while a reasoning block was open). */
  reasoningTokens: number;
  /** Prompt tokens served from the prefix cache. */
  cachedTokens: number;
}

/** Feeds one completion's outputs to `blocks` until it ends, or until `open` says the client went away. */
export async function drainAnswer(
  outputs: AsyncIterable<RequestOutput>,
  blocks: OutputBlocks,
  open: () => boolean = () => true,
): Promise<AnswerEnd> {
  const end: AnswerEnd = {
    reason: null,
    stopReason: null,
    calls: [],
    outputTokens: 0,
    reasoningTokens: 0,
    cachedTokens: 0,
  };
  for await (const o of outputs) {
    end.cachedTokens = o.metrics.cachedPromptTokens;
    for (const d of o.outputs) {
      end.outputTokens += d.tokenIds.length;
      blocks.push(d.text, d.logprobs);
      if (blocks.reasoning) end.reasoningTokens += d.tokenIds.length;
      if (d.finishReason) {
        Object.assign(end, { reason: d.finishReason, stopReason: d.stopReason });
        end.calls = blocks.finish(d.finishReason === 'stop');
        return end;
      }
    }
    if (!open()) break;
  }
  // Ended without a finish (the client went away): the blocks close as cut short.
  end.calls = blocks.finish(false);
  return end;
}
