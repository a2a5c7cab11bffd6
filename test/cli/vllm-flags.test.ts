import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Command } from 'commander';
import { registerServe } from '../../src/cli/commands/serve.ts';
import { engineOptionsFrom, parseSeed } from '../../src/cli/engine-options.ts';
import { samplingSource } from '../../src/engine/load.ts';
import type { GenerationConfig } from '../../src/loader/hf-config.ts';
import { resolveServeConfig, type ServeFlags } from '../../src/server/config.ts';
import { resolveTools } from '../../src/server/tool-requests.ts';
import {
  DEEPSEEK,
  GLM45,
  GRANITE,
  GRANITE_20B_FC,
  HERMES,
  INTERNLM,
  KIMI_K2,
  LLAMA3_JSON,
  LLAMA4_PYTHONIC,
  MISTRAL,
  OLMO3,
  PHI4_MINI,
  PYTHONIC,
  TOOL_CALLS_BLOCK,
  XLAM,
} from '../../src/tools/tool-parser.ts';
import { UserError } from '../../src/util/errors.ts';
import { collector, fakeEngine, runToEnd, submit } from '../helpers/engine.ts';

/** The options `pagoda serve ARGS` parses to (the server is not started). */
function serveOptions(args: string[]): Record<string, unknown> {
  const program = new Command().exitOverride();
  registerServe(program);
  const serve = program.commands.find((c) => c.name() === 'serve')!;
  serve.exitOverride();
  let parsed: Record<string, unknown> = {};
  serve.action((model: string | undefined, opts: Record<string, unknown>) => {
    parsed = { ...opts, model };
  });
  program.parse(['serve', ...args], { from: 'user' });
  return parsed;
}

const serveConfig = (args: string[]) => resolveServeConfig(serveOptions(args) as ServeFlags, {});

const refused = (fn: () => unknown, message: RegExp) =>
  assert.throws(
    fn,
    (err: Error) => err instanceof UserError && !err.message.includes('\n') && message.test(err.message),
  );

test('a vllm serve command line parses as pagoda serve', () => {
  const opts = serveOptions([
    'Qwen/Qwen3-0.6B',
    '--kv-cache-dtype',
    'fp8',
    '--enable-prefix-caching',
    '--enforce-eager',
    '--trust-remote-code',
    '--seed',
    '7',
    '--enable-auto-tool-choice',
    '--tool-call-parser',
    'hermes',
    '--reasoning-parser',
    'qwen3',
    '--disable-log-requests',
    '--max-logprobs',
    '30',
    '--generation-config',
    'vllm',
    '--uvicorn-log-level',
    'warning',
    '--download-dir',
    '/tmp/hub',
    '--response-role',
    'model',
  ]);
  assert.equal(opts.model, 'Qwen/Qwen3-0.6B');
  const engine = engineOptionsFrom(opts);
  assert.equal(engine.kvCacheType, 'fp8');
  assert.equal(engine.enablePrefixCaching, true);
  assert.equal(engine.cuda?.graphs, false);
  assert.equal(opts.seed, '7');
  assert.equal(engine.generationConfig, 'vllm');
  const config = resolveServeConfig(opts as ServeFlags, {});
  assert.equal(config.kvCacheType, 'fp8');
  assert.equal(config.toolCallFormat, HERMES);
  assert.equal(config.logRequests, false);
  assert.equal(config.logLevel, 'warn');
  assert.equal(config.responseRole, 'model');
  assert.equal(serveConfig([]).responseRole, 'assistant');
  refused(() => serveConfig(['--response-role', ' ']), /^--response-role: expected a role name/);
});

test('--kv-cache-dtype maps vLLM names onto KV cache types', () => {
  const expected: Record<string, string> = {
    auto: 'auto',
    fp8: 'fp8',
    fp8_e4m3: 'fp8',
    bfloat16: 'bf16',
    float16: 'f16',
    half: 'f16',
    float32: 'f32',
  };
  for (const [vllm, type] of Object.entries(expected)) {
    assert.equal(engineOptionsFrom({ kvCacheDtype: vllm }).kvCacheType, type, vllm);
    assert.equal(serveConfig(['--kv-cache-dtype', vllm]).kvCacheType, type, vllm);
  }
  assert.equal(engineOptionsFrom({ kvCacheDtype: 'fp8', kvCacheType: 'fp8' }).kvCacheType, 'fp8');
  refused(() => engineOptionsFrom({ kvCacheDtype: 'fp8_e5m2' }), /^--kv-cache-dtype fp8_e5m2: .*fp8_e4m3/);
  refused(() => serveConfig(['--kv-cache-dtype', 'int4']), /^--kv-cache-dtype int4: .*--kv-cache-type/);
  refused(
    () => serveConfig(['--kv-cache-dtype', 'fp8', '--kv-cache-type', 'q8_0']),
    /^--kv-cache-dtype fp8 and --kv-cache-type q8_0 disagree/,
  );
  // A flag still wins over the variable.
  assert.equal(resolveServeConfig({ kvCacheDtype: 'half' }, { PAGODA_KV_CACHE_TYPE: 'q8_0' }).kvCacheType, 'f16');
});

