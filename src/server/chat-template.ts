import { ApiError } from './errors.ts';
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
    throw new ApiError(400, `chat template: ${(err as Error).message}`, 'messages');
  }
}
