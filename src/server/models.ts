import { basename } from 'node:path';
import type { PoolingTimes } from '../engine/pooling-engine.ts';
import type { EngineApi } from '../engine/types.ts';
import type { ChatMessage, ChatRenderOptions, TemplateText } from '../loader/chat-template.ts';
import type { TextTokenizer } from '../loader/tokenizer.ts';
import type { PoolingTask } from '../models/pooling-model.ts';
import type { PoolingInput } from '../runner/pooling-batch.ts';
import type { Manifest } from '../store/manifest.ts';
import type { ToolCallFormat } from '../tools/tool-parser.ts';
import { ApiError } from './errors.ts';
import type { ModelInfo } from './model-info.ts';

export type { ChatMessage, ChatRenderOptions };

/** What the server needs of a model's chat template. */
export interface ChatTemplate {
  /** The template source, shown by /api/show. */
  readonly source: string;
  /** True for a stored model's Go template: like Ollama, it leaves BOS to the tokenizer (Jinja writes its own). */
  readonly addSpecialTokens?: boolean;
  render(messages: readonly ChatMessage[], opts: ChatRenderOptions): string;
  /** The fill-in-the-middle prompt around a gap, for a Go template that knows `.Suffix`. */
  infill?(prefix: string, suffix: string): string;
}

/** What the embedding and rerank routes need of an embedding or reranking model. */
export interface PoolingModelApi {
  readonly task: PoolingTask;
  /** Width of each output row: the embedding size, or 1 (a relevance score). */
  readonly outputSize: number;
  /** Its embeddings come L2-normalized. */
  readonly normalized: boolean;
  /**
   * One row per input, batched with every other request's inputs; rejects when `signal` fires. An engine that times
   * its steps fills `times` (each input's), for metrics.
   */
  pool(inputs: readonly PoolingInput[], signal?: AbortSignal, times?: PoolingTimes[]): Promise<Float32Array[]>;
}

/** An embedding or reranking model's engine and its sentence-transformers text settings. */
export interface PoolingSide {
  engine: PoolingModelApi;
  /** Named instruction prefixes a request may ask for (`prompt_name`). */
  prompts: Record<string, string>;
  /** Texts are lower-cased before tokenizing (sentence_bert_config.json's do_lower_case). */
  doLowerCase: boolean;
  /** false: the model pools without a prompt's tokens (1_Pooling's include_prompt), which pagoda cannot do. */
  includePrompt: boolean;
  /** Token types from the tokenizer's pair template reach the model (false: it has one token type). */
  pairTypes: boolean;
  /** A decoder reranker's input text, {query} and {document} filled in (a GGUF's rerank template); null: a pair. */
  rerankTemplate: string | null;
  /** Output sizes a request may truncate to (`dimensions`): any up to the full size (true), a list, or none. */
  matryoshka: boolean | readonly number[];
}

/** A model ready to serve: one engine with its own KV cache, plus the text side. */
export interface LoadedModel {
  engine: EngineApi;
  tokenizer: TextTokenizer;
  chatTemplate: ChatTemplate | null;
  /** `--tool-call-parser`'s format, over the one the chat template suggests; absent: the template's. */
  toolCallFormat?: ToolCallFormat;
  /** Tokens per sequence this engine accepts (prompt + output). */
  contextLength: number;
  /** Sequences the engine runs at once; the admission gate queues up to PAGODA_MAX_QUEUE beyond them. */
  maxRunning: number;
  /** Which backend runs it, for the startup line and /api/ps. */
  backend: string;
  kvCacheBytes: number;
  /** A stored model's Modelfile PARAMETERs: defaults under each request's Ollama options. */
  parameters?: Manifest['parameters'];
  /** Present for an embedding or reranking model (whose `engine` generates nothing). */
  pooling?: PoolingSide;
}

/** A model the server may serve: its public name and where its files are (never derived from a request). */
export interface ModelEntry {
  name: string;
  /** The model folder. */
  path: string;
  /** What the loader resolves: a folder, a store or Hugging Face cache name, or "demo". */
  ref: string;
  /** Named at start-up (`--model`): loaded then, never unloaded for being idle, outside the loaded-model limit. */
  pinned?: boolean;
  /** A LoRA adapter folder merged into the weights as they load (`--lora-modules`, /v1/load_lora_adapter). */
  lora?: string;
  /** Other names requests may give it (`--served-model-name`'s after the first). */
  aliases?: string[];
  /** The name of the model an adapted entry adapts. */
  parent?: string;
  /** `--chat-template`'s text (read once, at start-up) for the start-up models and their adapted entries. */
  chatTemplate?: TemplateText;
  /** A stored model's digest as its store keeps it (a manifest's sha256, a Hub commit), listed as Ollama lists it. */
  digest?: string;
}

