// Worker of runEmbedClients (embed.ts): `concurrency` clients post one input each to /v1/embeddings, taking the next
// input from the counter every worker shares, until none is left. Posts 'ready' once set up, starts on 'go', then
// posts { done: true } or { error }.
import http from 'node:http';
import { parentPort, workerData } from 'node:worker_threads';

const { url, model, inputs, concurrency, next } = workerData;
const { hostname, port } = new URL(url);
// node:http with kept-alive sockets: fetch costs the client several times what it costs the server.
const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });

function post(body) {
  return new Promise((resolve, reject) => {
    const headers = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
    const req = http.request({ agent, hostname, port, path: '/v1/embeddings', method: 'POST', headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: JSON.parse(Buffer.concat(chunks).toString()) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function client() {
  for (let i = Atomics.add(next, 0, 1); i < inputs.length; i = Atomics.add(next, 0, 1)) {
    const res = await post(JSON.stringify({ model, input: [inputs[i]], encoding_format: 'base64' }));
    if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${JSON.stringify(res.body).slice(0, 300)}`);
  }
}

parentPort.once('message', async () => {
  try {
    await Promise.all(Array.from({ length: concurrency }, client));
    parentPort.postMessage({ done: true });
  } catch (err) {
    parentPort.postMessage({ error: String(err?.message ?? err) });
  } finally {
    agent.destroy();
  }
});
parentPort.postMessage('ready');
