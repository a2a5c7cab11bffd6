import { join } from 'node:path';
import { projectRoot } from './fixtures.ts';

/** The FP8 checkpoints test/fixtures/generate-fp8.py writes, and the start-up line each gives. */
export const FP8_VARIANTS = [
  { variant: 'block', summary: 'FP8 checkpoint (block 128x128)' },
  { variant: 'channel', summary: 'FP8 checkpoint (compressed-tensors, per-channel scales)' },
  { variant: 'tensor', summary: 'FP8 checkpoint (compressed-tensors, per-tensor scales)' },
] as const;

/** `tiny-llama-fp8-<variant>` and its `-dequantized` reference. */
export const fixture = (name: string) => join(projectRoot, 'test/fixtures/models', name);

/** A prompt and the tokens then fed one decode step at a time. */
export const FP8_PROMPT = [1, 312, 45, 907, 18];
export const FP8_FORCED = [77, 501, 3, 1000];
