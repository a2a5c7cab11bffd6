/**
 * TEST DOUBLE: a fake EngineApi and byte-level tokenizer for server tests that need control over timing (slow
 * tokens, a full queue) or over the output (scripted text). Generation emits one character per token from a fixed
 * text or the script, honours max_tokens, stop
 * strings (held back until they can no longer match), n, logprobs and abort, and accounts KV blocks like a paged
 * cache so leak checks mean something.
 */
import { countStep } from '../../src/engine/engine-counters.ts';
import type {
  EngineApi,
  EngineStats,
  GenerateRequest,
  RequestOutput,
  SamplingParams,
  TokenLogprob,
} from '../../src/engine/types.ts';
import type { TextTokenizer } from '../../src/loader/tokenizer.ts';
import type { ModelInfo } from '../../src/server/model-info.ts';
import type { ChatTemplate, LoadedModel, ModelEntry, ModelSource } from '../../src/server/models.ts';

const TEXT = 'the quick brown fox jumps over the lazy dog. ';

export class FakeTokenizer implements TextTokenizer {
  readonly vocabSize = 259;
  readonly bosTokenId = 1;
  readonly eosTokenIds = [2];
  encode(text: string, opts?: { addSpecialTokens?: boolean }): number[] {
    const ids = [...Buffer.from(text, 'utf8')].map((b) => b + 3);
    return opts?.addSpecialTokens === false ? ids : [1, ...ids];
  }
  decode(ids: readonly number[]): string {
    return Buffer.from(ids.filter((i) => i >= 3).map((i) => i - 3)).toString('utf8');
  }
}

export const fakeTemplate: ChatTemplate = {
  source: '{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}<|assistant|>',
  render(messages, opts) {
    if (messages.some((m) => m.role === 'system') && messages[0].role !== 'system') {
      throw new Error('the system message must come first');
    }
    return (
      messages.map((m) => `<|${m.role}|>${m.content}`).join('') + (opts.addGenerationPrompt ? '<|assistant|>' : '')
    );
  },
};

interface Running {
  aborted: boolean;
  wake: (() => void) | null;
}

export class FakeEngine implements EngineApi {
  readonly totalBlocks: number;
  private freeBlocks: number;
  private readonly running = new Map<string, Running>();
  private counters = { promptTokens: 0, generationTokens: 0, steps: 0, stepTokens: new Map<number, number>() };
  private nextId = 0;
  shutdownCalls = 0;

  /** The last request, as the server sent it. */
  lastRequest: GenerateRequest | null = null;

  constructor(
    readonly opts: {
      tokenDelayMs: number;
      totalBlocks?: number;
      blockSize?: number;
      /** Scripted output: these characters, one a token, then a stop (instead of the fixed text). */
      script?: string;
    } = { tokenDelayMs: 1 },
  ) {
    this.totalBlocks = opts.totalBlocks ?? 4096;
    this.freeBlocks = this.totalBlocks;
  }

  private get blockSize(): number {
    return this.opts.blockSize ?? 16;
  }

  async encode(text: string, opts?: { addSpecialTokens?: boolean }): Promise<number[]> {
    return new FakeTokenizer().encode(text, opts);
  }

