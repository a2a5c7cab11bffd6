/**
 * Keeps constrained output valid UTF-8. xgrammar matches bytes and lets through sequences that are well shaped but
 * invalid (overlong forms, surrogates, code points past U+10FFFF, stray lead bytes), which a decoder turns into
 * U+FFFD, so a string bounded by maxLength could come out longer than the bound. The guard tracks, per sequence, the
 * character still open at the end of the output and narrows each mask to the tokens that continue it validly.
 */

/** A decoder state: continuation bytes still needed (0-3) and the range allowed for the next one. */
export interface Utf8State {
  need: number;
  lo: number;
  hi: number;
}

export const UTF8_START: Utf8State = { need: 0, lo: 0x80, hi: 0xbf };

/** The state after `bytes`, or null when they are not valid UTF-8 from `state` (an open character at the end is). */
export function utf8Step(state: Utf8State, bytes: Uint8Array): Utf8State | null {
  let { need, lo, hi } = state;
  for (const b of bytes) {
    if (need > 0) {
      if (b < lo || b > hi) return null;
      need--;
      lo = 0x80;
      hi = 0xbf;
    } else if (b < 0x80) continue;
    else if (b >= 0xc2 && b <= 0xdf) need = 1;
    else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      if (b === 0xe0) lo = 0xa0; // overlong
      if (b === 0xed) hi = 0x9f; // surrogates
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      if (b === 0xf0) lo = 0x90; // overlong
      if (b === 0xf4) hi = 0x8f; // past U+10FFFF
    } else return null;
  }
  return { need, lo, hi };
}

/** The per-vocabulary tables: which tokens may follow a complete character, which may continue an open one. */
export class Utf8Guard {
  /** Bit set: the token is valid after a complete character. */
  readonly afterComplete: Int32Array;
  /** Tokens that begin with a continuation byte (the only candidates while a character is open). */
  private readonly continuations: number[] = [];

  constructor(
    private readonly bytes: readonly Uint8Array[],
    words: number,
  ) {
    this.afterComplete = new Int32Array(words);
    bytes.forEach((b, id) => {
      if (id >= words * 32) return;
      if (utf8Step(UTF8_START, b)) this.afterComplete[id >> 5]! |= 1 << (id & 31);
      if (b.length > 0 && b[0]! >= 0x80 && b[0]! <= 0xbf) this.continuations.push(id);
    });
  }

  /** The state after one more token. */
  next(state: Utf8State, token: number): Utf8State {
    const b = this.bytes[token];
    return (b && utf8Step(state, b)) ?? UTF8_START;
  }

  /** Narrows `mask` (in place) to the tokens valid in `state`; leaves it alone if that would allow nothing. */
  narrow(mask: Int32Array, state: Utf8State): void {
    const allowed = new Int32Array(mask.length);
    let any = false;
    if (state.need === 0) {
      for (let w = 0; w < mask.length; w++) {
        allowed[w] = mask[w]! & this.afterComplete[w]!;
        any ||= allowed[w] !== 0;
      }
    } else any = this.continuing(mask, state, allowed);
    if (any) mask.set(allowed);
  }

  /** Sets in `allowed` the tokens of `mask` that continue the open character validly; true if any. */
  private continuing(mask: Int32Array, state: Utf8State, allowed: Int32Array): boolean {
    let any = false;
    for (const id of this.continuations) {
      if (!((mask[id >> 5]! >>> (id & 31)) & 1) || !utf8Step(state, this.bytes[id]!)) continue;
      allowed[id >> 5]! |= 1 << (id & 31);
      any = true;
    }
    return any;
  }
}
