import { OLLAMA_DEFAULT_TEMPLATE, OllamaTemplate } from '../gotemplate/ollama.ts';
import { ApiError } from './errors.ts';
import { encodePrompt } from './generation.ts';
import type { ChatMessage, ChatRenderOptions, LoadedModel } from './models.ts';

/** How a conversation is rendered: the template's options, and vLLM's continue_final_message. */
export interface RenderOptions extends ChatRenderOptions {
  /** The last (assistant) message left open for the model to go on with, instead of a new turn opened. */
  continueFinalMessage?: boolean;
}

/**
 * Renders a conversation with the model's chat template, the assistant's turn opened unless `addGenerationPrompt` is
 * false, or the last message left open (`continueFinalMessage`: cut after its text, as transformers does); a
 * template's own refusal is the client's 400.
 */
export function renderChat(
  model: LoadedModel,
  name: string,
  messages: ChatMessage[],
  opts: RenderOptions = {},
): string {
  if (!model.chatTemplate) {
    throw new ApiError(
      400,
      `model "${name}" has no chat template; use the completions endpoint with a plain prompt`,
      'messages',
    );
  }
  const { continueFinalMessage, ...render } = opts;
  let text: string;
  try {
    text = model.chatTemplate.render(messages, {
      ...render,
      addGenerationPrompt: !continueFinalMessage && (opts.addGenerationPrompt ?? true),
    });
  } catch (err) {
    // The loader's message starts with the template's file path, which is none of the client's business.
    const reason = (err as Error).message.replace(/^.*?chat template failed: /, '');
    throw new ApiError(400, `chat template: ${reason}`, 'messages');
  }
  if (!continueFinalMessage) return text;
  const last = messages.at(-1)!;
  const at = last.content ? text.lastIndexOf(last.content) : -1;
  if (last.role !== 'assistant' || at < 0) {
    throw new ApiError(
      400,
      "the last message, to go on from, must be the assistant's with text the template writes",
      'messages',
    );
  }
  return text.slice(0, at + last.content.length);
}

/** A rendered conversation and its token ids (BOS added only when the template leaves it to the tokenizer). */
export async function encodeChat(
  model: LoadedModel,
  name: string,
  messages: ChatMessage[],
  opts: RenderOptions = {},
  anyLength = false,
): Promise<{ prompt: string; ids: number[] }> {
  const prompt = renderChat(model, name, messages, opts);
  const ids = await encodePrompt(model, prompt, model.chatTemplate?.addSpecialTokens === true, anyLength);
  return { prompt, ids };
}

const ollamaDefault = new OllamaTemplate(OLLAMA_DEFAULT_TEMPLATE);

/**
 * Ollama's chat: a model without a chat template falls back to Ollama's default template (the user turns and
 * answers as plain text, no system prompt), with the tokenizer's BOS, as Ollama renders it.
 */
export async function encodeOllamaChat(
  model: LoadedModel,
  name: string,
  messages: ChatMessage[],
  opts: Omit<RenderOptions, 'addGenerationPrompt'> = {},
): Promise<{ prompt: string; ids: number[] }> {
  if (model.chatTemplate) return encodeChat(model, name, messages, opts);
  const prompt = ollamaDefault.render(messages);
  return { prompt, ids: await encodePrompt(model, prompt, true) };
}