  async *generate(request: GenerateRequest): AsyncGenerator<RequestOutput> {
    const id = request.id ?? `fake-${this.nextId++}`;
    this.lastRequest = request;
    if (!Array.isArray(request.prompt)) throw new Error('the server must send token ids');
    const prompt = request.prompt;
    const p: Partial<SamplingParams> = request.params ?? {};
    const n = p.n ?? 1;
    const maxTokens = p.maxTokens ?? this.opts.script?.length ?? 16;
    const stops = p.stop ?? [];
    const state: Running = { aborted: false, wake: null };
    this.running.set(id, state);
    let held = n * Math.ceil(prompt.length / this.blockSize);
    this.freeBlocks -= held;
    this.counters.promptTokens += prompt.length;
    const arrivalTime = Date.now();
    const texts = Array.from({ length: n }, () => '');
    const emitted = Array.from({ length: n }, () => 0);
    const done: boolean[] = Array.from({ length: n }, () => false);
    const offset = (p.seed ?? 0) % TEXT.length;
    try {
      for (let step = 0; ; step++) {
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, this.opts.tokenDelayMs);
          state.wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
        state.wake = null;
        this.counters.steps++;
        // Each of the request's sequences one token further.
        countStep(this.counters.stepTokens, n);
        const outputs: RequestOutput['outputs'] = [];
        for (let i = 0; i < n; i++) {
          if (done[i]) continue;
          if (state.aborted) {
            done[i] = true;
            outputs.push({ index: i, text: '', tokenIds: [], logprobs: null, finishReason: 'abort', stopReason: null });
            continue;
          }
          const script = this.opts.script;
          const ch = script !== undefined ? script[step]! : TEXT[(offset + i * 7 + step) % TEXT.length];
          texts[i] += ch;
          this.counters.generationTokens++;
          if ((prompt.length + step + 1) % this.blockSize === 1) {
            this.freeBlocks--;
            held++;
          }
          const hit = stops.find((s) => texts[i].includes(s));
          const scriptEnds = script !== undefined && step + 1 >= script.length;
          const finish = hit || scriptEnds ? 'stop' : step + 1 >= maxTokens ? 'length' : null;
          const visible = hit ? texts[i].slice(0, texts[i].indexOf(hit)) : texts[i];
          // Hold back a tail that could still become a stop string.
          let safe = visible.length;
          if (!finish) {
            for (const s of stops) {
              for (let k = Math.min(s.length - 1, visible.length); k > 0; k--) {
                if (visible.endsWith(s.slice(0, k))) {
                  safe = Math.min(safe, visible.length - k);
                  break;
                }
              }
            }
          }
          const text = visible.slice(emitted[i], safe);
          emitted[i] = Math.max(emitted[i], safe);
          const logprobs: TokenLogprob[] | null =
            p.logprobs === null || p.logprobs === undefined
              ? null
              : [
                  {
                    tokenId: ch.charCodeAt(0) + 3,
                    token: ch,
                    logprob: -0.25,
                    top: Array.from({ length: p.logprobs }, (_, k) => ({
                      tokenId: 100 + k,
                      token: String.fromCharCode(97 + k),
                      logprob: -0.25 - k,
                    })),
                  },
                ];
          if (finish) done[i] = true;
          outputs.push({
            index: i,
            text,
            tokenIds: [ch.charCodeAt(0) + 3],
            logprobs,
            finishReason: finish,
            stopReason: hit ?? null,
          });
        }
        const finished = done.every(Boolean);
        yield {
          requestId: id,
          promptTokenIds: prompt,
          promptLogprobs: null,
          outputs,
          finished,
          metrics: {
            arrivalTime,
            firstScheduledTime: arrivalTime,
            firstTokenTime: arrivalTime,
            finishedTime: finished ? Date.now() : null,
            promptTokens: prompt.length,
            cachedPromptTokens: 0,
            generationTokens: texts.reduce((s, t) => s + t.length, 0),
          },
        };
        if (finished) return;
      }
    } finally {
      this.freeBlocks += held;
      this.running.delete(id);
    }
  }

  abort(requestId: string): void {
    const r = this.running.get(requestId);
    if (!r) return;
    r.aborted = true;
    r.wake?.();
  }

  stats(): EngineStats {
    return {
      running: this.running.size,
      waiting: 0,
      totalBlocks: this.totalBlocks,
      freeBlocks: this.freeBlocks,
      blockSize: this.blockSize,
      preemptions: 0,
      promptTokens: this.counters.promptTokens,
      promptTokensComputed: this.counters.promptTokens,
      generationTokens: this.counters.generationTokens,
      prefixCacheHits: 0,
      prefixCacheQueries: this.counters.promptTokens,
      steps: this.counters.steps,
      stepTokens: this.counters.stepTokens,
      kvBlocksSaved: 0,
      specDraftTokens: 0,
      specAcceptedTokens: 0,
    };
  }

  async shutdown(): Promise<void> {
    this.shutdownCalls++;
  }
}

/** A ModelSource serving FakeEngines: every entry gets its own engine, created on load. */
export class FakeSource implements ModelSource {
  readonly engines = new Map<string, FakeEngine>();
  loads = 0;

  constructor(
    private readonly engineOpts: { tokenDelayMs: number; script?: string } = { tokenDelayMs: 1 },
    private readonly contextLength = 256,
    private readonly maxRunning = 64,
    private readonly template: ChatTemplate = fakeTemplate,
  ) {}

  async inspect(entry: ModelEntry): Promise<ModelInfo> {
    return {
      architecture: 'FakeForCausalLM',
      family: 'fake',
      format: 'safetensors',
      parameterCount: 1234,
      quantization: 'float32',
      sizeBytes: 4936,
      modifiedAt: new Date('2026-01-01T00:00:00Z'),
      maxContextLength: this.contextLength,
      config: { model_type: 'fake', name: entry.name, hidden_size: 8, vocab_size: 259 },
      chatTemplate: this.template.source,
    };
  }

  async load(entry: ModelEntry): Promise<LoadedModel> {
    this.loads++;
    const engine = new FakeEngine(this.engineOpts);
    this.engines.set(entry.name, engine);
    return {
      engine,
      tokenizer: new FakeTokenizer(),
      chatTemplate: this.template,
      contextLength: this.contextLength,
      maxRunning: this.maxRunning,
      backend: 'cpu',
      kvCacheBytes: engine.totalBlocks * 1024,
    };
  }
}
