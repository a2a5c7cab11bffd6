import { z } from 'zod';
import { IGNORED_OPTIONS } from '../../store/modelfile.ts';
import { acceptAnything } from '../ignored-fields.ts';
import { keepAlive, unsupported } from '../openai/schemas.ts';
import { ollamaFormat } from '../structured-output.ts';
import { toolsSchema } from '../tool-requests.ts';

const opt = <T extends z.ZodType>(t: T) => t.nullish();
const int = () => z.number().int();

/** Options pagoda honours, with Ollama's meaning, and runner options it accepts and ignores. */
export const options = z.strictObject({
  ...acceptAnything(IGNORED_OPTIONS),
  num_ctx: opt(int().min(1)),
  num_predict: opt(int().min(-2)),
  temperature: opt(z.number().min(0).max(100)),
  top_k: opt(int().min(-1)),
  top_p: opt(z.number().min(0).max(1)),
  min_p: opt(z.number().min(0).max(1)),
  seed: opt(
    int()
      .min(-(2 ** 53) + 1)
      .max(2 ** 53 - 1),
  ),
  stop: opt(z.union([z.string().min(1).max(1000), z.array(z.string().min(1).max(1000)).max(16)])),
  repeat_penalty: opt(z.number().gt(0).max(10)),
  presence_penalty: opt(z.number().min(-2).max(2)),
  frequency_penalty: opt(z.number().min(-2).max(2)),
  repeat_last_n: opt(int().min(-1)),
  typical_p: opt(z.number().gt(0).max(1)),
  mirostat: opt(int().min(0).max(2)),
  mirostat_tau: opt(z.number().gt(0)),
  mirostat_eta: opt(z.number().min(0)),
  /** pagoda's: KV compression budget (tokens, or a fraction of the prompt), checked by the engine. */
  kv_budget: opt(z.number()),
});
export type Options = z.output<typeof options>;

const common = {
  model: z.string().min(1).max(1024),
  stream: opt(z.boolean()),
  keep_alive: keepAlive,
  options: opt(options),
  format: opt(ollamaFormat),
  // Ollama's levels (gpt-oss) read as true: the templates pagoda renders only know on and off.
  think: opt(z.union([z.boolean(), z.enum(['high', 'medium', 'low'])])),
  logprobs: opt(z.boolean()),
  top_logprobs: opt(int().min(0).max(20)),
};

export const generateRequest = z.strictObject({
  ...common,
  prompt: opt(z.string()),
  /** The text after the gap: the answer is what goes between `prompt` and it (fill-in-the-middle). */
  suffix: opt(z.string()),
  system: opt(z.string()),
  template: opt(
    z.string().max(0, 'a per-request template is not supported by pagoda (the model chat template is used)'),
  ),
  context: opt(z.array(int().min(0)).max(1 << 20)),
  raw: opt(z.boolean()),
  images: unsupported('images'),
});
export type GenerateRequest = z.output<typeof generateRequest>;

/** An assistant's earlier call: arguments are a JSON object, as Ollama sends them. */
const toolCall = z.looseObject({
  function: z.looseObject({ name: z.string().max(256), arguments: z.record(z.string(), z.unknown()) }),
});

const message = z.strictObject({
  role: z.enum(['system', 'user', 'assistant', 'tool']),
  // Absent or null is empty, as Ollama's decoder reads it (ollama-python leaves out an empty content).
  content: opt(z.string()).transform((c) => c ?? ''),
  images: unsupported('images'),
  thinking: opt(z.string()),
  tool_calls: opt(z.array(toolCall).max(256)),
  tool_name: opt(z.string().max(256)),
  tool_call_id: opt(z.string().max(256)),
});

export const chatRequest = z.strictObject({
  ...common,
  messages: opt(z.array(z.any()).max(4096).pipe(z.array(message))),
  tools: opt(toolsSchema),
});
export type ChatRequest = z.output<typeof chatRequest>;

export const showRequest = z.strictObject({
  model: opt(z.string().min(1).max(1024)),
  name: opt(z.string().min(1).max(1024)),
  verbose: opt(z.boolean()),
});
