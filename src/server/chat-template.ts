import type { EncodeOptions } from '../engine/types.ts';
import { OLLAMA_DEFAULT_TEMPLATE, OllamaTemplate } from '../gotemplate/ollama.ts';
import { ApiError } from './errors.ts';
import { encodePrompt } from './generation.ts';
import type { ChatMessage, ChatRenderOptions, LoadedModel } from './models.ts';

/** How a conversation is rendered: the template's options, and vLLM's continue_final_message. */
export interface RenderOptions extends ChatRenderOptions {
  /**
   * The last (assistant) message left open for the model to go on with, instead of a new turn opened: `required`
   * refuses (400) a conversation where that cannot be done, `if-possible` renders it as it is then (Ollama's implicit
   * prefill).
   */
  continueFinalMessage?: 'required' | 'if-possible';
}

/** Marks where the last message's text ends in the rendered prompt (private-use characters no text has). */
const END_OF_PREFILL = '\uE000pagoda-prefill\uE001';

/**
 * Renders a conversation with the model's chat template, the assistant's turn opened unless `addGenerationPrompt` is
 * false, or the last message left open (`continueFinalMessage`): rendered with a marker after its text and cut there,
 * so a template that trims or rewrites the text, or writes the same characters after it, still cuts in the right
 * place. A template's own refusal is the client's 400.
 */
export function renderChat(
  model: LoadedModel,
  name: string,
  messages: ChatMessage[],
  opts: RenderOptions = {},
): string {
  const template = model.chatTemplate;
  if (!template) {
    throw new ApiError(
      400,
      `model "${name}" has no chat template; use the completions endpoint with a plain prompt`,
      'messages',
    );
  }
  const { continueFinalMessage, ...options } = opts;
  const render = (conversation: ChatMessage[], addGenerationPrompt: boolean) => {
    try {
      return template.render(conversation, { ...options, addGenerationPrompt });
    } catch (err) {
      // The loader's message starts with the template's file path, which is none of the client's business.
      const reason = (err as Error).message.replace(/^.*?chat template failed: /, '');
      throw new ApiError(400, `chat template: ${reason}`, 'messages');
    }
  };
  const last = messages.at(-1);
  if (continueFinalMessage && last?.role === 'assistant' && last.content) {
    const marked = render([...messages.slice(0, -1), { ...last, content: last.content + END_OF_PREFILL }], false);
    const at = marked.indexOf(END_OF_PREFILL);
    if (at >= 0) return marked.slice(0, at);
  }
  if (continueFinalMessage === 'required') {
    throw new ApiError(
      400,
      "the last message, to go on from, must be the assistant's with text the template writes",
      'messages',
    );
  }
  return render(messages, opts.addGenerationPrompt ?? true);
}

/**
 * A rendered conversation and its token ids: BOS added only when the template leaves it to the tokenizer (unless
 * `encode.addSpecialTokens` says otherwise), refused when too long for the context unless `encode.anyLength`.
 */
export async function encodeChat(
  model: LoadedModel,
  name: string,
  messages: ChatMessage[],
  opts: RenderOptions = {},
  encode: EncodeOptions = {},
): Promise<{ prompt: string; ids: number[] }> {
  const prompt = renderChat(model, name, messages, opts);
  const add = encode.addSpecialTokens ?? model.chatTemplate?.addSpecialTokens === true;
  return { prompt, ids: await encodePrompt(model, prompt, add, encode.anyLength) };
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
