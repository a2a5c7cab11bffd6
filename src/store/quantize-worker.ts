import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { quantizeToGguf } from '../loader/gguf/quantize.ts';
import type { QuantScheme } from '../primitives/quant/mix.ts';
import { UserError } from '../util/errors.ts';

/** One `quantizeToGguf` and the file's hash off the main thread (see quantized-blob.ts): its outcome is the one message posted back. */
export interface QuantizeOutcome {
  ok: boolean;
  /** The written file's SHA-256, hex. */
  digest?: string;
  message?: string;
  /** The failure was a user error (one line for the user), not a fault. */
  user?: boolean;
}

function sha256File(path: string): string {
  const hash = createHash('sha256');
  const buf = Buffer.allocUnsafe(16 * 2 ** 20);
  const fd = openSync(path, 'r');
  try {
    for (let n = readSync(fd, buf); n > 0; n = readSync(fd, buf)) hash.update(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

const { source, out, scheme } = workerData as { source: string; out: string; scheme: QuantScheme };
let outcome: QuantizeOutcome;
try {
  quantizeToGguf(source, out, scheme);
  outcome = { ok: true, digest: sha256File(out) };
} catch (err) {
  outcome = { ok: false, message: (err as Error).message, user: err instanceof UserError };
}
parentPort!.postMessage(outcome);
