import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { PoolingMode } from '../primitives/pooling.ts';
import { UserError } from '../util/errors.ts';
import { readJson, readJsonValue } from './hf-config.ts';

/** What a sentence-transformers folder says about turning token states into one embedding. */
export interface SentenceTransformersConfig {
  pooling: PoolingMode;
  /** A Normalize module follows the pooling. */
  normalize: boolean;
  /** sentence_bert_config.json's max_seq_length (null when absent: the model's own limit applies). */
  maxSeqLength: number | null;
  /** sentence_bert_config.json's do_lower_case: texts are lower-cased before tokenizing. */
  doLowerCase: boolean;
  /** Named instruction prefixes (config_sentence_transformers.json), applied only when a request names one. */
  prompts: Record<string, string>;
  /** false: prompt tokens are left out of the pooling (1_Pooling's include_prompt). */
  includePrompt: boolean;
}

/** The 2–5 style's boolean flags (1_Pooling/config.json) and the mode each means. */
const FLAGS: Record<string, PoolingMode> = {
  pooling_mode_cls_token: 'cls',
  pooling_mode_mean_tokens: 'mean',
  pooling_mode_max_tokens: 'max',
  pooling_mode_mean_sqrt_len_tokens: 'mean_sqrt_len',
  pooling_mode_weightedmean_tokens: 'weighted_mean',
  pooling_mode_lasttoken: 'last',
};

/** The 6.x style's `pooling_mode` names. */
const NAMES: Record<string, PoolingMode> = {
  cls: 'cls',
  cls_token: 'cls',
  mean: 'mean',
  mean_tokens: 'mean',
  max: 'max',
  max_tokens: 'max',
  mean_sqrt_len_tokens: 'mean_sqrt_len',
  weightedmean: 'weighted_mean',
  weightedmean_tokens: 'weighted_mean',
  lasttoken: 'last',
};

/** Module kinds by the last part of their type name (`sentence_transformers.models.Pooling`, `...pooling.Pooling`). */
const KINDS = ['Transformer', 'Pooling', 'Normalize'] as const;

/**
 * Reads a sentence-transformers folder (modules.json and the modules' configs) in either file style: the 2–5 style
 * most published models use (`sentence_transformers.models.*`, `pooling_mode_*` flags, `word_embedding_dimension`)
 * or the 6.x style (`sentence_transformers.base.modules.*`, `pooling_mode: "mean"`, `embedding_dimension`).
 * Returns null for a folder without modules.json.
 */
export function readSentenceTransformers(dir: string, hiddenSize: number): SentenceTransformersConfig | null {
  const modulesPath = join(dir, 'modules.json');
  if (!existsSync(modulesPath)) return null;
  const modules = readJsonValue(modulesPath);
  if (!Array.isArray(modules)) throw new UserError(`${modulesPath}: expected a JSON array of modules`);
  let pooling: { mode: PoolingMode; includePrompt: boolean } | null = null;
  let normalize = false;
  let transformer: string | null = null;
  modules.forEach((m: Record<string, unknown> | null, i) => {
    const type = typeof m?.type === 'string' ? m.type : '';
    const kind = KINDS.find((k) => type.split('.').at(-1) === k);
    if (!kind) {
      throw new UserError(
        `${modulesPath}: module ${i} has type "${type}", which pagoda does not support (supported: ${KINDS.join(', ')})`,
      );
    }
    const path = join(dir, typeof m?.path === 'string' ? m.path : '');
    if (kind === 'Transformer') transformer = path;
    else if (kind === 'Pooling') pooling = readPooling(join(path, 'config.json'), hiddenSize);
    else normalize = true;
  });
  const pool = pooling as { mode: PoolingMode; includePrompt: boolean } | null;
  if (!pool) throw new UserError(`${modulesPath}: no Pooling module (expected one after the Transformer)`);
  const bertPath = join(transformer ?? dir, 'sentence_bert_config.json');
  const bert = existsSync(bertPath) ? readJson(bertPath) : {};
  const maxSeq = bert.max_seq_length;
  if (maxSeq !== undefined && maxSeq !== null && !(Number.isInteger(maxSeq) && (maxSeq as number) > 0)) {
    throw new UserError(`${bertPath}: max_seq_length ${JSON.stringify(maxSeq)} is not a positive integer`);
  }
  return {
    pooling: pool.mode,
    normalize,
    maxSeqLength: (maxSeq as number | undefined) ?? null,
    doLowerCase: bert.do_lower_case === true,
    prompts: readPrompts(join(dir, 'config_sentence_transformers.json')),
    includePrompt: pool.includePrompt,
  };
}

/** 1_Pooling/config.json in either style: one pooling mode (several concatenated are not supported). */
function readPooling(path: string, hiddenSize: number): { mode: PoolingMode; includePrompt: boolean } {
  const c = readJson(path);
  let modes: PoolingMode[];
  if (c.pooling_mode !== undefined) {
    const names = Array.isArray(c.pooling_mode) ? c.pooling_mode : [c.pooling_mode];
    modes = names.map((n) => {
      const mode = typeof n === 'string' ? NAMES[n] : undefined;
      if (!mode) {
        throw new UserError(
          `${path}: pooling_mode ${JSON.stringify(n)} is not supported (expected one of ${Object.keys(NAMES).join(', ')})`,
        );
      }
      return mode;
    });
  } else {
    modes = Object.entries(FLAGS).flatMap(([flag, mode]) => (c[flag] === true ? [mode] : []));
  }
  if (modes.length !== 1) {
    throw new UserError(
      `${path}: ${modes.length === 0 ? 'no pooling mode is set' : `pooling modes ${modes.join(' + ')} are concatenated, which pagoda does not support`} (expected exactly one)`,
    );
  }
  const dim = c.embedding_dimension ?? c.word_embedding_dimension;
  if (dim !== undefined && dim !== hiddenSize) {
    throw new UserError(`${path}: embedding dimension ${dim} differs from the model's hidden_size ${hiddenSize}`);
  }
  return { mode: modes[0]!, includePrompt: c.include_prompt !== false };
}

/** config_sentence_transformers.json's `prompts` (name -> prefix text); none when the file is absent. */
function readPrompts(path: string): Record<string, string> {
  if (!existsSync(path)) return {};
  const prompts = readJson(path).prompts ?? {};
  if (typeof prompts !== 'object' || Array.isArray(prompts) || prompts === null) {
    throw new UserError(`${path}: prompts must be an object of name -> text`);
  }
  for (const [name, text] of Object.entries(prompts)) {
    if (typeof text !== 'string') throw new UserError(`${path}: prompts.${name} must be a string`);
  }
  return prompts as Record<string, string>;
}
