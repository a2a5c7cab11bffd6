import { OllamaTemplate } from '../gotemplate/ollama.ts';
import type { ChatRenderOptions } from '../loader/chat-template.ts';
import type { Manifest } from './manifest.ts';

/** A chat turn; extra fields (tool calls, names) reach Jinja templates. */
export interface PromptMessage {
  role: string;
  content: string;
  [key: string]: unknown;
}

/** What chat rendering needs of a template: the loader's Jinja ChatTemplate has this shape too. */
export interface PromptTemplate {
  readonly source: string;
  /** True for Go templates: like Ollama, they leave BOS to the tokenizer (Jinja templates write it). */
  readonly addSpecialTokens?: boolean;
  render(messages: readonly PromptMessage[], opts?: ChatRenderOptions): string;
  /** The fill-in-the-middle prompt around a gap, for a Go template that knows `.Suffix`. */
  infill?(prefix: string, suffix: string): string;
}

/** A Go template (a Modelfile's TEMPLATE) as a prompt template: BOS left to the tokenizer, as Ollama leaves it. */
export function goPromptTemplate(source: string): PromptTemplate {
  const go = new OllamaTemplate(source);
  return {
    source: go.source,
    addSpecialTokens: true,
    render: (messages, opts) => go.render(messages, goOptions(opts)),
    infill: go.insert ? (prefix, suffix) => go.renderInsert(prefix, suffix) : undefined,
  };
}

/**
 * The chat template of a stored model: its Go TEMPLATE when the Modelfile gave one, else the model's own (Jinja)
 * template; the Modelfile's MESSAGEs come first and its SYSTEM applies when the conversation brings none.
 * Returns the base template unchanged for models that have no manifest.
 */
export function storedChatTemplate(manifest: Manifest | null, base: PromptTemplate | null): PromptTemplate | null {
  if (!manifest) return base;
  const inner = manifest.template !== undefined ? goPromptTemplate(manifest.template) : base;
  if (!inner) return null;
  const withLayers = (messages: readonly PromptMessage[], omitMessages = false): PromptMessage[] => {
    const out = [...(omitMessages ? [] : manifest.messages), ...messages];
    if (manifest.system !== undefined && !out.some((m) => m.role === 'system')) {
      out.unshift({ role: 'system', content: manifest.system });
    }
    return out;
  };
  return {
    source: inner.source,
    addSpecialTokens: inner.addSpecialTokens,
    render: (messages, opts) => inner.render(withLayers(messages, opts?.omitStoredMessages), opts),
    infill: inner.infill,
  };
}

/** Ollama's template variables from the render options: `.Tools`, and `.Think` from enable_thinking. */
function goOptions(opts: ChatRenderOptions | undefined) {
  const think = opts?.kwargs?.enable_thinking;
  return { tools: opts?.tools ?? [], think: typeof think === 'boolean' ? think : undefined };
}
