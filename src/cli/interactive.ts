import type { LoadedEngine } from '../engine/load.ts';
import { localChat, remoteChat } from './chat/backends.ts';
import { chatRepl } from './chat/repl.ts';
import type { ChatSettings } from './chat/set-command.ts';
import { thinkingFor } from './run-options.ts';

/** `pagoda run <model>` with no prompt on a terminal, in this process (`model` as given, for `/show`). */
export async function runInteractive(loaded: LoadedEngine, model: string, settings: ChatSettings): Promise<void> {
  const backend = localChat(loaded, model);
  const think = thinkingFor(settings, { thinks: backend.thinks, name: loaded.modelName });
  await chatRepl(backend, { ...settings, think });
}

/** The same chat through a running server (the model loads there, on first use). */
export async function runInteractiveRemote(baseUrl: string, model: string, settings: ChatSettings): Promise<void> {
  const backend = await remoteChat(baseUrl, model);
  const think = thinkingFor(settings, { thinks: backend.thinks, name: model });
  await chatRepl(backend, { ...settings, think });
}
