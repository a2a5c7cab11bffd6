import type { BackgroundRun, NumberedEvent } from './background-run.ts';

/** A stored response: the response object as returned, and the conversation items it answered (input order). */
export interface StoredResponse {
  response: Record<string, unknown>;
  input: Record<string, unknown>[];
  /** How many of the last `input` items were the request's own (the rest came with `previous_response_id`). */
  own: number;
  /** A streamed background response's events, for GET ?stream=true after it ended. */
  events?: NumberedEvent[];
}

/** At most this many responses are kept, and at most this many bytes of them (as JSON): the oldest go first. */
const MAX_RESPONSES = 10_000;
const MAX_BYTES = 256 * 1024 * 1024;

/**
 * The Responses API's store, in memory: responses created with `store` (the API's default) are kept, by id, for GET
 * /v1/responses/{id}, its input_items and `previous_response_id`, until deleted or evicted (least recently used first,
 * past MAX_RESPONSES or MAX_BYTES), and are gone when the server stops. Each entry keeps its whole conversation, so a
 * chain of responses survives the eviction of its earlier links. A background response is stored as queued when it
 * starts and again when its run ends; meanwhile its run (background-run.ts) is found by `running`.
 */
export class ResponseStore {
  private readonly entries = new Map<string, { stored: StoredResponse; bytes: number }>();
  private readonly runs = new Map<string, BackgroundRun>();
  private bytes = 0;

  constructor(
    private readonly maxResponses = MAX_RESPONSES,
    private readonly maxBytes = MAX_BYTES,
  ) {}

  put(id: string, stored: StoredResponse): void {
    this.drop(id);
    const bytes = JSON.stringify(stored).length;
    if (bytes > this.maxBytes) return;
    this.entries.set(id, { stored, bytes });
    this.bytes += bytes;
    for (const [oldest] of this.entries) {
      if (this.entries.size <= this.maxResponses && this.bytes <= this.maxBytes) break;
      this.drop(oldest);
    }
  }

  /** The stored response (now the most recently used), or undefined. */
  get(id: string): StoredResponse | undefined {
    const entry = this.entries.get(id);
    if (!entry) return undefined;
    this.entries.delete(id);
    this.entries.set(id, entry);
    return entry.stored;
  }

  /** A background response starts: stored as it was queued, its run found by `running` until `finish`. */
  begin(id: string, run: BackgroundRun, queued: StoredResponse): void {
    this.runs.set(id, run);
    this.put(id, queued);
  }

  running(id: string): BackgroundRun | undefined {
    return this.runs.get(id);
  }

  /** A background run's end: its final response stored (unless it was deleted meanwhile), then the run ends. */
  finish(id: string, run: BackgroundRun, stored: StoredResponse): void {
    if (this.runs.get(id) === run) {
      this.runs.delete(id);
      this.put(id, stored);
    }
    run.end();
  }

  /** Deletes a response; one still running is cancelled and not stored when it ends. */
  delete(id: string): boolean {
    const run = this.runs.get(id);
    if (run) {
      this.runs.delete(id);
      run.cancel();
    }
    return this.drop(id) || run !== undefined;
  }

  /** Forgets a stored response (a running one's run goes on). */
  private drop(id: string): boolean {
    const entry = this.entries.get(id);
    if (!entry) return false;
    this.entries.delete(id);
    this.bytes -= entry.bytes;
    return true;
  }
}
