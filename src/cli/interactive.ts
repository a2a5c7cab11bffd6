import type { LoadedEngine } from '../engine/load.ts';
import type { SamplingParams } from '../engine/types.ts';
import { localChat, remoteChat } from './chat/backends.ts';
import { chatRepl } from './chat/repl.ts';

/** `pagoda run <model>` with no prompt on a terminal, in this process. */
export async function runInteractive(loaded: LoadedEngine, params: Partial<SamplingParams>): Promise<void> {
  await chatRepl(localChat(loaded, params));
}

/** The same chat through a running server (the model loads there, on first use). */
export async function runInteractiveRemote(
  baseUrl: string,
  model: string,
  params: Partial<SamplingParams>,
): Promise<void> {
  await chatRepl(remoteChat(baseUrl, model, params));
}
