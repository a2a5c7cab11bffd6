import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import koffi from 'koffi';

// What a runner thread does with koffi (the CUDA backend's driver, cuBLASLt, NVRTC): load a library and call into it
// from a worker thread, while the main thread and another worker use the same library.
const CALLS = `
const { parentPort, workerData } = require('node:worker_threads');
const koffi = require('koffi');
const libc = koffi.load('libc.so.6');
const strlen = libc.func('size_t strlen(const char *s)');
const memset = libc.func('void *memset(_Out_ uint8_t *s, int c, size_t n)');
const bytes = new Uint8Array(workerData.n);
memset(bytes, workerData.fill, bytes.length);
parentPort.postMessage({ length: Number(strlen(workerData.text)), sum: bytes.reduce((a, b) => a + b, 0) });
`;

function callsInWorker(text: string, fill: number, n: number): Promise<{ length: number; sum: number }> {
  const worker = new Worker(CALLS, { eval: true, workerData: { text, fill, n } });
  return new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`worker exited (code ${code}) before answering`)));
  });
}

test('koffi loads libc and calls it in worker threads, beside the main thread', {
  skip: process.platform !== 'linux' && 'libc.so.6 is Linux only',
}, async () => {
  const strlen = koffi.load('libc.so.6').func('size_t strlen(const char *s)');
  const answers = Promise.all([callsInWorker('runner thread', 3, 1000), callsInWorker('another', 7, 10)]);
  assert.equal(Number(strlen('main thread')), 11);
  assert.deepEqual(await answers, [
    { length: 13, sum: 3000 },
    { length: 7, sum: 70 },
  ]);
});
