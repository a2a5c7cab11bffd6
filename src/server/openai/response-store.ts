/** A stored response: the response object as returned, and the conversation items it answered (input order). */
export interface StoredResponse {
  response: Record<string, unknown>;
  input: Record<string, unknown>[];
  /** How many of the last `input` items were the request's own (the rest came with `previous_response_id`). */
  own: number;
}

/** At most this many responses are kept, and at most this many bytes of them (as JSON): the oldest go first. */
const MAX_RESPONSES = 10_000;
const MAX_BYTES = 256 * 1024 * 1024;

/**
 * The Responses API's store, in memory: responses created with `store` (the API's default) are kept, by id, for GET
 * /v1/responses/{id}, its input_items and `previous_response_id`, until deleted or evicted (least recently used first,
 * past MAX_RESPONSES or MAX_BYTES), and are gone when the server stops. Each entry keeps its whole conversation, so a
 * chain of responses survives the eviction of its earlier links.
 */
export class ResponseStore {
  private readonly entries = new Map<string, { stored: StoredResponse; bytes: number }>();
  private bytes = 0;

  constructor(
    private readonly maxResponses = MAX_RESPONSES,
    private readonly maxBytes = MAX_BYTES,
  ) {}

  put(id: string, stored: StoredResponse): void {
    this.delete(id);
    const bytes = JSON.stringify(stored).length;
    if (bytes > this.maxBytes) return;
    this.entries.set(id, { stored, bytes });
    this.bytes += bytes;
    for (const [oldest] of this.entries) {
      if (this.entries.size <= this.maxResponses && this.bytes <= this.maxBytes) break;
      this.delete(oldest);
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

  delete(id: string): boolean {
    const entry = this.entries.get(id);
    if (!entry) return false;
    this.entries.delete(id);
    this.bytes -= entry.bytes;
    return true;
  }
}
