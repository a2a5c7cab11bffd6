import { Command } from 'commander';
import { pullFromHub } from '../../store/hub.ts';
import { pullProgressRenderer } from '../progress.ts';
import type { RegisterCommand } from './index.ts';

/** `pagoda pull org/repo[:revision]`: downloads a model from the Hugging Face Hub into the HF cache. */
export const registerPull: RegisterCommand = (program) => {
  program.addCommand(
    new Command('pull')
      .description('download a model from the Hugging Face Hub (HF_ENDPOINT, HF_TOKEN) into the Hugging Face cache')
      .argument('<model>', 'a Hub repo id, e.g. Qwen/Qwen2.5-0.5B-Instruct (":revision" picks a branch, tag or commit)')
      .action(async (model: string) => {
        const progress = pullProgressRenderer();
        const abort = new AbortController();
        const onSigint = () => abort.abort();
        process.once('SIGINT', onSigint);
        try {
          const snap = await pullFromHub(model, { onProgress: progress.onProgress, signal: abort.signal });
          progress.stop();
          process.stdout.write(`pulled ${snap.repo} at ${snap.commit.slice(0, 12)} into ${snap.dir}\n`);
        } finally {
          progress.stop();
          process.off('SIGINT', onSigint);
        }
      }),
  );
};
