// A grammar worker: owns an xgrammar instance (WebAssembly), compiles specs and runs the matchers of the grammars it
// compiled, writing each matcher's next-token bitmask into shared memory for the step loop. Requests are handled one
// at a time, in order.
import { parentPort, workerData } from 'node:worker_threads';
import { compileSpec } from './compile.ts';
import {
  type GrammarReply,
  type GrammarRequest,
  type GrammarWorkerData,
  maskWords,
  SlotState,
  stateIndex,
  versionIndex,
} from './shared-state.ts';
import type { GrammarSpec } from './spec.ts';
import { UTF8_START, Utf8Guard, type Utf8State } from './utf8-guard.ts';
import { tokenBytes } from './vocabulary.ts';
import { type CompiledGrammar, type GrammarMatcher, xgrammar } from './xgrammar.ts';

const data = workerData as GrammarWorkerData;
const status = new Int32Array(data.status);
const masks = new Int32Array(data.masks);
const words = maskWords(data.vocabSize);
const CACHE_LIMIT = 256;

/**
 * xgrammar sees the tokenizer's ids and the stop ids, not the logit row's padding past them (no other token there is
 * ever allowed): a padded row makes every mask slower for nothing. The stop ids stay inside, for a matcher must have
 * one (see `open`). One past the tokenizer's ids (a model's EOS beyond a fixture vocabulary padded to its width) is
 * still never in xgrammar's masks: such a grammar ends by completing, where only stop ids remain.
 */
const grammarVocabSize = Math.min(
  data.vocabSize,
  Math.max(data.tokens.length, ...data.stopTokenIds.map((id) => id + 1)),
);
const inGrammarVocab = (ids: readonly number[]) => ids.filter((id) => id < grammarVocabSize);

const x = xgrammar();
const info = await x.TokenizerInfo.createTokenizerInfo(
  data.tokens,
  data.vocabType,
  data.prependSpace,
  grammarVocabSize,
  inGrammarVocab(data.stopTokenIds),
);
/**
 * Replaced after every failed compile: xgrammar's compiler keeps a failed JSON schema in its own cache as never
 * finished, and compiling the same schema again on it spins forever (the whole worker with it). Grammars it compiled
 * stay valid without it; its cache is redundant with `compiled`.
 */
let compiler = await x.GrammarCompiler.createGrammarCompiler(info);
/** Compiled grammars by spec key, least recently used first. */
const compiled = new Map<string, { grammar: CompiledGrammar; json: boolean }>();
/** `borrowed`: stop ids lent to xgrammar only so that it has one (see `open`), cleared from every mask. */
const matchers = new Map<
  number,
  { matcher: GrammarMatcher; json: boolean; stops: number[]; borrowed: number[]; utf8: Utf8State }
>();
const utf8 = new Utf8Guard(
  tokenBytes({ tokens: data.tokens, vocabType: data.vocabType, prependSpace: data.prependSpace }),
  words,
);

/** Token ids the tokenizer has: xgrammar may leave bits past them set in its last word. */
const inVocab = new Int32Array(words);
for (let id = 0; id < grammarVocabSize; id++) inVocab[id >> 5]! |= 1 << (id & 31);
/**
 * ...without those whose text holds a control character: JSON never needs one raw, and xgrammar's rule for strings
 * with a length bound (`[^"\\\r\n]{m,n}`) would let a tab or form feed through, which JSON.parse rejects.
 */
const jsonSafe = inVocab.slice();
{
  const decoded = info.getDecodedVocabHandle();
  for (let id = 0; id < Math.min(decoded.size(), data.vocabSize); id++) {
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the point
    if (/[\u0000-\u001f]/.test(decoded.get(id))) jsonSafe[id >> 5]! &= ~(1 << (id & 31));
  }
  decoded.delete();
}

// The first compile of a thread pays WebAssembly tier-up (hundreds of ms); pay it now, not on a request.
await compiler.compileJSONSchema('{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}}}');

function post(reply: GrammarReply): void {
  parentPort!.postMessage(reply);
}

async function compile(key: string, spec: GrammarSpec): Promise<void> {
  if (compiled.has(key)) return post({ op: 'compiled', key });
  try {
    await cache(key, spec);
    post({ op: 'compiled', key });
  } catch (err) {
    compiler.dispose();
    compiler = await x.GrammarCompiler.createGrammarCompiler(info);
    post({ op: 'compiled', key, error: (err as Error).message });
  }
}

/** Compiles a spec into the cache, evicting the least recently used grammar past the limit. */
async function cache(key: string, spec: GrammarSpec): Promise<{ grammar: CompiledGrammar; json: boolean }> {
  const entry = {
    grammar: await compileSpec(compiler, spec),
    json: spec.type === 'json_object' || spec.type === 'json_schema',
  };
  compiled.set(key, entry);
  if (compiled.size > CACHE_LIMIT) {
    const [oldest, old] = compiled.entries().next().value!;
    compiled.delete(oldest);
    old.grammar.dispose();
  }
  return entry;
}

