import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeSafetensors, openSafetensors } from '../../src/loader/safetensors.ts';
import { toFloat32 } from '../../src/primitives/host-tensor.ts';
import { mulberry32 } from '../../src/util/random.ts';

export type Tensors = Map<string, { shape: number[]; data: Float32Array }>;

/** Every tensor of a model folder as float32. */
export function readTensors(dir: string): Tensors {
  const src = openSafetensors(dir);
  try {
    return new Map(src.names().map((n) => [n, { shape: [...src.get(n).shape], data: toFloat32(src.get(n)) }]));
  } finally {
    src.close();
  }
}

/** Random values in [-scale, scale) of one shape. */
export function randomTensor(shape: number[], seed: number, scale = 0.2) {
  const r = mulberry32(seed);
  return { shape, data: Float32Array.from({ length: shape.reduce((a, d) => a * d, 1) }, () => (r() * 2 - 1) * scale) };
}

/**
 * Copies of a model folder with config.json edited and the weights rewritten (renamed, reshaped, added), in a
 * temporary folder removed by `cleanup`.
 */
export class FolderVariants {
  private readonly root = mkdtempSync(join(tmpdir(), 'pagoda-variant-'));
  private n = 0;

  constructor(private readonly source: string) {}

  make(config: Record<string, unknown>, tensors: Tensors, drop: readonly string[] = []): string {
    const dir = join(this.root, String(this.n++));
    cpSync(this.source, dir, { recursive: true });
    for (const f of drop) rmSync(join(dir, f), { recursive: true, force: true });
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
    writeFileSync(
      join(dir, 'model.safetensors'),
      encodeSafetensors([...tensors].map(([name, t]) => ({ name, shape: t.shape, data: t.data }))),
    );
    return dir;
  }

  cleanup(): void {
    rmSync(this.root, { recursive: true, force: true });
  }
}
