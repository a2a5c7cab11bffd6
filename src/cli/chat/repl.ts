import { createInterface } from 'node:readline';
import { AnswerPrinter, type ChatDelta } from './answer-printer.ts';
import { formatStats } from './answer-stats.ts';
import { MultilineInput } from './multiline.ts';
import { applySet, applyUnset, type ChatSettings } from './set-command.ts';
import { applyShow } from './show-command.ts';

export interface ChatTurn {
  role: string;
  content: string;
  [key: string]: unknown;
}

/** Where answers come from: the engine in this process or a running server. */
export interface ChatBackend {
  /** False when the model has no chat template: the chat continues the conversation as plain text. */
  readonly hasTemplate: boolean;
  /** Whether the model's template can think (`--think`). */
  readonly thinks: boolean;
  /** The model as `pagoda show` takes it (its name, folder or GGUF file), for `/show`. */
  readonly model: string;
  /** Streams the answer to the conversation (its thinking apart), then its stats; stops when `signal` aborts. */
  stream(messages: readonly ChatTurn[], settings: ChatSettings, signal: AbortSignal): AsyncIterable<ChatDelta>;
}

const HELP = `Available commands:
  /set     set a parameter, the system message, raw mode, verbose mode, JSON answers or thinking (/set for details)
  /unset   unset the system message or the format
  /show    show the model's details, Modelfile, parameters, system message, template or license
  /clear   forget the conversation so far
  /bye     exit
  /?       this help
Use """ to begin a multi-line message (it ends at a line ending with """).
Ctrl-C stops the current answer; Ctrl-D or /bye exits.`;

const NO_TEMPLATE_NOTE = 'This model has no chat template: each answer continues the conversation as plain text.';

/**
 * The interactive chat of `pagoda run MODEL`: reads lines with history, streams each answer, keeps the
 * conversation. Ctrl-C stops the answer being written (not the program); /bye or Ctrl-D ends the chat. The chat
 * starts from the `initial` settings (the flags given); /set changes them for the turns that follow.
 */
export async function chatRepl(
  backend: ChatBackend,
  initial: ChatSettings,
  io: { input: NodeJS.ReadableStream; output: NodeJS.WritableStream } = {
    input: process.stdin,
    output: process.stdout,
  },
): Promise<void> {
  const { output } = io;
  const rl = createInterface({ input: io.input, output, terminal: true, historySize: 200, prompt: '>>> ' });
  const pending: string[] = [];
  let closed = false;
  let wake: (() => void) | null = null;
  let answering: AbortController | null = null;
  rl.on('line', (line) => {
    pending.push(line);
    wake?.();
  });
  rl.on('close', () => {
    closed = true;
    wake?.();
  });
  rl.on('SIGINT', () => {
    if (answering) {
      answering.abort();
      return;
    }
    rl.write(null, { ctrl: true, name: 'u' });
    output.write('\nUse Ctrl + d or /bye to exit.\n');
    rl.prompt();
  });
  const multiline = new MultilineInput();
  const nextLine = async (): Promise<string | null> => {
    rl.setPrompt(multiline.open ? '... ' : '>>> ');
    rl.prompt();
    while (!pending.length && !closed) await new Promise<void>((resolve) => (wake = resolve));
    wake = null;
    return pending.shift() ?? null;
  };

  const settings: ChatSettings = { ...initial, params: { ...initial.params } };
  if (!backend.hasTemplate) output.write(`${NO_TEMPLATE_NOTE}\n`);
  let messages: ChatTurn[] = [];
  try {
    for (;;) {
      const typed = await nextLine();
      if (typed === null) break;
      const line = multiline.add(typed);
      if (line === null) continue;
      const text = line.trim();
      if (!text) continue;
      if (text === '/bye') break;
      if (text === '/clear') {
        messages = [];
        output.write('Cleared session context\n');
        continue;
      }
      if (text === '/set' || text.startsWith('/set ')) {
        output.write(`${applySet(text.slice('/set'.length), settings, backend)}\n`);
        continue;
      }
      if (text === '/unset' || text.startsWith('/unset ')) {
        output.write(`${applyUnset(text.slice('/unset'.length), settings)}\n`);
        continue;
      }
      if (text === '/show' || text.startsWith('/show ')) {
        output.write(`${applyShow(text.slice('/show'.length), backend.model)}\n`);
        continue;
      }
      if (text === '/?' || text === '/help') {
        output.write(`${HELP}\n`);
        continue;
      }
      if (text.startsWith('/')) {
        output.write(`Unknown command '${text.split(/\s/)[0]}'. Type /? for help\n`);
        continue;
      }
      messages.push({ role: 'user', content: line });
      const controller = new AbortController();
      answering = controller;
      const printer = new AnswerPrinter(output, settings.hideThinking);
      try {
        const turn =
          settings.system === undefined ? messages : [{ role: 'system', content: settings.system }, ...messages];
        for await (const delta of backend.stream(turn, settings, controller.signal)) {
          if (controller.signal.aborted) break;
          printer.push(delta);
        }
      } catch (err) {
        if (!controller.signal.aborted) output.write(`\nerror: ${(err as Error).message}`);
      } finally {
        answering = null;
      }
      // A stopped answer stays in the conversation as far as it got.
      const { answer, thought, stats } = printer;
      // Its thinking goes with it, as Ollama keeps it (templates that show earlier thinking read it).
      if (answer) messages.push({ role: 'assistant', content: answer, ...(thought && { thinking: thought }) });
      else messages.pop();
      output.write(controller.signal.aborted ? '\n^C\n\n' : '\n\n');
      if (settings.verbose && stats) output.write(`${formatStats(stats)}\n\n`);
    }
  } finally {
    rl.close();
  }
}