/** Writes the slot's next mask and state, then publishes them by bumping its version. */
async function publish(slot: number, state: SlotState): Promise<void> {
  const m = matchers.get(slot)!;
  if (state === SlotState.Running) {
    const mask = await m.matcher.getNextTokenBitmask();
    const out = masks.subarray(slot * words, (slot + 1) * words);
    const base = m.json ? jsonSafe : inVocab;
    for (let w = 0; w < mask.length; w++) out[w] = mask[w]! & base[w]!;
    for (const id of m.borrowed) out[id >> 5]! &= ~(1 << (id & 31));
    out.fill(0, mask.length);
    utf8.narrow(out, m.utf8);
    let nonStop = false;
    for (let w = 0; w < words && !nonStop; w++) nonStop = out[w] !== 0 && out[w] !== stopBits(m.stops, w, out[w]!);
    if (!nonStop) state = SlotState.Complete;
  }
  Atomics.store(status, stateIndex(slot), state);
  Atomics.add(status, versionIndex(slot), 1);
  Atomics.notify(status, versionIndex(slot));
}

/** The bits of word `w` that are stop tokens. */
function stopBits(stops: readonly number[], w: number, bits: number): number {
  let s = 0;
  for (const id of stops) if (id >> 5 === w) s |= 1 << (id & 31);
  return bits & s;
}

async function open(slot: number, key: string, spec: GrammarSpec, stopTokenIds: number[]): Promise<void> {
  // A grammar evicted since it compiled here compiles again (the service does not track this cache).
  const entry = compiled.get(key) ?? (await cache(key, spec));
  compiled.delete(key);
  compiled.set(key, entry);
  // xgrammar aborts on a matcher without a stop id (taking the worker and every matcher on it down): a request with
  // none of its own (ignore_eos and no stop_token_ids) borrows the tokenizer's, which `publish` never lets through.
  const own = inGrammarVocab(stopTokenIds);
  const borrowed = own.length > 0 ? [] : inGrammarVocab(data.stopTokenIds);
  const matcher = await x.GrammarMatcher.createGrammarMatcher(entry.grammar, own.length > 0 ? own : borrowed);
  matchers.set(slot, { matcher, json: entry.json, stops: stopTokenIds, borrowed, utf8: UTF8_START });
  await publish(slot, SlotState.Running);
}

async function advance(items: number[]): Promise<void> {
  for (let i = 0; i < items.length; i += 2) {
    const slot = items[i]!;
    const m = matchers.get(slot);
    if (!m) {
      // Closed before its last token arrived; the version still moves, as the step loop counts on.
      Atomics.add(status, versionIndex(slot), 1);
      continue;
    }
    const token = items[i + 1]!;
    const ok = m.matcher.acceptToken(token);
    m.utf8 = utf8.next(m.utf8, token);
    await publish(slot, !ok ? SlotState.Rejected : m.matcher.isTerminated() ? SlotState.Terminated : SlotState.Running);
  }
}

async function handle(req: GrammarRequest): Promise<void> {
  switch (req.op) {
    case 'compile':
      return compile(req.key, req.spec);
    case 'open':
      return open(req.slot, req.key, req.spec, req.stopTokenIds);
    case 'advance':
      return advance(req.items);
    case 'close':
      matchers.get(req.slot)?.matcher.dispose();
      matchers.delete(req.slot);
  }
}

const failedFlag = new Int32Array(data.failed);

/**
 * Tells the step loop at once, through shared memory, that this worker failed: its flag set, then every slot the step
 * loop could be waiting on here (its matchers' and the request's) woken, for the loop may be blocked in a wait, deaf
 * to messages until it has an answer. Only the flag is written: a slot may already belong to another worker.
 */
function publishFailure(req: GrammarRequest): void {
  Atomics.store(failedFlag, 0, 1);
  Atomics.notify(failedFlag, 0);
  const slots = new Set(matchers.keys());
  if (req.op === 'open' || req.op === 'close') slots.add(req.slot);
  if (req.op === 'advance') for (let i = 0; i < req.items.length; i += 2) slots.add(req.items[i]!);
  for (const slot of slots) Atomics.notify(status, versionIndex(slot));
}

/** After a failure the matchers' state is unknown: every later request is answered with the failure too. */
let failed = false;
let chain = Promise.resolve();
parentPort!.on('message', (req: GrammarRequest) => {
  chain = chain
    .then(() => (failed ? publishFailure(req) : handle(req)))
    .catch((err: Error) => {
      failed = true;
      // The reason first: the service ends this thread once it sees the flag, and a message posted before that
      // still arrives.
      post({ op: 'failed', error: err.message });
      publishFailure(req);
    });
});
// Set up: the service times compiles from here (see its watchdog), not through this thread's start.
post({ op: 'ready' });
