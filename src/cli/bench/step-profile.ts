/**
 * An offline run step by step (bench/throughput-profile.ts): what each engine step computed, where its time went on
 * the host and on the device, and the run summed per step class and decode batch size.
 */

/** What one step computed, from its scheduled sequences. */
export interface StepShape {
  /** Tokens of prompt chunks (a preempted sequence's recompute included). */
  prefillTokens: number;
  /** Sequences computing one token past their prompt. */
  decodeSeqs: number;
  /** Keys the step's sequences attend to after its writes, summed. */
  contextTokens: number;
  /** Sequences given a logit row: the tokens the step draws (drafts a speculative step accepts beyond it uncounted). */
  sampledRows: number;
}

/** The parts of a scheduled sequence (engine/scheduler.ts `ScheduledSeq`) a step's shape reads. */
export interface ScheduledShape {
  seq: { readonly promptLen: number };
  start: number;
  cached: number;
  numTokens: number;
  logits: 'last' | 'all' | 'none';
  draft: { tokens: readonly number[] } | null;
}

export function stepShape(seqs: readonly ScheduledShape[]): StepShape {
  const shape: StepShape = { prefillTokens: 0, decodeSeqs: 0, contextTokens: 0, sampledRows: 0 };
  for (const s of seqs) {
    const own = s.numTokens - (s.draft?.tokens.length ?? 0);
    if (own === 1 && s.start >= s.seq.promptLen) shape.decodeSeqs++;
    else shape.prefillTokens += s.numTokens;
    shape.contextTokens += s.cached + s.numTokens;
    if (s.logits !== 'none') shape.sampledRows++;
  }
  return shape;
}

export type StepClass = 'prefill-only' | 'decode-only' | 'mixed';

export function stepClass(s: StepShape): StepClass {
  if (s.decodeSeqs === 0) return 'prefill-only';
  return s.prefillTokens === 0 ? 'decode-only' : 'mixed';
}

/** Decode batch sizes summed together; past the last, one open bucket. */
export const DECODE_BUCKETS: readonly (readonly [number, number])[] = [
  [1, 8],
  [9, 32],
  [33, 64],
  [65, 128],
  [129, 256],
];

/** The bucket of a step's decode sequences, as its table label ('-' for none). */
export function decodeBucket(decodeSeqs: number): string {
  if (decodeSeqs === 0) return '-';
  const b = DECODE_BUCKETS.find(([, hi]) => decodeSeqs <= hi);
  return b ? `${b[0]}-${b[1]}` : `${DECODE_BUCKETS.at(-1)![1] + 1}+`;
}

/** One step as measured. Device times are null without a device clock (the CPU). */
export interface StepRecord extends StepShape {
  /** Whether its forward replayed a CUDA graph. */
  graph: boolean;
  /** Host: from this step's launch to the next one's (the last step: to the run's end). */
  wallMs: number;
  /** Host: inside the runner's `execute` (block copies, the batch, uploads, kernel launches or the graph replay). */
  launchMs: number;
  /** Device: the forward (uploads included). */
  forwardMs: number | null;
  /** Device: sampling, and logit rows copied to the host. */
  sampleMs: number | null;
  /** Device: the stream idle since the previous step's end (waiting for the host), and inside the step. */
  idleMs: number | null;
}

/** What a decode step must read: the weights once, and the K and V of every key it attends to. */
export interface BytesModel {
  weightBytes: number;
  /** K and V of one token in every layer, as cached. */
  kvBytesPerToken: number;
}

export const SUMMARY_HEADER = [
  'class',
  'decode seqs',
  'steps',
  'graph replays',
  'output tokens',
  'prefill tokens',
  'context tokens/step',
  'wall ms',
  'share of wall',
  'wall ms/step',
  'launch ms/step',
  'device ms',
  'device ms/step',
  'forward ms/step',
  'sample ms/step',
  'idle ms/step',
  'device busy',
  'forward GB/s',
];

const CLASSES: readonly StepClass[] = ['prefill-only', 'decode-only', 'mixed'];
const BUCKET_LABELS = ['-', ...DECODE_BUCKETS.map(([lo, hi]) => `${lo}-${hi}`), `${DECODE_BUCKETS.at(-1)![1] + 1}+`];

/**
 * The run per step class and decode bucket, then all steps: one row per group that ran, in `SUMMARY_HEADER`'s
 * columns. Device columns read '-' without device times; forward GB/s (`bytes`' model over the forward's time) only for
 * decode-only steps, whose reads it models.
 */
export function summaryRows(records: readonly StepRecord[], bytes?: BytesModel): string[][] {
  const wall = records.reduce((a, r) => a + r.wallMs, 0);
  const rows: string[][] = [];
  for (const cls of CLASSES) {
    for (const bucket of BUCKET_LABELS) {
      const group = records.filter((r) => stepClass(r) === cls && decodeBucket(r.decodeSeqs) === bucket);
      if (group.length > 0) rows.push(groupRow(cls, bucket, group, wall, cls === 'decode-only' ? bytes : undefined));
    }
  }
  rows.push(groupRow('all', '', records, wall));
  return rows;
}

function groupRow(cls: string, bucket: string, group: readonly StepRecord[], runWall: number, bytes?: BytesModel) {
  const sum = (f: (r: StepRecord) => number) => group.reduce((a, r) => a + f(r), 0);
  const n = group.length;
  const wall = sum((r) => r.wallMs);
  const timed = group.every((r) => r.forwardMs !== null);
  const device = sum((r) => (r.forwardMs ?? 0) + (r.sampleMs ?? 0));
  const forward = sum((r) => r.forwardMs ?? 0);
  const ms = (x: number) => (timed ? x.toFixed(3) : '-');
  const read = bytes && sum((r) => bytes.weightBytes + r.contextTokens * bytes.kvBytesPerToken);
  return [
    cls,
    bucket,
    String(n),
    String(group.filter((r) => r.graph).length),
    String(sum((r) => r.sampledRows)),
    String(sum((r) => r.prefillTokens)),
    (sum((r) => r.contextTokens) / n).toFixed(0),
    wall.toFixed(1),
    percent(wall / runWall),
    (wall / n).toFixed(3),
    (sum((r) => r.launchMs) / n).toFixed(3),
    timed ? device.toFixed(1) : '-',
    ms(device / n),
    ms(forward / n),
    ms(sum((r) => r.sampleMs ?? 0) / n),
    ms(sum((r) => r.idleMs ?? 0) / n),
    timed ? percent(device / wall) : '-',
    read !== undefined && timed && forward > 0 ? (read / forward / 1e6).toFixed(0) : '-',
  ];
}

function percent(x: number): string {
  return `${(100 * x).toFixed(1)}%`;
}

/** The device's time on the steps over the run's wall time; null without device times. */
export function deviceBusyFraction(records: readonly StepRecord[], runWallMs: number): number | null {
  if (records.some((r) => r.forwardMs === null)) return null;
  return records.reduce((a, r) => a + r.forwardMs! + r.sampleMs!, 0) / runWallMs;
}
