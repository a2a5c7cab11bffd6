import { TemplateError } from '../../gotemplate/errors.ts';
import { OllamaTemplate } from '../../gotemplate/ollama.ts';
import type { TextTokenizer } from '../../loader/tokenizer.ts';
import type { PromptMessage, PromptTemplate } from '../../store/model-prompt.ts';
import { UserError } from '../../util/errors.ts';

/** Ollama's template for models that have none: the conversation as plain text, which the model continues. */
const PLAIN = new OllamaTemplate('{{ .Prompt }}');

/** How a conversation is rendered: plain text (`raw`), and the template's keyword arguments (`enable_thinking`). */
export interface RenderChoices {
  raw?: boolean;
  kwargs?: Record<string, unknown>;
}

/**
 * The text a conversation becomes for a model: its chat template's rendering with the generation prompt (a stored
 * model's template brings its SYSTEM and MESSAGEs), or the plain text when `raw` or the model has no template.
 * `addSpecialTokens` says whether the tokenizer adds BOS: a Jinja template writes it itself, Go templates (as in
 * Ollama) and plain text leave it to the tokenizer.
 */
export function renderConversation(
  template: PromptTemplate | null,
  messages: readonly PromptMessage[],
  choices: RenderChoices = {},
): { text: string; addSpecialTokens: boolean } {
  if (choices.raw || !template) return { text: PLAIN.render(messages), addSpecialTokens: true };
  return {
    text: template.render(messages, { addGenerationPrompt: true, kwargs: choices.kwargs }),
    addSpecialTokens: template.addSpecialTokens === true,
  };
}

/**
 * A conversation rendered for the model (see `renderConversation`): its text and token ids; a template that fails
 * as it runs is an error naming the model.
 */
export function encodeConversation(
  model: { chatTemplate: PromptTemplate | null; tokenizer: TextTokenizer; modelName: string },
  messages: readonly PromptMessage[],
  choices: RenderChoices = {},
): { text: string; ids: number[] } {
  let rendered: { text: string; addSpecialTokens: boolean };
  try {
    rendered = renderConversation(model.chatTemplate, messages, choices);
  } catch (err) {
    if (!(err instanceof TemplateError)) throw err;
    throw new UserError(`${model.modelName}: its prompt template failed: ${err.message}`);
  }
  return {
    text: rendered.text,
    ids: model.tokenizer.encode(rendered.text, { addSpecialTokens: rendered.addSpecialTokens }),
  };
}