/** Reads and loads models; the production one wraps the loader and engine, tests pass a double. */
export interface ModelSource {
  inspect(entry: ModelEntry): Promise<ModelInfo>;
  load(entry: ModelEntry): Promise<LoadedModel>;
}

export interface ResidentModel {
  entry: ModelEntry;
  model: LoadedModel;
  info: ModelInfo;
  loadedAt: Date;
  /** When the idle model will be unloaded; null = never (or busy). */
  expiresAt: Date | null;
  active: number;
}

interface Slot {
  entry: ModelEntry;
  loading: Promise<ResidentModel> | null;
  resident: ResidentModel | null;
  timer: NodeJS.Timeout | null;
  lastUsed: number;
  /** The keep-alive of the latest request (Ollama's rule): applied when the model next becomes idle. */
  keepAliveMs: number;
  /** The latest request asked for its keep-alive (a pinned model heeds only an explicit 0: unload now). */
  keepAliveAsked: boolean;
  /** Removed from the registry: its model goes as soon as nothing uses it (keep-alive ignored). */
  retired?: boolean;
}

export interface Lease {
  resident: ResidentModel;
  /** Milliseconds this request spent loading the model (0 when it was resident). */
  loadMs: number;
  release(): void;
  /** Releases the lease and, when no other request holds the model and its keep-alive is 0, unloads it now. */
  unload(): Promise<void>;
}

/** `base` with a LoRA adapter folder merged in, served as `name`, loaded on first use. */
export function adaptedEntry(base: ModelEntry, name: string, folder: string): ModelEntry {
  const { path, ref, chatTemplate } = base;
  return { name, path, ref, pinned: false, lora: folder, parent: base.name, ...(chatTemplate && { chatTemplate }) };
}

/** The 404 of a name that names no model. */
function notFound(name: string): ApiError {
  const shown = name.length > 200 ? `${name.slice(0, 200)}...` : name;
  return new ApiError(404, `model "${shown}" not found`, 'model', 'model_not_found');
}

/** The name a model folder is served under. */
export function modelName(path: string): string {
  return basename(path.replace(/[\\/]+$/, '')) || path;
}

/**
 * Names -> models. Request strings are only ever compared with known entries (never joined into a path), so a
 * hostile model name cannot reach the file system. Loads on demand, keeps at most `maxLoaded` resident besides the
 * pinned ones, and unloads an idle unpinned model after its keep-alive.
 */
export class ModelRegistry {
  private readonly slots = new Map<string, Slot>();
  private readonly aliases = new Map<string, string>();
  /** Each name's inspected info, with the entry it describes (a replaced entry's is not the new one's). */
  private readonly infos = new Map<string, { entry: ModelEntry; info: Promise<ModelInfo> }>();
  /** Removed slots whose model is still loading or in use. */
  private readonly retired = new Set<Slot>();

  constructor(
    entries: ModelEntry[],
    private readonly source: ModelSource,
    private readonly opts: {
      maxLoaded: number;
      keepAliveMs: number;
      /** Finds a model that appeared after start-up (created or pulled by the CLI); null when there is none. */
      discover?: (name: string) => ModelEntry | null;
      /** The stores' models now (those that appeared after start-up are listed too). */
      catalog?: () => ModelEntry[];
      /** How long `acquire` waits for a model still loading before a 503; 0 or absent = no limit. */
      loadTimeoutMs?: number;
      /** Hears what went wrong where no request waits for it (a model unloading when its keep-alive ran out). */
      log?: (line: string) => void;
    },
  ) {
    for (const entry of entries) {
      if (!this.slots.has(entry.name)) this.add(entry);
    }
  }

  /** Makes a model servable under its name (after a pull, create or copy); an existing entry is replaced. */
  add(entry: ModelEntry): void {
    const slot = this.slots.get(entry.name);
    if (slot) slot.entry = entry;
    else {
      const keepAliveMs = this.opts.keepAliveMs;
      this.slots.set(entry.name, {
        entry,
        loading: null,
        resident: null,
        timer: null,
        lastUsed: 0,
        keepAliveMs,
        keepAliveAsked: false,
      });
    }
    this.infos.delete(entry.name);
    // An adapted model shares its base's path and ref: those keep naming the base.
    const files = entry.lora ? [] : [entry.path, entry.ref];
    const names = [...(entry.aliases ?? []), `${entry.name}:latest`, entry.name.replace(/:latest$/, '')];
    for (const alias of [...files, ...names]) {
      if (!this.aliases.has(alias) || alias === entry.ref) this.aliases.set(alias, entry.name);
    }
  }