test('--[no-]enable-prefix-caching', () => {
  assert.equal(engineOptionsFrom(serveOptions([])).enablePrefixCaching, true);
  assert.equal(engineOptionsFrom(serveOptions(['--enable-prefix-caching'])).enablePrefixCaching, true);
  assert.equal(engineOptionsFrom(serveOptions(['--no-enable-prefix-caching'])).enablePrefixCaching, false);
  assert.equal(engineOptionsFrom(serveOptions(['--no-prefix-caching'])).enablePrefixCaching, false);
  refused(() => engineOptionsFrom(serveOptions(['--no-prefix-caching', '--enable-prefix-caching'])), /disagree/);
});

test('--enforce-eager turns CUDA graphs off, keeping the other CUDA settings', () => {
  assert.equal(engineOptionsFrom({}).cuda?.graphs, undefined);
  const saved = process.env.PAGODA_PDL;
  process.env.PAGODA_PDL = '0';
  try {
    assert.deepEqual(engineOptionsFrom({ enforceEager: true }).cuda, { pdl: false, graphs: false });
  } finally {
    if (saved === undefined) delete process.env.PAGODA_PDL;
    else process.env.PAGODA_PDL = saved;
  }
});

test('--seed: requests without a seed sample the same under the same engine seed', () => {
  const run = (seed: number | undefined) => {
    const engine = fakeEngine({ seed });
    const outs = [0, 1, 2].map((i) =>
      submit(engine, { prompt: [3 + i, 5, 7], params: { temperature: 1, maxTokens: 12, ignoreEos: true } }),
    );
    runToEnd(engine);
    return outs.map((o) => o.tokenIds[0]);
  };
  assert.deepEqual(run(7), run(7));
  assert.notDeepEqual(run(7), run(8));
  assert.equal(parseSeed('0'), 0);
  refused(() => parseSeed('x'), /^--seed x: expected an integer/);
  refused(() => parseSeed('-1'), /^--seed -1: expected an integer in 0\.\.4294967295/);
});

test('--tool-call-parser picks the format for every model; an unknown name is refused', () => {
  const names: [string, unknown][] = [
    ['hermes', HERMES],
    ['qwen3_coder', HERMES],
    ['mistral', MISTRAL],
    ['llama3_json', LLAMA3_JSON],
    ['llama4_json', LLAMA3_JSON],
    ['deepseek_v3', DEEPSEEK],
    ['deepseek_v31', DEEPSEEK],
    ['pythonic', PYTHONIC],
    ['qwen3_xml', HERMES],
    ['llama4_pythonic', LLAMA4_PYTHONIC],
    ['phi4_mini_json', PHI4_MINI],
    ['granite', GRANITE],
    ['granite-20b-fc', GRANITE_20B_FC],
    ['jamba', TOOL_CALLS_BLOCK],
    ['minimax', TOOL_CALLS_BLOCK],
    ['internlm', INTERNLM],
    ['xlam', XLAM],
    ['kimi_k2', KIMI_K2],
    ['glm45', GLM45],
    ['olmo3', OLMO3],
  ];
  for (const [name, format] of names) assert.equal(serveConfig(['--tool-call-parser', name]).toolCallFormat, format);
  assert.equal(serveConfig([]).toolCallFormat, null);
  refused(
    () => serveConfig(['--tool-call-parser', 'step3']),
    /^--tool-call-parser step3: .*hermes, .*pythonic, .*granite-20b-fc, .*xlam/,
  );

  const tools = [{ type: 'function' as const, function: { name: 'f', parameters: { type: 'object' } } }];
  const chatTemplate = { source: '{% for t in tools %}{{ t }}{% endfor %}<tool_call>' } as never;
  assert.equal(resolveTools({ chatTemplate }, 'm', tools, 'auto', null).format?.name, 'hermes');
  const chosen = resolveTools({ chatTemplate, toolCallFormat: PYTHONIC }, 'm', tools, 'auto', null);
  assert.equal(chosen.format?.name, 'pythonic');
});

test('--reasoning-parser: the <think> parsers are accepted, others refused', () => {
  assert.doesNotThrow(() => serveConfig(['--reasoning-parser', 'deepseek_r1']));
  assert.doesNotThrow(() => serveConfig(['--reasoning-parser', 'qwen3']));
  refused(() => serveConfig(['--reasoning-parser', 'granite']), /^--reasoning-parser granite: .*deepseek_r1, qwen3/);
});

