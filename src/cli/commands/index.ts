import type { Command } from 'commander';
import { registerBench } from './bench.ts';
import { registerRun } from './run.ts';

/** Each command lives in its own file and registers itself on the program. */
export type RegisterCommand = (program: Command) => void;

export const commands: RegisterCommand[] = [registerRun, registerBench];
