import { Command, Option } from 'commander';
import { formatError } from '../util/errors.ts';
import { commands } from './commands/index.ts';
import { bareThinkFlag } from './run-options.ts';

const VERSION = '0.1.0';

const program = new Command('pagoda')
  .description(
    'LLM inference and serving engine: paged KV cache, continuous batching, OpenAI- and Ollama-compatible APIs',
  )
  .version(VERSION, '-v, --version', 'print the version')
  // -V as well, which pagoda took first (Ollama's is -v).
  .addOption(new Option('-V').hideHelp())
  .on('option:V', () => {
    process.stdout.write(`${VERSION}\n`);
    process.exit(0);
  })
  .option('--debug', 'print stack traces on errors');

for (const register of commands) register(program);

// A reader that stops early (`| head -n 1`) closes stdout: the command ends there, quietly, as Unix tools do.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

const debug = process.argv.includes('--debug');
try {
  await program.parseAsync(bareThinkFlag(process.argv));
} catch (err) {
  process.stderr.write(`${formatError(err, debug)}\n`);
  process.exitCode = 1;
}
