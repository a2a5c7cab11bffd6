import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Command } from 'commander';
import { commands } from '../../src/cli/commands/index.ts';
import { pagodaAsync } from '../helpers/cli.ts';
import { projectRoot } from '../helpers/fixtures.ts';
import { addToHubCache, readModelFolder } from '../helpers/hf-cache.ts';
import { HOSTILE_NAMES } from '../helpers/hostile-names.ts';

let root = '';
let env: Record<string, string> = {};
const saved = { ...process.env };

let closedPort = 0;

before(async () => {
  // A port nothing listens on, for the unreachable-Hub message.
  const probe = createServer();
  await new Promise<void>((done) => probe.listen(0, '127.0.0.1', done));
  closedPort = (probe.address() as AddressInfo).port;
  await new Promise((done) => probe.close(done));
  root = mkdtempSync(join(tmpdir(), 'pagoda-cli-'));
  env = {
    PAGODA_MODELS: join(root, 'models'),
    HF_HUB_CACHE: join(root, 'hf'),
    HF_ENDPOINT: `http://127.0.0.1:${closedPort}`,
  };
  Object.assign(process.env, env);
  addToHubCache(
    env.HF_HUB_CACHE!,
    'pagoda-test/tiny-qwen2',
    readModelFolder(join(projectRoot, 'test/fixtures/models/tiny-qwen2')),
  );
  writeFileSync(
    join(root, 'Modelfile'),
    'FROM pagoda-test/tiny-qwen2\nPARAMETER temperature 0\nSYSTEM """Be terse."""\nTEMPLATE "{{ .Prompt }}"\n',
  );
});
after(() => {
  process.env = saved;
  rmSync(root, { recursive: true, force: true });
});

const pagoda = (...args: string[]) => pagodaAsync(args, { cwd: root, env: { ...process.env, ...env } });

test('create, list, show, cp and rm through the real binary', async () => {
  assert.match((await pagoda('create', 'terse', '-f', 'Modelfile')).stdout, /created terse:latest/);
  const list = (await pagoda('list')).stdout.split('\n');
  assert.match(list[0]!, /^NAME\s+ID\s+SIZE\s+MODIFIED\s+SOURCE$/);
  assert.ok(
    list.some((l) => /^terse:latest\s+[0-9a-f]{12}\s+394\.7 KB\s+.*\spagoda$/.test(l)),
    list.join('\n'),
  );
  assert.ok(list.some((l) => l.startsWith('pagoda-test/tiny-qwen2:latest ')));
  const show = (await pagoda('show', 'terse')).stdout;
  assert.match(show, /architecture\s+qwen2/);
  assert.match(show, /temperature\s+0/);
  assert.match(show, /Be terse\./);
  assert.equal(
    (await pagoda('show', 'terse', '--modelfile')).stdout,
    'FROM pagoda-test/tiny-qwen2\nTEMPLATE """{{ .Prompt }}"""\nSYSTEM """Be terse."""\nPARAMETER temperature 0\n',
  );
  assert.match((await pagoda('cp', 'terse', 'team/terse:v2')).stdout, /copied terse to team\/terse:v2/);
  assert.match((await pagoda('rm', 'team/terse:v2')).stdout, /deleted team\/terse:v2/);
  await assert.rejects(pagoda('rm', 'team/terse:v2'), (err: { stderr: string; code: number }) => {
    assert.equal(err.code, 1);
    assert.equal(err.stderr, `error: model "team/terse:v2" not found in the store (${env.PAGODA_MODELS})\n`);
    return true;
  });
  await assert.rejects(pagoda('pull', 'acme/x'), (err: { stderr: string }) => {
    assert.equal(
      err.stderr.trim().split('\n').at(-1),
      `error: cannot reach the Hugging Face Hub at http://127.0.0.1:${closedPort} for acme/x: ECONNREFUSED`,
    );
    return true;
  });
});

test('create imports an Ollama-exported Modelfile: options pagoda lacks are a warning on stderr, not an error', async () => {
  writeFileSync(join(root, 'Exported'), 'FROM pagoda-test/tiny-qwen2\nPARAMETER tfs_z 1.0\nPARAMETER top_k 5\n');
  const created = await pagoda('create', 'exported', '-f', 'Exported');
  assert.match(created.stdout, /created exported:latest/);
  assert.match(created.stderr, /^warning: Exported:2: PARAMETER tfs_z: pagoda does not implement it; ignored$/m);
  assert.equal((await pagoda('show', 'exported', '--parameters')).stdout, 'top_k 5\n');
});

test('every command that takes a name refuses names that could escape the store', async () => {
  const program = () => {
    const p = new Command('pagoda').exitOverride();
    for (const register of commands) register(p);
    return p;
  };
  for (const [name, reason] of HOSTILE_NAMES) {
    const modelfile = join(root, 'Hostile.modelfile');
    writeFileSync(modelfile, `FROM ${name.replace(/\n/g, ' ')}\n`);
    const argvs = [
      ['pull', name],
      ['show', name],
      ['create', name, '-f', join(root, 'Modelfile')],
      ['cp', 'pagoda-test/tiny-qwen2', name],
      ['cp', name, 'x'],
      ['rm', name],
      ['run', name, 'a prompt'],
    ];
    if (name && !/^[/~.]|^[A-Za-z]:\//.test(name)) argvs.push(['create', 'x', '-f', modelfile]);
    for (const argv of argvs) {
      await assert.rejects(
        program().parseAsync(argv, { from: 'user' }),
        (err: Error) => {
          // `show` and `run` also take folder paths: a path-shaped name is refused as a path that holds no model.
          const takesPaths = argv[0] === 'show' || argv[0] === 'run';
          const pathRefusal = takesPaths && /not a model folder|no such model/.test(err.message);
          assert.ok(reason.test(err.message) || pathRefusal, `${argv.join(' ')}: ${err.message}`);
          assert.ok(!err.message.includes('\n'), 'one line');
          return true;
        },
        JSON.stringify(argv),
      );
    }
  }
});
