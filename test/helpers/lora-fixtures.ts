import { copyFileSync, cpSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from './fixtures.ts';

/** tiny-llama, the base test/fixtures/generate-lora.py's adapter adapts. */
export const LORA_BASE = join(projectRoot, 'test/fixtures/models/tiny-llama');
/** The PEFT adapter folder on every linear of tiny-llama. */
export const LORA_ADAPTER = join(projectRoot, 'test/fixtures/models/tiny-llama-lora');

/**
 * A model folder at `dir`: tiny-llama with the adapter's weights merged by numpy (the generator's reference), what a
 * model loaded with the adapter must answer like.
 */
export function mergedReference(dir: string): string {
  cpSync(LORA_BASE, dir, { recursive: true });
  copyFileSync(
    join(projectRoot, 'test/fixtures/models/tiny-llama-lora-merged/model.safetensors'),
    join(dir, 'model.safetensors'),
  );
  return dir;
}
