import type { GrammarVocabulary } from './vocabulary.ts';

/**
 * The memory the grammar workers share with the step loop: an Int32 status array (per matcher slot a version counter
 * and a state) and one token bitmask per slot (bit i of word i >> 5 set = token i allowed). A slot belongs to the
 * worker holding its matcher; only that worker writes it.
 */

export enum SlotState {
  /** The mask of the next token is ready. */
  Running = 0,
  /** A stop token was accepted. */
  Terminated = 1,
  /** The last token broke the grammar (cannot happen when every draw obeys the mask). */
  Rejected = 2,
  /** The grammar is complete: only stop tokens remain allowed. */
  Complete = 3,
  /** The worker holding the matcher failed (the service's answer; no worker writes it). */
  Failed = 4,
}

export const versionIndex = (slot: number) => 2 * slot;
export const stateIndex = (slot: number) => 2 * slot + 1;
export const maskWords = (vocabSize: number) => Math.ceil(vocabSize / 32);

export interface GrammarWorkerData {
  tokens: string[];
  vocabType: GrammarVocabulary['vocabType'];
  prependSpace: boolean;
  /** Logit rows are this wide (the tokenizer's vocabulary may be padded). */
  vocabSize: number;
  stopTokenIds: number[];
  status: SharedArrayBuffer;
  masks: SharedArrayBuffer;
  /** One Int32, this worker's own: set to 1 (and notified) once it failed. */
  failed: SharedArrayBuffer;
}

/** Messages to the worker. `advance.items` is flat: slot, token, slot, token, ... */
export type GrammarRequest =
  | { op: 'compile'; key: string; spec: import('./spec.ts').GrammarSpec }
  | { op: 'open'; slot: number; key: string; spec: import('./spec.ts').GrammarSpec; stopTokenIds: number[] }
  | { op: 'advance'; items: number[] }
  | { op: 'close'; slot: number };

export type GrammarReply =
  | { op: 'ready' }
  | { op: 'compiled'; key: string; error?: string }
  | { op: 'failed'; error: string };
