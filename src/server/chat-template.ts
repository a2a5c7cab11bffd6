import { OLLAMA_DEFAULT_TEMPLATE, OllamaTemplate } from '../gotemplate/ollama.ts';
import { ApiError } from './errors.ts';
import { encodePrompt } from './generation.ts';
import type { ChatMessage, LoadedModel } from './models.ts';

/** Renders a conversation with the model's chat template; a template's own refusal is the client's 400. */
export function renderChat(model: LoadedModel, name: string, messages: ChatMessage[]): string {
  if (!model.chatTemplate) {
    throw new ApiError(
      400,
      `model "${name}" has no chat template; use the completions endpoint with a plain prompt`,
      'messages',
    );
  }
  try {
    return model.chatTemplate.render(messages, { addGenerationPrompt: true });
  } catch (err) {
    // The loader's message starts with the template's file path, which is none of the client's business.
    const reason = (err as Error).message.replace(/^.*?chat template failed: /, '');
    throw new ApiError(400, `chat template: ${reason}`, 'messages');
  }
}

/** The token ids of a rendered conversation (BOS added only when the template leaves it to the tokenizer). */
export function encodeChat(model: LoadedModel, name: string, messages: ChatMessage[]): Promise<number[]> {
  return encodePrompt(model, renderChat(model, name, messages), model.chatTemplate?.addSpecialTokens === true);
}

const ollamaDefault = new OllamaTemplate(OLLAMA_DEFAULT_TEMPLATE);

/**
 * Ollama's chat: a model without a chat template falls back to Ollama's default template (the user turns and
 * answers as plain text, no system prompt), with the tokenizer's BOS, as Ollama renders it.
 */
export function encodeOllamaChat(model: LoadedModel, name: string, messages: ChatMessage[]): Promise<number[]> {
  if (model.chatTemplate) return encodeChat(model, name, messages);
  return encodePrompt(model, ollamaDefault.render(messages), true);
}
