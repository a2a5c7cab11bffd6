import type { SamplingParams } from '../engine/types.ts';
import type { LoadedEngine } from '../runner/load.ts';
import { UserError } from '../util/errors.ts';

/**
 * `pagoda run <model>` with no prompt on a terminal: the interactive chat. It is the hook the chat front end plugs
 * into; until then, a one-line explanation.
 */
export async function runInteractive(loaded: LoadedEngine, _params: Partial<SamplingParams>): Promise<void> {
  throw new UserError(
    `give a prompt: pagoda run ${loaded.modelName} "Once upon a time" (interactive chat is not available yet)`,
  );
}