  /**
   * Forgets a name (after a delete, before re-creating it, an adapter unloaded): at once, so the name is free when
   * this returns its promise; its model unloads now if idle, else when its last request ends or its load finishes,
   * whatever its keep-alive.
   */
  async remove(name: string): Promise<void> {
    const slot = this.slots.get(name);
    if (!slot) return;
    this.slots.delete(name);
    this.infos.delete(name);
    for (const [alias, target] of this.aliases) if (target === name) this.aliases.delete(alias);
    slot.retired = true;
    this.retired.add(slot);
    // The name is gone either way: a model that fails to unload is logged, not the caller's error.
    await this.settleRetired(slot).catch((err: Error) => this.unloadFailed(slot, err));
  }

  /** A removed slot's model, unloaded once it is loaded and idle. */
  private async settleRetired(slot: Slot): Promise<void> {
    if (slot.loading) return;
    if (slot.resident && slot.resident.active > 0) return;
    this.retired.delete(slot);
    await this.evict(slot);
  }

  /** The entry a name or alias names now, or a model the store has under it (not added); null if none. */
  nameInUse(name: string): ModelEntry | null {
    return (
      (this.slots.get(name) ?? this.slots.get(this.aliases.get(name) ?? ''))?.entry ??
      this.opts.discover?.(name) ??
      null
    );
  }

  entries(): ModelEntry[] {
    return [...this.slots.values()].map((s) => s.entry);
  }

  /** Every model to list (/api/tags, /v1/models): the entries, with the stores' models that appeared since added. */
  listed(): ModelEntry[] {
    for (const entry of this.opts.catalog?.() ?? []) {
      if (!this.slots.has(entry.name) && !this.aliases.has(entry.name)) this.add(entry);
    }
    return this.entries();
  }

  /** The entry a request's `model` names, or a 404. */
  resolve(name: unknown): ModelEntry {
    if (typeof name !== 'string' || name === '') throw new ApiError(400, 'model is required', 'model');
    let slot = this.slots.get(name) ?? this.slots.get(this.aliases.get(name) ?? '');
    const found = slot ? null : this.opts.discover?.(name);
    if (found) {
      this.add(found);
      slot = this.slots.get(found.name);
    }
    if (!slot) throw notFound(name);
    return slot.entry;
  }

  info(entry: ModelEntry): Promise<ModelInfo> {
    const cached = this.infos.get(entry.name);
    if (cached?.entry === entry) return cached.info;
    const info = this.source.inspect(entry);
    // A retired entry's info is not cached: its name may name a new entry already.
    if (this.slots.get(entry.name)?.entry !== entry) return info;
    info.catch(() => {
      if (this.infos.get(entry.name)?.info === info) this.infos.delete(entry.name);
    });
    this.infos.set(entry.name, { entry, info });
    return info;
  }

  resident(): ResidentModel[] {
    return [...this.slots.values()].flatMap((s) => (s.resident ? [s.resident] : []));
  }

  /** Names of the models being loaded now. */
  loading(): string[] {
    return [...this.slots.values()].filter((s) => s.loading).map((s) => s.entry.name);
  }

