import type { LoadedEngine } from '../engine/load.ts';
import { localChat, remoteChat } from './chat/backends.ts';
import { chatRepl } from './chat/repl.ts';
import type { ChatSettings } from './chat/set-command.ts';

/** `pagoda run <model>` with no prompt on a terminal, in this process (`model` as given, for `/show`). */
export async function runInteractive(loaded: LoadedEngine, model: string, settings: ChatSettings): Promise<void> {
  await chatRepl(localChat(loaded, model), settings);
}

/** The same chat through a running server (the model loads there, on first use). */
export async function runInteractiveRemote(baseUrl: string, model: string, settings: ChatSettings): Promise<void> {
  await chatRepl(await remoteChat(baseUrl, model), settings);
}
