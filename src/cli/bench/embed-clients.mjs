// Worker of runEmbedClients (embed.ts): `concurrency` clients post one input each to /v1/embeddings until all are
// answered; replies { seconds } or { error }.
import { parentPort, workerData } from 'node:worker_threads';

const { url, model, inputs, concurrency } = workerData;
let next = 0;
async function client() {
  while (next < inputs.length) {
    const input = inputs[next++];
    const res = await fetch(`${url}/v1/embeddings`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model, input: [input], encoding_format: 'base64' }),
    });
    const body = await res.json();
    if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${JSON.stringify(body).slice(0, 300)}`);
  }
}
try {
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, client));
  parentPort.postMessage({ seconds: (performance.now() - t0) / 1000 });
} catch (err) {
  parentPort.postMessage({ error: String(err?.message ?? err) });
}
