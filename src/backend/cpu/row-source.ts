/**
 * The rows of a matrix one thread computes: it calls `run` for each range [r0, r1) it takes, one fixed range or
 * chunks claimed from the other threads' shared counter (job-layout.ts's claimRows). A kernel that prepares per call
 * (packs the activations) does so once and then takes every range.
 */
export type RowSource = (run: (r0: number, r1: number) => void) => void;

/** Rows [r0, r1) as one range. */
export function rowRange(r0: number, r1: number): RowSource {
  return (run) => {
    if (r0 < r1) run(r0, r1);
  };
}
