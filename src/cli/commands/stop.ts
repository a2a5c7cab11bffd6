import { Command } from 'commander';
import { UserError } from '../../util/errors.ts';
import { askServer, serverUrl } from '../server-url.ts';
import type { RegisterCommand } from './index.ts';
import type { RunningModel } from './ps.ts';

/**
 * `pagoda stop MODEL`, as `ollama stop`: a running server unloads the model now (POST /api/generate with keep_alive
 * 0). Only a model it has loaded is asked for, so that stopping never loads one first.
 */
export const registerStop: RegisterCommand = (program) => {
  program.addCommand(
    new Command('stop')
      .description('unload a model from a running server')
      .argument('<model>', 'the model, as `pagoda ps` lists it')
      .action(async (model: string) => {
        const base = serverUrl();
        const { models } = (await askServer(base, '/api/ps')) as { models: RunningModel[] };
        const running = models.find((m) => m.name === model || m.name === `${model}:latest`);
        if (!running) throw new UserError(`couldn't find model "${model}" to stop`);
        await askServer(base, '/api/generate', { model: running.name, keep_alive: 0 });
      }),
  );
};
