import { DEMO_MODEL_NAME } from '../loader/demo-model.ts';
import { checkLoraFits } from '../models/load.ts';
import { resolveModel } from '../store/resolve.ts';
import { UserError } from '../util/errors.ts';
import type { ServeConfig } from './config.ts';
import type { ModelEntry } from './models.ts';

/**
 * Throws a UserError unless the LoRA adapter folder can be served merged into `base` (`--lora-modules` at start-up,
 * /v1/load_lora_adapter at run time): the base has no adapter of its own (a Modelfile's ADAPTER) and its weights take
 * this one (checkLoraFits), and the server loads real weights.
 */
export function checkAdapterFor(base: ModelEntry, folder: string, config: Pick<ServeConfig, 'dummyWeights'>): void {
  if (config.dummyWeights) throw new UserError(`${folder}: an adapter needs real weights, not --load-format dummy`);
  if (storedAdapter(base)) throw new UserError(`${folder}: "${base.name}" has an adapter already`);
  checkLoraFits(base.path, folder);
}

/** Whether a stored model's Modelfile gives it an adapter. */
function storedAdapter(entry: ModelEntry): boolean {
  if (entry.ref === DEMO_MODEL_NAME) return false;
  try {
    return resolveModel(entry.ref, { allowPaths: true }).manifest?.adapter !== undefined;
  } catch {
    return false;
  }
}
