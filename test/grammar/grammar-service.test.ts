import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { GrammarService } from '../../src/grammar/grammar-service.ts';
import { SlotState } from '../../src/grammar/shared-state.ts';
import type { GrammarSpec } from '../../src/grammar/spec.ts';
import { loadGrammarVocabulary } from '../../src/grammar/vocabulary.ts';
import { loadTokenizer } from '../../src/loader/tokenizer.ts';
import { UserError } from '../../src/util/errors.ts';
import { mulberry32 } from '../../src/util/random.ts';
import { modelFixture } from '../helpers/fixtures.ts';
import { jsonValidator, schemaViolation } from '../helpers/json-validator.ts';
import { SCHEMAS } from './schemas.ts';

const fixture = modelFixture('tiny-qwen2');
const tokenizer = fixture.skip ? null : loadTokenizer(fixture.path);
const service = fixture.skip
  ? null
  : new GrammarService({
      vocabulary: () => loadGrammarVocabulary(fixture.path),
      // Padded past the tokenizer, as model vocabularies often are: the padding must never be allowed.
      vocabSize: tokenizer!.vocabSize + 40,
      stopTokenIds: tokenizer!.eosTokenIds,
      capacity: 8,
    });
after(() => service?.close());

/** A "random model": every step draws uniformly among the tokens the mask allows. */
async function randomWalk(spec: GrammarSpec, seed: number, maxTokens: number) {
  const svc = service!;
  const g = svc.open(await svc.compile(spec), tokenizer!.eosTokenIds);
  const rand = mulberry32(seed);
  const ids: number[] = [];
  let finished: 'stop' | 'length' = 'length';
  try {
    while (ids.length < maxTokens) {
      const state = g.state();
      assert.notEqual(
        state,
        SlotState.Rejected,
        `token ${ids.at(-1)} drawn from the mask was rejected after ${JSON.stringify(tokenizer!.decode(ids))}`,
      );
      if (state !== SlotState.Running) {
        finished = 'stop';
        break;
      }
      const mask = g.mask();
      const allowed: number[] = [];
      for (let id = 0; id < mask.length * 32; id++) if ((mask[id >> 5]! >>> (id & 31)) & 1) allowed.push(id);
      assert.ok(allowed.length > 0, 'the mask allows nothing');
      assert.ok(
        allowed.every((id) => id < tokenizer!.vocabSize),
        'a padding token is allowed',
      );
      const token = allowed[Math.floor(rand() * allowed.length)]!;
      g.accept(token);
      svc.flush();
      if (tokenizer!.eosTokenIds.includes(token)) {
        finished = 'stop';
        break;
      }
      ids.push(token);
    }
  } finally {
    g.release();
  }
  return { text: tokenizer!.decode(ids, { skipSpecialTokens: true }), finished };
}

