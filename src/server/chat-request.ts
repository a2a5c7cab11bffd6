import type { EncodeOptions } from '../engine/types.ts';
import type { GrammarSpec } from '../grammar/spec.ts';
import { THINK_END } from '../tools/reasoning-parser.ts';
import { afterReasoning, type ChatOutputMode, reasoningMode } from './chat-output.ts';
import { encodeChat, type RenderOptions } from './chat-template.ts';
import { badRequest } from './errors.ts';
import type { Admitted } from './generation.ts';
import type { ChatMessage } from './models.ts';
import { type ParametersField, resolveTools, type Tool, type ToolChoice } from './tool-requests.ts';

/** What a chat-shaped request (chat completions, the Responses API, Anthropic's Messages) asks of the model. */
export interface ChatAsk {
  messages: ChatMessage[];
  tools?: Tool[] | null;
  toolChoice?: ToolChoice | null;
  parallelToolCalls?: boolean | null;
  /** Where a tool's parameter schema sits in the request (default: chat completions' `tools[i].function.parameters`). */
  parametersField?: ParametersField;
  /** Extra variables for the chat template (chat_template_kwargs). */
  kwargs?: Record<string, unknown>;
  /** Whether the assistant's turn is opened (default), or the last message left open for the model to go on with. */
  addGenerationPrompt?: boolean;
  continueFinalMessage?: RenderOptions['continueFinalMessage'];
  /** How the rendered prompt is tokenized: special tokens (default: the template's rule), any length (a count). */
  encode?: EncodeOptions;
  /** The structured output the request asks for, if any. */
  structured?: GrammarSpec;
  /** false: special tokens stay in the text (vLLM's skip_special_tokens). */
  skipSpecialTokens?: boolean;
}

/** A chat request made ready for the engine: the rendered prompt, its ids, how to parse the output, what to hold it to. */
export interface PreparedChat {
  prompt: string;
  ids: number[];
  mode: ChatOutputMode;
  output: { grammar?: GrammarSpec; skipSpecialTokens: boolean };
}

/**
 * Checks the request's tools against the model's template, renders the conversation and tokenizes it, and says how
 * the answer is parsed (reasoning, the template's tool-call format) and constrained (a forced tool call's grammar or
 * the structured output, never both).
 */
export async function prepareChat(a: Admitted, ask: ChatAsk): Promise<PreparedChat> {
  const tools = resolveTools(
    a.model,
    a.entry.name,
    ask.tools,
    ask.toolChoice,
    ask.parallelToolCalls,
    ask.parametersField,
  );
  if (tools.grammar && ask.structured) {
    throw badRequest(
      'tool_choice "required" or a named function does not combine with structured output',
      'tool_choice',
    );
  }
  const render = {
    tools: tools.templateTools,
    kwargs: ask.kwargs,
    addGenerationPrompt: ask.addGenerationPrompt,
    continueFinalMessage: ask.continueFinalMessage,
  };
  const { prompt, ids } = await encodeChat(a.model, a.entry.name, ask.messages, render, ask.encode);
  const reasoning = reasoningMode(a.model.chatTemplate?.source ?? '', prompt, prefillOf(ask));
  return {
    prompt,
    ids,
    mode: {
      reasoning,
      tools: tools.format,
      ...(typeof ask.toolChoice === 'object' && ask.toolChoice && { namedTool: true }),
      ...(ask.parallelToolCalls === false && { singleCall: true }),
    },
    output: {
      // A prompt that closed the block (thinking off) is held from the first token, with the JSON token mask.
      grammar: afterReasoning(tools.grammar ?? ask.structured, prompt.trimEnd().endsWith(THINK_END) ? null : reasoning),
      // Tool-call markers may be special tokens ([TOOL_CALLS], <|python_tag|>): keep them where calls are parsed.
      skipSpecialTokens: ask.skipSpecialTokens !== false && !tools.format?.tags.length,
    },
  };
}

/** The last message's text when the request goes on from it (a prefill), else undefined. */
function prefillOf(ask: ChatAsk): string | undefined {
  const last = ask.messages.at(-1);
  return ask.continueFinalMessage && last?.role === 'assistant' ? last.content : undefined;
}

/**
 * A chat template's extra variables: chat_template_kwargs, and OpenAI's reasoning effort where those do not set it
 * (vLLM passes it as `reasoning_effort`, which gpt-oss's template reads).
 */
export function templateKwargs(
  kwargs: Record<string, unknown> | null | undefined,
  effort: string | null | undefined,
): Record<string, unknown> | undefined {
  if (!effort) return kwargs ?? undefined;
  return { reasoning_effort: effort, ...kwargs };
}
