import { parentPort, workerData } from 'node:worker_threads';
import { quantizeToGguf } from '../loader/gguf/quantize.ts';
import type { QuantScheme } from '../primitives/quant/mix.ts';
import { UserError } from '../util/errors.ts';

/** One `quantizeToGguf` off the main thread (see quantized-blob.ts): its outcome is the one message posted back. */
export interface QuantizeOutcome {
  ok: boolean;
  message?: string;
  /** The failure was a user error (one line for the user), not a fault. */
  user?: boolean;
}

const { source, out, scheme } = workerData as { source: string; out: string; scheme: QuantScheme };
let outcome: QuantizeOutcome;
try {
  quantizeToGguf(source, out, scheme);
  outcome = { ok: true };
} catch (err) {
  outcome = { ok: false, message: (err as Error).message, user: err instanceof UserError };
}
parentPort!.postMessage(outcome);
