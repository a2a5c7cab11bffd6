import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Template } from '@huggingface/jinja';
import { UserError } from '../util/errors.ts';
import { readJson } from './hf-config.ts';
import { readTokenizerConfig, specialTokenText } from './tokenizer.ts';

/** One chat turn as the OpenAI/Ollama APIs send it; extra fields (name, tool_calls, ...) reach the template. */
export interface ChatMessage {
  role: string;
  content: string;
  [key: string]: unknown;
}

/** How to render: the generation prompt, OpenAI-style tools, and extra template variables (chat_template_kwargs). */
export interface ChatRenderOptions {
  addGenerationPrompt?: boolean;
  tools?: readonly unknown[] | null;
  kwargs?: Record<string, unknown>;
  /** A stored model's Modelfile MESSAGEs are left out (Ollama's generate going on from a `context`, which has them). */
  omitStoredMessages?: boolean;
}

/** The special-token names transformers passes to chat templates (its special_tokens_map). */
const SPECIAL_TOKEN_KEYS = [
  'bos_token',
  'eos_token',
  'unk_token',
  'sep_token',
  'pad_token',
  'cls_token',
  'mask_token',
] as const;

/** A model's chat template, rendered as transformers' apply_chat_template(tokenize=False) does. */
export class ChatTemplate {
  private readonly template: Template;
  private readonly specials: Record<string, unknown>;

  constructor(
    readonly source: string,
    /** Where the template came from, for error messages. */
    readonly origin: string,
    tokenizerConfig: Record<string, unknown>,
  ) {
    try {
      this.template = new Template(source);
    } catch (err) {
      throw new UserError(`${origin}: chat template does not parse (${(err as Error).message})`);
    }
    this.specials = {};
    for (const key of SPECIAL_TOKEN_KEYS) {
      const text = specialTokenText(tokenizerConfig[key]);
      if (text !== null) this.specials[key] = text;
    }
    const extra = tokenizerConfig.additional_special_tokens;
    if (Array.isArray(extra)) this.specials.additional_special_tokens = extra.map(specialTokenText);
  }

  /**
   * Renders the conversation; the result already holds any BOS the template writes, so encode it with
   * `addSpecialTokens: false`.
   */
  render(messages: readonly ChatMessage[], opts: ChatRenderOptions = {}): string {
    try {
      return this.template.render({
        ...this.specials,
        // chat_template_kwargs (enable_thinking, ...) first: the fixed names win.
        ...opts.kwargs,
        messages,
        add_generation_prompt: opts.addGenerationPrompt ?? false,
        // raise_exception and strftime_now are globals of @huggingface/jinja.
        tools: opts.tools ?? null,
        documents: null,
      });
    } catch (err) {
      throw new UserError(`${this.origin}: chat template failed: ${(err as Error).message}`);
    }
  }
}

/** Picks the template from tokenizer_config.json's chat_template: a string, or a named list holding "default". */
function templateFromConfig(value: unknown, path: string): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) {
    const named = value as { name?: unknown; template?: unknown }[];
    const chosen = named.find((t) => t.name === 'default');
    if (chosen && typeof chosen.template === 'string') return chosen.template;
    const names = named.map((t) => String(t.name)).join(', ');
    throw new UserError(`${path}: "chat_template" lists templates [${names}] but none named "default"`);
  }
  throw new UserError(`${path}: "chat_template" is a ${typeof value}, expected a string or a list of {name, template}`);
}

/** A template's text and where it came from (a file, or the flag itself). */
export interface TemplateText {
  source: string;
  origin: string;
}

/**
 * A `--chat-template` value, as vLLM takes it: the path of a Jinja file, or the template itself (text with `{{` or
 * `{%`). Returns the template's text and where it came from.
 */
export function chatTemplateOption(value: string): TemplateText {
  if (existsSync(value) && statSync(value).isFile()) return { source: readFileSync(value, 'utf8'), origin: value };
  if (/\{[{%]/.test(value)) return { source: value, origin: '--chat-template' };
  throw new UserError(`--chat-template ${value}: no such file, and not a Jinja template either`);
}

/** A model's chat template replaced by a `--chat-template`'s text (its special tokens still the model's). */
export function chatTemplateFrom({ source, origin }: TemplateText, dir: string): ChatTemplate {
  return new ChatTemplate(source, origin, readTokenizerConfig(dir));
}

/**
 * Loads the chat template of a model folder: chat_template.jinja (transformers 5), else tokenizer_config.json's
 * "chat_template", else chat_template.json's (the processor's, which vision-language checkpoints such as Qwen2.5-VL
 * may keep alone). Returns null when the model has none.
 */
export function loadChatTemplate(dir: string): ChatTemplate | null {
  const config = readTokenizerConfig(dir);
  const jinjaPath = join(dir, 'chat_template.jinja');
  if (existsSync(jinjaPath)) return new ChatTemplate(readFileSync(jinjaPath, 'utf8'), jinjaPath, config);
  const configPath = join(dir, 'tokenizer_config.json');
  const source = templateFromConfig(config.chat_template, configPath);
  if (source !== null) return new ChatTemplate(source, configPath, config);
  const processorPath = join(dir, 'chat_template.json');
  if (!existsSync(processorPath)) return null;
  const processor = templateFromConfig(readJson(processorPath).chat_template, processorPath);
  return processor === null ? null : new ChatTemplate(processor, processorPath, config);
}
