import type { Command } from 'commander';
import { registerBench } from './bench.ts';
import { registerConvert } from './convert.ts';
import { registerCp } from './cp.ts';
import { registerCreate } from './create.ts';
import { registerList } from './list.ts';
import { registerPs } from './ps.ts';
import { registerPull } from './pull.ts';
import { registerQuantize } from './quantize.ts';
import { registerRm } from './rm.ts';
import { registerRun } from './run.ts';
import { registerRunBatch } from './run-batch.ts';
import { registerServe } from './serve.ts';
import { registerShow } from './show.ts';
import { registerStop } from './stop.ts';

/** Each command lives in its own file and registers itself on the program. */
export type RegisterCommand = (program: Command) => void;

export const commands: RegisterCommand[] = [
  registerRun,
  registerBench,
  registerPull,
  registerList,
  registerShow,
  registerCreate,
  registerCp,
  registerRm,
  registerPs,
  registerStop,
  registerConvert,
  registerQuantize,
  registerServe,
  registerRunBatch,
];
