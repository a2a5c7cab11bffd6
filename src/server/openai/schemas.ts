import { z } from 'zod';
import { ignoredOpenAiFields } from '../ignored-fields.ts';
import { responseFormat, structuredOutputFields } from '../structured-output.ts';
import { toolChoiceSchema, toolsSchema } from '../tool-requests.ts';

/** Most items a list field may hold, so a hostile body cannot make the server loop for long. */
const MAX_STOP = 16;
export const MAX_N = 16;

const opt = <T extends z.ZodType>(t: T) => t.nullish();
const int = () => z.number().int();

/** OpenAI's reasoning effort levels (chat's `reasoning_effort`, the Responses API's `reasoning.effort`). */
export const reasoningEffort = opt(z.enum(['none', 'minimal', 'low', 'medium', 'high', 'xhigh']));

/** vLLM's truncate_prompt_tokens: -1 (the model's maximum) or a count of tokens. */
export const truncatePromptTokens = opt(z.union([z.literal(-1), int().min(1)]));

/** Ollama's keep_alive: seconds or a duration such as "5m"; negative = forever. */
/** vLLM's cache_salt: only requests with the same salt share prefix-cache blocks (engine/types.ts `cacheSalt`). */
export const cacheSalt = opt(z.string().min(1, 'cache_salt must be a non-empty string').max(4096));
export const keepAlive = opt(z.union([z.number(), z.string().max(64)]));

const stop = z.union([z.string().min(1).max(1000), z.array(z.string().min(1).max(1000)).max(MAX_STOP)]);

/** Sampling fields shared by /v1/chat/completions and /v1/completions, vLLM's extra fields included. */
const sampling = {
  model: z.string().min(1).max(1024),
  stream: opt(z.boolean()),
  stream_options: opt(
    z
      .strictObject({ include_usage: opt(z.boolean()), continuous_usage_stats: opt(z.boolean()) })
      .refine((o) => !o.continuous_usage_stats || o.include_usage, 'continuous_usage_stats needs include_usage: true'),
  ),
  n: opt(int().min(1).max(MAX_N)),
  stop: opt(stop),
  seed: opt(
    int()
      .min(-(2 ** 53) + 1)
      .max(2 ** 53 - 1),
  ),
  temperature: opt(z.number().min(0).max(2)),
  top_p: opt(z.number().gt(0).max(1)),
  max_tokens: opt(int().min(1)),
  presence_penalty: opt(z.number().min(-2).max(2)),
  frequency_penalty: opt(z.number().min(-2).max(2)),
  logit_bias: opt(z.record(z.string().max(12), z.number().min(-100).max(100))),
  ...ignoredOpenAiFields(),
  keep_alive: keepAlive,
  top_k: opt(int().min(-1)),
  min_p: opt(z.number().min(0).max(1)),
  repetition_penalty: opt(z.number().gt(0).max(10)),
  length_penalty: opt(z.number().min(-10).max(10)),
  ignore_eos: opt(z.boolean()),
  min_tokens: opt(int().min(0)),
  best_of: opt(int().min(1).max(MAX_N)),
  use_beam_search: opt(z.boolean()),
  stop_token_ids: opt(z.array(int().min(0)).max(MAX_STOP)),
  /** vLLM's: only these tokens may be drawn. */
  allowed_token_ids: opt(
    z
      .array(int().min(0))
      .min(1)
      .max(1 << 20),
  ),
  /** vLLM's: words never generated (each as written and after a space). */
  bad_words: opt(z.array(z.string().min(1).max(1000)).max(MAX_STOP)),
  /** vLLM's: keep only the prompt's last k tokens (-1: as many as the model takes). */
  truncate_prompt_tokens: truncatePromptTokens,
  /** vLLM's: the prompt tokens' logprobs with this many alternatives each (not streamed). */
  prompt_logprobs: opt(int().min(0)),
  /** vLLM's: a matched stop string stays at the end of the output. */
  include_stop_str_in_output: opt(z.boolean()),
  /** vLLM's: false keeps special tokens in the output text. */
  skip_special_tokens: opt(z.boolean()),
  /** pagoda's: KV compression budget (tokens, or a fraction of the prompt), checked by the engine. */
  kv_budget: opt(z.number()),
  cache_salt: cacheSalt,
  /** vLLM's: the prompt's and the answer's token ids beside the text (streamed: each chunk's own). */
  return_token_ids: opt(z.boolean()),
  /** vLLM's: logprobs name each token "token_id:ID" (for tokens that are no text of their own). */
  return_tokens_as_token_ids: opt(z.boolean()),
  ...structuredOutputFields,
};

