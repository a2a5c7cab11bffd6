import type { Activation } from '../backend/backend.ts';
import { UserError } from '../util/errors.ts';

/** transformers' activation names (`hidden_act`, `activation_function`) → the plain MLP activation each computes. */
const PLAIN_ACTIVATIONS: Record<string, Activation> = {
  gelu_new: 'gelu_tanh',
  gelu_pytorch_tanh: 'gelu_tanh',
  gelu_fast: 'gelu_tanh',
  gelu: 'gelu',
  relu2: 'relu2',
};

/** The activation a plain (ungated) MLP's config names under `key`, or a one-line error listing the supported ones. */
export function plainActivation(name: string, key: string, architecture: string): Activation {
  const act = PLAIN_ACTIVATIONS[name];
  if (!act) {
    throw new UserError(
      `config.json: ${key} "${name}" is not supported for ${architecture} (expected one of ${Object.keys(PLAIN_ACTIVATIONS).join(', ')})`,
    );
  }
  return act;
}
