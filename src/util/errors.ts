/**
 * An error the user can fix: printed as one line (no stack trace unless --debug).
 * The message names the file, field or value and what was expected.
 */
export class UserError extends Error {
  override readonly name = 'UserError';

  constructor(
    message: string,
    /** The request field at fault (`logit_bias`, `max_tokens`), for an HTTP error's `param`. */
    readonly field: string | null = null,
    /** A stable machine-readable code, e.g. `context_length_exceeded`. */
    readonly code: string | null = null,
  ) {
    super(message);
  }
}

/** Formats any thrown value for the CLI: user errors as their message, others too, stacks only when asked. */
export function formatError(err: unknown, debug: boolean): string {
  if (debug && err instanceof Error && err.stack) return err.stack;
  if (err instanceof Error) return `error: ${err.message}`;
  return `error: ${String(err)}`;
}
