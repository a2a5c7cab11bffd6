import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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

  /** A copy with some JSON files replaced (the weights kept). */
  withFiles(files: Record<string, unknown>): string {
    const dir = join(this.root, String(this.n++));
    cpSync(this.source, dir, { recursive: true });
    for (const [file, value] of Object.entries(files)) writeFileSync(join(dir, file), JSON.stringify(value));
    return dir;
  }

  cleanup(): void {
    rmSync(this.root, { recursive: true, force: true });
  }
}

/** A cross-encoder made from a BERT folder: its encoder plus a random one-logit head. */
export interface CrossEncoderVariant {
  dir: string;
  dense: { weight: Float32Array; bias: Float32Array };
  out: { weight: Float32Array; bias: Float32Array };
}

/**
 * tiny-bert (hidden 64) as BertForSequenceClassification ("bert." names, pooler + classifier) or, with `roberta`,
 * XLMRobertaForSequenceClassification ("roberta." names, classifier.dense + out_proj, positions from pad_token_id 0
 * + 1), with seeded random head weights; modules.json is dropped (a reranker is no sentence-transformers model).
 */
export function crossEncoderVariant(variants: FolderVariants, bertDir: string, roberta: boolean): CrossEncoderVariant {
  const root = roberta ? 'roberta.' : 'bert.';
  const t: Tensors = new Map([...readTensors(bertDir)].map(([n, v]) => [`${root}${n}`, v]));
  const names = roberta
    ? { dense: 'classifier.dense', out: 'classifier.out_proj' }
    : { dense: 'bert.pooler.dense', out: 'classifier' };
  const head = {
    dense: { weight: randomTensor([64, 64], 1), bias: randomTensor([64], 2) },
    out: { weight: randomTensor([1, 64], 3), bias: randomTensor([1], 4) },
  };
  for (const part of ['dense', 'out'] as const) {
    t.set(`${names[part]}.weight`, head[part].weight);
    t.set(`${names[part]}.bias`, head[part].bias);
  }
  const config = JSON.parse(readFileSync(join(bertDir, 'config.json'), 'utf8')) as Record<string, unknown>;
  let maxPositions = 512;
  if (roberta) {
    // pad_token_id 0: one unused position row in front.
    const positions = t.get('roberta.embeddings.position_embeddings.weight')!;
    const grown = new Float32Array(positions.data.length + 64);
    grown.set(positions.data, 64);
    t.set('roberta.embeddings.position_embeddings.weight', { shape: [513, 64], data: grown });
    maxPositions = 513;
  }
  const arch = roberta ? 'XLMRobertaForSequenceClassification' : 'BertForSequenceClassification';
  const dir = variants.make(
    {
      ...config,
      architectures: [arch],
      ...(roberta ? { model_type: 'xlm-roberta' } : {}),
      id2label: { 0: 'LABEL_0' },
      max_position_embeddings: maxPositions,
    },
    t,
    ['modules.json'],
  );
  const data = (x: { data: Float32Array }) => x.data;
  return {
    dir,
    dense: { weight: data(head.dense.weight), bias: data(head.dense.bias) },
    out: { weight: data(head.out.weight), bias: data(head.out.bias) },
  };
}

/** The head's logit for one CLS state (float64 reference). */
export function crossEncoderLogit(v: CrossEncoderVariant, cls: ArrayLike<number>): number {
  const H = cls.length;
  let logit = v.out.bias[0]!;
  for (let i = 0; i < H; i++) {
    let h = v.dense.bias[i]!;
    for (let j = 0; j < H; j++) h += v.dense.weight[i * H + j]! * cls[j]!;
    logit += v.out.weight[i]! * Math.tanh(h);
  }
  return logit;
}
