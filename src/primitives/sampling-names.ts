import type { SamplingParams } from './sampling-params.ts';

/** How an external value becomes a SamplingParams value; a value of another type is left out. */
type Kind = 'number' | 'count' | 'boolean' | 'stop' | 'ids' | 'bias';

/** The APIs whose names the table knows: OpenAI's fields (with vLLM's extras), and Ollama's options and PARAMETERs. */
export type SamplingApi = 'openai' | 'ollama';

/**
 * The one table from external sampling names to `SamplingParams`: OpenAI request fields, Ollama request options and
 * Modelfile PARAMETERs (which share Ollama's names). What a name means beyond its value (Ollama's num_predict -1,
 * chat's max_completion_tokens, logprobs) is the caller's.
 */
const NAMES: readonly { key: keyof SamplingParams; kind: Kind; openai?: string; ollama?: string }[] = [
  { key: 'temperature', kind: 'number', openai: 'temperature', ollama: 'temperature' },
  { key: 'topP', kind: 'number', openai: 'top_p', ollama: 'top_p' },
  { key: 'topK', kind: 'number', openai: 'top_k', ollama: 'top_k' },
  { key: 'minP', kind: 'number', openai: 'min_p', ollama: 'min_p' },
  { key: 'repetitionPenalty', kind: 'number', openai: 'repetition_penalty', ollama: 'repeat_penalty' },
  { key: 'presencePenalty', kind: 'number', openai: 'presence_penalty', ollama: 'presence_penalty' },
  { key: 'frequencyPenalty', kind: 'number', openai: 'frequency_penalty', ollama: 'frequency_penalty' },
  { key: 'repeatLastN', kind: 'number', ollama: 'repeat_last_n' },
  { key: 'typicalP', kind: 'number', ollama: 'typical_p' },
  { key: 'mirostat', kind: 'number', ollama: 'mirostat' },
  { key: 'mirostatTau', kind: 'number', ollama: 'mirostat_tau' },
  { key: 'mirostatEta', kind: 'number', ollama: 'mirostat_eta' },
  { key: 'seed', kind: 'number', openai: 'seed', ollama: 'seed' },
  { key: 'stop', kind: 'stop', openai: 'stop', ollama: 'stop' },
  { key: 'includeStopStr', kind: 'boolean', openai: 'include_stop_str_in_output' },
  // Ollama's -1 (no limit) and -2 (fill the context) are not counts: they leave max_tokens unset.
  { key: 'maxTokens', kind: 'count', openai: 'max_tokens', ollama: 'num_predict' },
  { key: 'n', kind: 'count', openai: 'n' },
  { key: 'bestOf', kind: 'count', openai: 'best_of' },
  { key: 'minTokens', kind: 'number', openai: 'min_tokens' },
  { key: 'ignoreEos', kind: 'boolean', openai: 'ignore_eos' },
  { key: 'useBeamSearch', kind: 'boolean', openai: 'use_beam_search' },
  { key: 'lengthPenalty', kind: 'number', openai: 'length_penalty' },
  { key: 'stopTokenIds', kind: 'ids', openai: 'stop_token_ids' },
  { key: 'promptLogprobs', kind: 'number', openai: 'prompt_logprobs' },
  { key: 'allowedTokenIds', kind: 'ids', openai: 'allowed_token_ids' },
  // Keys stay as written: admission refuses any that is not a token id of the model.
  { key: 'logitBias', kind: 'bias', openai: 'logit_bias' },
];

function convert(kind: Kind, v: unknown): unknown {
  switch (kind) {
    case 'number':
      return typeof v === 'number' ? v : undefined;
    case 'count':
      return typeof v === 'number' && v > 0 ? v : undefined;
    case 'boolean':
      return typeof v === 'boolean' ? v : undefined;
    case 'stop':
      return typeof v === 'string' ? [v] : Array.isArray(v) ? v : undefined;
    case 'ids':
      return Array.isArray(v) ? v : undefined;
    case 'bias':
      return v !== null && typeof v === 'object' && !Array.isArray(v) ? v : undefined;
  }
}

/** The sampling parameters that `fields` (named as `api` names them) set; absent and null fields are left out. */
export function samplingFrom(api: SamplingApi, fields: Readonly<Record<string, unknown>>): Partial<SamplingParams> {
  const out: Record<string, unknown> = {};
  for (const entry of NAMES) {
    const name = entry[api];
    if (name === undefined) continue;
    const value = convert(entry.kind, fields[name]);
    if (value !== undefined) out[entry.key] = value;
  }
  return out as Partial<SamplingParams>;
}

/** The inverse: `params` under the names `api` gives them (keys the API has no name for are left out). */
export function samplingTo(api: SamplingApi, params: Partial<SamplingParams>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const entry of NAMES) {
    const name = entry[api];
    if (name !== undefined && params[entry.key] !== undefined) out[name] = params[entry.key];
  }
  return out;
}