describe('grammar service (xgrammar in a worker)', { skip: fixture.skip }, () => {
  test('random walks under 50 JSON schemas always parse and validate; at least 95% finish', async () => {
    const ajv = jsonValidator();
    let runs = 0;
    let stopped = 0;
    const unfinished: string[] = [];
    for (const [i, { name, schema }] of SCHEMAS.entries()) {
      for (let seed = 0; seed < 6; seed++) {
        const { text, finished } = await randomWalk({ type: 'json_schema', schema }, i * 100 + seed, 600).catch(
          (err: Error) => {
            throw new Error(`${name}, seed ${seed}: ${err.message}`);
          },
        );
        runs++;
        if (finished !== 'stop') {
          unfinished.push(name);
          continue;
        }
        stopped++;
        const why = schemaViolation(ajv, schema, text);
        assert.equal(why, null, `${name}, seed ${seed}: ${why}`);
      }
    }
    assert.ok(stopped >= 0.95 * runs, `${stopped} of ${runs} finished; not: ${unfinished.join(', ')}`);
  });

  test('json_object, regex, choice and GBNF grammars', async () => {
    for (let seed = 0; seed < 5; seed++) {
      const obj = await randomWalk({ type: 'json_object' }, seed, 400);
      if (obj.finished === 'stop') assert.equal(typeof JSON.parse(obj.text), 'object');
      const re = await randomWalk({ type: 'regex', pattern: '[a-c]{2,5}-(x|yz)' }, seed, 50);
      assert.match(re.text, /^[a-c]{2,5}-(x|yz)$/);
      const choice = await randomWalk({ type: 'choice', choices: ['alpha', 'beta gamma', 'δ "quoted"'] }, seed, 50);
      assert.ok(['alpha', 'beta gamma', 'δ "quoted"'].includes(choice.text), choice.text);
      const gbnf = await randomWalk({ type: 'grammar', grammar: 'root ::= "(" [0-9]+ ("," [0-9]+)? ")"' }, seed, 50);
      if (gbnf.finished === 'stop') assert.match(gbnf.text, /^\(\d+(,\d+)?\)$/);
    }
  });

  /** Feeds `text`'s tokens to a matcher of `spec`: how many the masks allowed in turn, and whether it then ended. */
  async function follow(spec: GrammarSpec, text: string) {
    const svc = service!;
    const g = svc.open(await svc.compile(spec), tokenizer!.eosTokenIds);
    const ids = tokenizer!.encode(text, { addSpecialTokens: false });
    let allowed = 0;
    try {
      for (const id of ids) {
        if (g.state() !== SlotState.Running || !((g.mask()[id >> 5]! >>> (id & 31)) & 1)) break;
        g.accept(id);
        svc.flush();
        allowed++;
      }
      return { allowed: allowed === ids.length ? 'all' : allowed, complete: g.state() === SlotState.Complete };
    } finally {
      g.release();
    }
  }

  test('a constraint after reasoning: free text to </think>, a blank line, then the constraint; none before it', async () => {
    const schema = { type: 'object', properties: { a: { type: 'boolean' } }, required: ['a'] };
    const block = { type: 'after_reasoning', begin: '<think>', end: '</think>' } as const;
    const inside: GrammarSpec = { ...block, startsInside: true, inner: { type: 'json_schema', schema } };
    assert.deepEqual(await follow(inside, 'Let me see: {"b": 1} is wrong.\n</think>\n\n{"a": true}'), {
      allowed: 'all',
      complete: true,
    });
    // The prompt opened the block: JSON at once is reasoning text, the answer still to come.
    assert.deepEqual(await follow(inside, '{"a": true}'), { allowed: 'all', complete: false });
    assert.notEqual((await follow(inside, 'ok</think>{"a": 1}')).allowed, 'all');
    // The model may open a block first, or answer at once; nothing else comes before the answer.
    const optional: GrammarSpec = { ...block, startsInside: false, inner: { type: 'choice', choices: ['yes', 'no'] } };
    assert.deepEqual(await follow(optional, '<think>hmm</think>\nno'), { allowed: 'all', complete: true });
    assert.deepEqual(await follow(optional, 'yes'), { allowed: 'all', complete: true });
    assert.equal((await follow(optional, 'maybe')).allowed, 0);
    // Random walks end in the constraint's language after the block.
    for (let seed = 0; seed < 3; seed++) {
      const walk = await randomWalk(
        { ...block, startsInside: false, inner: { type: 'regex', pattern: '[0-9]{3}' } },
        seed,
        60,
      );
      if (walk.finished === 'stop') assert.match(walk.text, /^(<think>[\s\S]*<\/think>\s{0,2})?[0-9]{3}$/);
    }
    // The JSON after the block never holds a character JSON.parse refuses (xgrammar lets control characters, quotes
    // and backslashes into length-bounded strings and patterns' classes; a whole-output grammar's token mask takes the
    // control characters out, which the reasoning cannot have).
    const bounded = {
      type: 'object',
      properties: { c: { type: 'string', maxLength: 6 }, f: { type: 'string', pattern: '^[^,]{1,4}$' } },
      required: ['c', 'f'],
    };
    let parsed = 0;
    for (let seed = 0; seed < 12; seed++) {
      const walk = await randomWalk(
        { ...block, startsInside: false, inner: { type: 'json_schema', schema: bounded } },
        seed,
        60,
      );
      if (walk.finished !== 'stop') continue;
      JSON.parse(walk.text.replace(/^<think>[\s\S]*<\/think>/, ''));
      parsed++;
    }
    assert.ok(parsed >= 6, `${parsed} of 12 walks finished`);
    await assert.rejects(
      service!.compile({ ...block, startsInside: true, inner: { type: 'json_schema', schema: { type: 'strin' } } }),
      /invalid JSON schema: .*Unsupported type "strin"/,
    );
  });

  test('an invalid schema, regex or grammar is a UserError naming the problem', async () => {
    const cases: [GrammarSpec, RegExp][] = [
      [{ type: 'json_schema', schema: { type: 'strin' } }, /invalid JSON schema: .*Unsupported type "strin"/],
      [{ type: 'json_schema', schema: { $ref: '#/$defs/missing' } }, /invalid JSON schema: .*\$defs/],
      [{ type: 'regex', pattern: '[a-' }, /invalid regular expression: .*Unclosed '\['/],
      [{ type: 'grammar', grammar: 'root ::= undefined_rule' }, /invalid grammar: .*"undefined_rule" is not defined/],
    ];
    // Twice each: xgrammar's compiler, asked again for a JSON schema it failed on, spun forever (and its worker with
    // it) until the worker renewed its compiler after a failure.
    for (const [spec, message] of [...cases, ...cases]) {
      await assert.rejects(
        service!.compile(spec),
        (err: Error) => err instanceof UserError && message.test(err.message),
      );
    }
    // The worker is still usable after xgrammar aborted a compile.
    assert.match((await randomWalk({ type: 'regex', pattern: 'ok' }, 1, 5)).text, /^ok$/);
  });

  test('a compile that outlasts its deadline fails its worker with a clear error; the next compile gets a new one', async () => {
    const svc = new GrammarService({
      vocabulary: () => loadGrammarVocabulary(fixture.path),
      vocabSize: tokenizer!.vocabSize,
      stopTokenIds: tokenizer!.eosTokenIds,
      capacity: 2,
      workers: 1,
      compileTimeoutMs: 1000,
    });
    try {
      // 64,000 choices take over a minute to compile here (16,000 took ~3 s), far past the deadline, which runs from
      // when this thread sees the worker ready: a busy machine that delays this thread by seconds still sees it pass.
      const choices = Array.from({ length: 64000 }, (_, i) => `choice-${i}-${(i * 7919) % 10007}`);
      await assert.rejects(svc.compile({ type: 'choice', choices }), /a grammar compile did not finish in 1 s/);
      assert.equal(svc.load.length, 0, 'the stuck worker is gone');
      const g = svc.open(await svc.compile({ type: 'regex', pattern: 'ok' }), tokenizer!.eosTokenIds);
      assert.equal(g.state(), SlotState.Running);
      g.release();
    } finally {
      await svc.close();
    }
  });

  test('equal specs share one compiled grammar, whatever their key order', async () => {
    const a = service!.compile({
      type: 'json_schema',
      schema: { type: 'object', properties: { a: { type: 'integer' } } },
    });
    const b = service!.compile({
      type: 'json_schema',
      schema: { properties: { a: { type: 'integer' } }, type: 'object' },
    });
    assert.equal(a, b);
    assert.equal(await a, await b);
  });

  test('a finished grammar allows only stop tokens and says so', async () => {
    const svc = service!;
    const g = svc.open(await svc.compile({ type: 'choice', choices: ['x'] }), tokenizer!.eosTokenIds);
    const x = tokenizer!.encode('x', { addSpecialTokens: false });
    assert.equal(x.length, 1);
    assert.equal(g.state(), SlotState.Running);
    g.accept(x[0]!);
    svc.flush();
    assert.equal(g.state(), SlotState.Complete);
    const eos = tokenizer!.eosTokenIds[0]!;
    assert.equal((g.mask()[eos >> 5]! >>> (eos & 31)) & 1, 1);
    g.release();
  });

  const vocabSize = (tokenizer?.vocabSize ?? 0) + 1000;
  // A stop id in the logit row's padding (as a fixture vocabulary padded to a model's width has): never allowed.
  const stops = [...(tokenizer?.eosTokenIds ?? []), vocabSize - 3];
  const make = (workers: number) =>
    fixture.skip
      ? null
      : new GrammarService({
          vocabulary: () => loadGrammarVocabulary(fixture.path),
          vocabSize,
          stopTokenIds: stops,
          capacity: 16,
          workers,
        });
  // Closed after the suite: a worker's exit may not hold the event loop open inside a test.
  const spread = make(2);
  const single = make(1);
  // Every stop id in the padding, as when a model's EOS lies past a fixture vocabulary padded to its width.
  const paddedOnly = fixture.skip
    ? null
    : new GrammarService({
        vocabulary: () => loadGrammarVocabulary(fixture.path),
        vocabSize,
        stopTokenIds: [vocabSize - 3],
        capacity: 1,
        workers: 1,
      });
  const oneSlot = fixture.skip
    ? null
    : new GrammarService({
        vocabulary: () => loadGrammarVocabulary(fixture.path),
        vocabSize,
        stopTokenIds: stops,
        capacity: 1,
        workers: 1,
      });
  after(() => Promise.all([spread?.close(), single?.close(), paddedOnly?.close(), oneSlot?.close()]));
  const allowedIds = (mask: Int32Array) => {
    const ids: number[] = [];
    for (let id = 0; id < mask.length * 32; id++) if ((mask[id >> 5]! >>> (id & 31)) & 1) ids.push(id);
    return ids;
  };

  test("one grammar's matchers spread over the workers and compute the same masks on each", async () => {
    const svc = spread!;
    const schema = {
      type: 'object',
      properties: { a: { type: 'integer', maximum: 50 }, b: { type: 'string', maxLength: 6 } },
      required: ['a', 'b'],
      additionalProperties: false,
    };
    const key = await svc.compile({ type: 'json_schema', schema });
    const gs = Array.from({ length: 12 }, () => svc.open(key, stops));
    assert.equal(svc.load.length, 2);
    assert.ok(
      svc.load.every((n) => n > 0),
      `matchers per worker: ${svc.load}`,
    );
    const rand = mulberry32(7);
    const ids: number[] = [];
    for (let step = 0; step < 60; step++) {
      const states = gs.map((g) => g.state());
      assert.ok(
        states.every((s) => s === states[0]),
        `step ${step}: states ${states}`,
      );
      if (states[0] !== SlotState.Running) break;
      const allowed = allowedIds(gs[0]!.mask());
      for (const g of gs) assert.deepEqual(allowedIds(g.mask()), allowed, `step ${step}`);
      assert.ok(allowed.length > 0 && allowed.every((id) => id < tokenizer!.vocabSize), 'padding allowed');
      const token = allowed[Math.floor(rand() * allowed.length)]!;
      for (const g of gs) g.accept(token);
      svc.flush();
      if (!tokenizer!.eosTokenIds.includes(token)) ids.push(token);
    }
    assert.equal(schemaViolation(jsonValidator(), schema, tokenizer!.decode(ids, { skipSpecialTokens: true })), null);
    for (const g of gs) g.release();
  });

  test('with every stop id in the padding, a walk completes its grammar (the worker survives)', async () => {
    const svc = paddedOnly!;
    const g = svc.open(await svc.compile({ type: 'regex', pattern: '(ab|cd){1,4}' }), [vocabSize - 3]);
    const rand = mulberry32(3);
    let state = g.state();
    for (let step = 0; step < 20 && state === SlotState.Running; step++) {
      const allowed = allowedIds(g.mask());
      assert.ok(allowed.length > 0 && allowed.every((id) => id < tokenizer!.vocabSize), `step ${step}: ${allowed}`);
      g.accept(allowed[Math.floor(rand() * allowed.length)]!);
      svc.flush();
      state = g.state();
    }
    assert.equal(state, SlotState.Complete);
    g.release();
  });

  test('a request with no stop ids of its own (ignore_eos) runs its grammar, never offered a stop id', async () => {
    const svc = single!;
    const g = svc.open(await svc.compile({ type: 'regex', pattern: '(ab|cd){1,4}' }), []);
    const rand = mulberry32(5);
    let state = g.state();
    for (let step = 0; step < 20 && state === SlotState.Running; step++) {
      const allowed = allowedIds(g.mask());
      assert.ok(allowed.length > 0 && allowed.every((id) => !stops.includes(id)), `step ${step}: ${allowed}`);
      g.accept(allowed[Math.floor(rand() * allowed.length)]!);
      svc.flush();
      state = g.state();
    }
    assert.equal(state, SlotState.Complete);
    g.release();
  });

  test('a grammar evicted from its worker cache compiles again when a matcher opens', async () => {
    const svc = single!;
    const first = await svc.compile({ type: 'regex', pattern: 'ab{1,3}' });
    // The worker keeps 256 grammars: these push the first one out.
    for (let i = 0; i < 256; i++) await svc.compile({ type: 'regex', pattern: `x${i}` });
    const g = svc.open(first, stops);
    assert.equal(g.state(), SlotState.Running);
    assert.ok(allowedIds(g.mask()).length > 0);
    g.release();
  });

  test('a released slot is reused only once its worker has answered all it owed (no late write into a new matcher)', async () => {
    const svc = oneSlot!;
    const digits = await svc.compile({ type: 'regex', pattern: '[0-9]{4}' });
    const letters = await svc.compile({ type: 'regex', pattern: '[a-z]{4}' });
    const first = svc.open(digits, stops);
    assert.equal(first.state(), SlotState.Running);
    // As an engine step ends a request: its last token accepted, the matcher released (close sent), then the step's
    // flush sends the accept after the close. Until the worker has answered it, the one slot is not free.
    first.accept(allowedIds(first.mask())[0]!);
    first.release();
    assert.throws(() => svc.open(letters, stops), /too many requests with structured output/);
    svc.flush();
    let second: ReturnType<typeof svc.open> | null = null;
    for (let i = 0; i < 400 && !second; i++) {
      try {
        second = svc.open(letters, stops);
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    }
    assert.ok(second, 'the slot is free once the worker has answered');
    assert.equal(second.state(), SlotState.Running);
    const allowed = allowedIds(second.mask());
    const text = tokenizer!.decode(allowed.slice(0, 50));
    assert.ok(allowed.length > 0 && /^[a-z]+$/.test(text), `the new matcher's own mask: ${JSON.stringify(text)}`);
    second.release();
  });
});
