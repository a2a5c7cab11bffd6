/** A template that cannot be parsed or executed; the message names the template line. */
export class TemplateError extends Error {
  constructor(
    readonly line: number,
    readonly detail: string,
  ) {
    super(`template:${line}: ${detail}`);
  }
}
