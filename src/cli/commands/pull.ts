import { Command } from 'commander';
import { pullModel } from '../../store/pull.ts';
import { pullProgressRenderer } from '../progress.ts';
import type { RegisterCommand } from './index.ts';

/**
 * `pagoda pull NAME`: `org/repo[:revision]` from the Hugging Face Hub into the HF cache, `name[:tag]` from the
 * Ollama-compatible registry into pagoda's store.
 */
export const registerPull: RegisterCommand = (program) => {
  program.addCommand(
    new Command('pull')
      .description(
        'download a model: from the Hugging Face Hub (HF_ENDPOINT, HF_TOKEN) into its cache, or from the registry (PAGODA_REGISTRY) into the store',
      )
      .argument(
        '<model>',
        'a Hub repo id, e.g. Qwen/Qwen2.5-0.5B-Instruct (":revision" picks a branch, tag or commit), or a registry name such as llama3.2[:1b]',
      )
      .action(async (model: string) => {
        const progress = pullProgressRenderer();
        const abort = new AbortController();
        const onSigint = () => abort.abort();
        process.once('SIGINT', onSigint);
        try {
          const pulled = await pullModel(model, { onProgress: progress.onProgress, signal: abort.signal });
          progress.stop();
          process.stdout.write(`${pulled.summary}\n`);
        } finally {
          progress.stop();
          process.off('SIGINT', onSigint);
        }
      }),
  );
};
