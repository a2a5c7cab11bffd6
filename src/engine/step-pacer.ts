/**
 * When to launch the next pooling step while another computes on a device apart from the thread (CUDA). The stream
 * runs steps in launch order, so a step launched early finishes no sooner than one launched just before the device
 * would idle; launching late lets the requests that arrive meanwhile join it: fewer, fuller steps and less launch work
 * on the thread that also serves HTTP, at no cost in latency. The device's time per token is learnt from finished
 * steps (a step's time runs from its launch, or the previous step's end if later, to its end); until one has
 * finished, or when nothing is in flight, the next step launches at once. Times are milliseconds on one clock
 * (performance.now()).
 */
export class StepPacer {
  private msPerToken: number | null = null;
  /** The latest launch's own time on the thread, which the next launch must start ahead by. */
  private launchMs = 0;
  /** When the last finished step ended. */
  private lastEnd = 0;
  /** Steps launched and not yet finished, oldest first. */
  private readonly inFlight: { tokens: number; launchedAt: number }[] = [];

  /**
   * @param marginMs how much earlier than the estimate to launch: the engine notices a finished step up to about a
   *   millisecond late (its rows are polled), and estimates err.
   */
  constructor(private readonly marginMs = 1) {}

  /** A step of `tokens` tokens was launched at `at`; the launch held the thread for `launchMs`. */
  launched(tokens: number, at: number, launchMs: number): void {
    this.inFlight.push({ tokens, launchedAt: at });
    this.launchMs = launchMs;
  }

  /** The oldest step in flight was seen finished at `at`. */
  finished(at: number): void {
    const step = this.inFlight.shift();
    if (!step) return;
    const began = Math.max(step.launchedAt, this.lastEnd);
    this.lastEnd = at;
    if (step.tokens === 0 || at <= began) return;
    const rate = (at - began) / step.tokens;
    // Half-life of one step: follows a change of shape quickly, smooths the poll's jitter.
    this.msPerToken = this.msPerToken === null ? rate : (this.msPerToken + rate) / 2;
  }

  /** How long from `now` to wait before launching the next step (0: launch now). */
  delay(now: number): number {
    if (this.msPerToken === null || this.inFlight.length === 0) return 0;
    let end = this.lastEnd;
    for (const s of this.inFlight) end = Math.max(end, s.launchedAt) + s.tokens * this.msPerToken;
    return Math.max(0, end - this.launchMs - this.marginMs - now);
  }
}