const textPart = z.strictObject({ type: z.literal('text'), text: z.string() });
const contentPart = z.looseObject({ type: z.string() }).superRefine((p, ctx) => {
  if (p.type !== 'text')
    ctx.addIssue({ code: 'custom', message: `content part type "${p.type}" is not supported (text only)` });
});

/** An assistant's earlier call: arguments are JSON text, as OpenAI sends them. */
const toolCall = z.looseObject({
  id: opt(z.string().max(256)),
  type: opt(z.literal('function')),
  function: z.looseObject({ name: z.string().max(256), arguments: z.string().max(1 << 20) }),
});

/** A field pagoda cannot honour: absent, null or empty is fine, anything else is a 400 saying so. */
export const unsupported = (what: string, instead?: string) =>
  z
    .unknown()
    .optional()
    .superRefine((v, ctx) => {
      if (v !== undefined && v !== null && !(Array.isArray(v) && v.length === 0)) {
        ctx.addIssue({ code: 'custom', message: `${what} is not supported by pagoda${instead ? `: ${instead}` : ''}` });
      }
    });

export const chatMessage = z.strictObject({
  role: z.enum(['system', 'developer', 'user', 'assistant', 'tool']),
  content: opt(z.union([z.string(), z.array(contentPart.pipe(textPart)).max(1024)])),
  name: opt(z.string().max(256)),
  tool_calls: opt(z.array(toolCall).max(256)),
  tool_call_id: opt(z.string().max(256)),
  // The reasoning of an earlier answer: DeepSeek's and vLLM's long-standing name, and vLLM's newer one.
  reasoning_content: opt(z.string()),
  reasoning: opt(z.string()),
  // What an answer's message holds besides these, so that one pushed back into messages as it came is read (vLLM
  // ignores them too): the refusal's text, the citations, the openai SDK's `parsed`, and null legacy fields.
  refusal: opt(z.string()),
  annotations: opt(z.array(z.unknown())),
  parsed: z.unknown().optional(),
  audio: unsupported("an earlier answer's audio"),
  function_call: unsupported('a legacy function_call', 'send tool_calls'),
});

export const chatRequest = z.strictObject({
  ...sampling,
  messages: z.array(z.any()).min(1).max(4096).pipe(z.array(chatMessage)),
  max_completion_tokens: opt(int().min(1)),
  logprobs: opt(z.boolean()),
  top_logprobs: opt(int().min(0)),
  response_format: opt(responseFormat),
  tools: opt(toolsSchema),
  tool_choice: opt(toolChoiceSchema),
  parallel_tool_calls: opt(z.boolean()),
  chat_template_kwargs: opt(z.record(z.string(), z.unknown())),
  // vLLM's: the assistant's turn opened (default), or the last message left open for the model to go on with.
  add_generation_prompt: opt(z.boolean()),
  continue_final_message: opt(z.boolean()),
  /** OpenAI's, for reasoning models: reaches the template as `reasoning_effort` (gpt-oss reads it), as in vLLM. */
  reasoning_effort: reasoningEffort,
  modalities: opt(z.array(z.literal('text'))),
  audio: unsupported('audio output'),
  functions: unsupported('function calling'),
  function_call: unsupported('function calling'),
});
export type ChatRequest = z.output<typeof chatRequest>;

/** Most prompts one completions request may batch. */
export const MAX_PROMPTS = 256;
const tokenIds = z
  .array(int().min(0))
  .min(1)
  .max(1 << 20);

export const completionRequest = z.strictObject({
  ...sampling,
  prompt: z.union([
    z.string(),
    z.array(z.string()).min(1).max(MAX_PROMPTS),
    tokenIds,
    z.array(tokenIds).min(1).max(MAX_PROMPTS),
  ]),
  logprobs: opt(int().min(0)),
  echo: opt(z.boolean()),
  response_format: opt(responseFormat),
  /** The text after the gap: each answer is what goes between its prompt and this (fill-in-the-middle). */
  suffix: opt(z.string()),
});
export type CompletionRequest = z.output<typeof completionRequest>;