test('--disable-log-requests / --enable-log-requests', () => {
  assert.equal(serveConfig([]).logRequests, true);
  assert.equal(serveConfig(['--enable-log-requests']).logRequests, true);
  assert.equal(serveConfig(['--disable-log-requests']).logRequests, false);
  refused(() => serveConfig(['--disable-log-requests', '--enable-log-requests']), /disagree/);
});

test('--max-logprobs over PAGODA_MAX_LOGPROBS caps logprobs and prompt_logprobs (-1: the whole vocabulary)', () => {
  assert.equal(engineOptionsFrom(serveOptions(['--max-logprobs', '30'])).maxLogprobs, 30);
  assert.equal(engineOptionsFrom(serveOptions([])).maxLogprobs, undefined);
  const saved = process.env.PAGODA_MAX_LOGPROBS;
  try {
    process.env.PAGODA_MAX_LOGPROBS = '5';
    assert.equal(engineOptionsFrom(serveOptions([])).maxLogprobs, 5);
    assert.equal(engineOptionsFrom(serveOptions(['--max-logprobs', '-1'])).maxLogprobs, -1);
    process.env.PAGODA_MAX_LOGPROBS = 'x';
    refused(() => engineOptionsFrom(serveOptions([])), /^PAGODA_MAX_LOGPROBS x: /);
  } finally {
    if (saved === undefined) delete process.env.PAGODA_MAX_LOGPROBS;
    else process.env.PAGODA_MAX_LOGPROBS = saved;
  }
  refused(
    () => engineOptionsFrom(serveOptions(['--max-logprobs', '-2'])),
    /^--max-logprobs -2: expected an integer >= 0/,
  );

  const asks = (engine: ReturnType<typeof fakeEngine>, params: object) => () =>
    engine.submit({ prompt: [3, 5], params: { maxTokens: 2, ...params } }, collector());
  const capped = fakeEngine({ maxLogprobs: 30 });
  assert.doesNotThrow(asks(capped, { logprobs: 30, promptLogprobs: 30 }));
  refused(asks(capped, { logprobs: 31 }), /^31 logprobs a token asked for; --max-logprobs allows 30$/);
  refused(asks(capped, { promptLogprobs: 31 }), /^31 prompt logprobs a token asked for; --max-logprobs allows 30$/);
  refused(asks(fakeEngine(), { logprobs: 21 }), /allows 20$/);
  // -1: as many as the vocabulary has (the fake model's 64), and they come back.
  const whole = fakeEngine({ maxLogprobs: -1 });
  refused(asks(whole, { logprobs: 65 }), /allows 64$/);
  const out = submit(whole, { prompt: [3, 5], params: { maxTokens: 1, logprobs: 64 } });
  runToEnd(whole);
  const told = out.outputs.flatMap((o) => o.outputs.flatMap((d) => d.logprobs ?? []));
  assert.equal(told[0]!.top.length, 64);
});

test('--uvicorn-log-level over PAGODA_LOG_LEVEL', () => {
  const levels = { critical: 'fatal', error: 'error', warning: 'warn', info: 'info', debug: 'debug', trace: 'trace' };
  for (const [uvicorn, pino] of Object.entries(levels)) {
    assert.equal(serveConfig(['--uvicorn-log-level', uvicorn]).logLevel, pino);
  }
  assert.equal(resolveServeConfig({}, {}).logLevel, 'info');
  assert.equal(resolveServeConfig({}, { PAGODA_LOG_LEVEL: 'debug' }).logLevel, 'debug');
  assert.equal(resolveServeConfig({ uvicornLogLevel: 'error' }, { PAGODA_LOG_LEVEL: 'debug' }).logLevel, 'error');
  refused(() => serveConfig(['--uvicorn-log-level', 'loud']), /^--uvicorn-log-level loud: expected one of critical/);
  refused(() => resolveServeConfig({}, { PAGODA_LOG_LEVEL: 'loud' }), /^PAGODA_LOG_LEVEL loud/);
});

test('--generation-config: the model, none, or a folder', () => {
  const model: GenerationConfig = { eosTokenIds: [2], bosTokenId: 1, temperature: 0.6, topP: 0.9 };
  assert.equal(samplingSource(model), model);
  assert.equal(samplingSource(model, 'auto'), model);
  assert.equal(samplingSource(model, 'vllm'), null);
  const dir = mkdtempSync(join(tmpdir(), 'pagoda-generation-'));
  try {
    writeFileSync(join(dir, 'generation_config.json'), JSON.stringify({ temperature: 0.3, top_k: 5 }));
    const other = samplingSource(model, dir);
    assert.equal(other?.temperature, 0.3);
    assert.equal(other?.topK, 5);
    assert.equal(other?.topP, undefined);
    assert.deepEqual(other?.eosTokenIds, [2]);
    refused(() => samplingSource(model, join(dir, 'missing')), /^--generation-config .*missing: expected auto, vllm/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