  /**
   * Loads the model if needed and holds it loaded until `release`. `keepAliveMs` (the server's default when not
   * given) replaces that of earlier requests: when the last request in flight ends, the model stays loaded that long.
   */
  async acquire(entry: ModelEntry, keepAliveMs?: number): Promise<Lease> {
    // Removed since the request resolved it (deleted, an adapter unloaded): gone for this request too.
    const slot = this.slots.get(entry.name);
    if (!slot) throw notFound(entry.name);
    const t0 = performance.now();
    slot.keepAliveMs = keepAliveMs ?? this.opts.keepAliveMs;
    slot.keepAliveAsked = keepAliveMs !== undefined;
    if (slot.timer) clearTimeout(slot.timer);
    slot.timer = null;
    this.startLoad(slot);
    const resident = slot.resident ?? (await this.loaded(slot));
    const loadMs = performance.now() - t0;
    resident.active++;
    resident.expiresAt = null;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      resident.active--;
      slot.lastUsed = performance.now();
      if (resident.active > 0 || slot.resident !== resident) return;
      if (slot.retired) this.settleRetired(slot).catch((err: Error) => this.unloadFailed(slot, err));
      else this.scheduleUnload(slot, slot.keepAliveMs);
    };
    return {
      resident,
      loadMs,
      release,
      unload: async () => {
        release();
        // Its keep-alive (the latest request's) 0 and nothing else running: unloaded before the answer, so that a
        // client's next /api/ps no longer lists it (the timer scheduleUnload set would fire only after).
        const due = slot.keepAliveMs === 0 && slot.timer !== null;
        if (due && resident.active === 0 && slot.resident === resident) await this.evict(slot);
      },
    };
  }

  /** Loads a start-up model with no time limit (a request would give up after the load timeout). */
  async preload(entry: ModelEntry): Promise<ResidentModel> {
    const slot = this.slots.get(entry.name)!;
    this.startLoad(slot);
    return slot.resident ?? slot.loading!;
  }

  private startLoad(slot: Slot): void {
    if (slot.resident || slot.loading) return;
    slot.loading = this.load(slot).catch((err: unknown) => {
      throw new ApiError(
        500,
        `model "${slot.entry.name}" failed to load: ${(err as Error).message}`,
        'model',
        'model_load_failed',
      );
    });
    const done = () => {
      slot.loading = null;
      // A removed model whose load just ended: the requests that waited for it take it first (they resume before
      // the next macrotask), then it goes when they are done, or now if none waited.
      if (slot.retired)
        setImmediate(() => this.settleRetired(slot).catch((err: Error) => this.unloadFailed(slot, err)));
    };
    slot.loading.then(done, done);
  }

  /** The slot's load, or a 503 once it has taken longer than the load timeout (the load itself goes on). */
  private loaded(slot: Slot): Promise<ResidentModel> {
    const limit = this.opts.loadTimeoutMs ?? 0;
    if (limit <= 0) return slot.loading!;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const message = `model "${slot.entry.name}" is still loading after ${limit / 1000} s; try again later`;
        reject(new ApiError(503, message, 'model', 'model_loading', { 'retry-after': '5' }));
      }, limit);
    });
    return Promise.race([slot.loading!, late]).finally(() => clearTimeout(timer));
  }

  /** Unloads every loaded model (one still loading is not waited for: a stuck load must not hold the exit). */
  async shutdown(): Promise<void> {
    const slots = [...this.slots.values(), ...this.retired];
    await Promise.all(slots.map((s) => (s.resident ? this.evict(s, true) : null)));
  }

  private async load(slot: Slot): Promise<ResidentModel> {
    const unpinned = [...this.slots.values()].filter((s) => s.resident && !s.entry.pinned);
    if (!slot.entry.pinned && unpinned.length >= this.opts.maxLoaded) {
      const idle = unpinned.filter((s) => s.resident!.active === 0).sort((a, b) => a.lastUsed - b.lastUsed);
      for (const s of idle.slice(0, unpinned.length - this.opts.maxLoaded + 1)) await this.evict(s);
    }
    const [model, info] = await Promise.all([this.source.load(slot.entry), this.info(slot.entry)]);
    slot.resident = { entry: slot.entry, model, info, loadedAt: new Date(), expiresAt: null, active: 0 };
    return slot.resident;
  }

  private scheduleUnload(slot: Slot, keepAliveMs: number): void {
    if (slot.timer) clearTimeout(slot.timer);
    slot.timer = null;
    if (keepAliveMs < 0 || (slot.entry.pinned && !(slot.keepAliveAsked && keepAliveMs === 0))) return;
    slot.resident!.expiresAt = new Date(Date.now() + keepAliveMs);
    slot.timer = setTimeout(() => {
      this.evict(slot).catch((err: Error) => this.unloadFailed(slot, err));
    }, keepAliveMs);
    slot.timer.unref();
  }

  private unloadFailed(slot: Slot, err: Error): void {
    this.opts.log?.(`unloading ${slot.entry.name}: ${err.message}`);
  }

  private async evict(slot: Slot, force = false): Promise<void> {
    if (slot.timer) clearTimeout(slot.timer);
    slot.timer = null;
    const r = slot.resident;
    if (!r || (r.active > 0 && !force)) return;
    slot.resident = null;
    await r.model.engine.shutdown(force);
  }
}
