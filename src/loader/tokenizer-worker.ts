// A worker thread that loads one model folder's tokenizer and encodes the texts posted to it.
import { parentPort, workerData } from 'node:worker_threads';
import { loadTokenizer, type TokenizerGenerationIds } from './tokenizer.ts';

const { dir, generation } = workerData as { dir: string; generation?: TokenizerGenerationIds };
const tokenizer = loadTokenizer(dir, generation);

parentPort!.on('message', ({ id, text, addSpecialTokens }: { id: number; text: string; addSpecialTokens: boolean }) => {
  try {
    parentPort!.postMessage({ id, ids: tokenizer.encode(text, { addSpecialTokens }) });
  } catch (err) {
    parentPort!.postMessage({ id, error: (err as Error).message });
  }
});
