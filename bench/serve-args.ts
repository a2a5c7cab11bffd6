import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project root, where bench/RESULTS.md and the fixture models are. */
export const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** The serving benchmarks' command line: an optional model folder (default tiny-llama) and `--name number` flags. */
export function serveBenchArgs(argv: readonly string[]) {
  return {
    modelDir: resolve(
      argv.find((a, i) => !a.startsWith('--') && !argv[i - 1]?.startsWith('--')) ??
        join(root, 'test/fixtures/models/tiny-llama'),
    ),
    flag(name: string, fallback: number): number {
      const i = argv.indexOf(name);
      return i >= 0 ? Number(argv[i + 1]) : fallback;
    },
  };
}
