import { Command } from 'commander';
import { askServer, serverUrl } from '../server-url.ts';
import type { RegisterCommand } from './index.ts';

/**
 * `pagoda stop MODEL`, as `ollama stop`: a running server unloads the model now (POST /api/generate with keep_alive
 * 0; a model it has not loaded stays unloaded, nothing to do). A model the server does not know is an error.
 */
export const registerStop: RegisterCommand = (program) => {
  program.addCommand(
    new Command('stop')
      .description('unload a model from a running server')
      .argument('<model>', 'the model, as `pagoda ps` lists it')
      .action(async (model: string) => {
        await askServer(
          serverUrl(),
          '/api/generate',
          { model, keep_alive: 0 },
          {
            statusMessage: (status) => (status === 404 ? `couldn't find model "${model}" to stop` : undefined),
          },
        );
      }),
  );
};
