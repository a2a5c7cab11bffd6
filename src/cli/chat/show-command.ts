import { describeModel, SHOW_PARTS, type ShowPart } from '../model-description.ts';

export const SHOW_HELP = `Available /show commands:
  /show info         the model's details
  /show modelfile    its Modelfile
  /show parameters   its parameters
  /show system       its system message
  /show template     its prompt template
  /show license      its license`;

/** Answers `/show ...` (the text after "/show") with what `pagoda show` prints for `model`. */
export function applyShow(args: string, model: string): string {
  const what = args.trim();
  if (!what) return SHOW_HELP;
  if (what !== 'info' && !SHOW_PARTS.includes(what as ShowPart)) {
    return `Unknown command '/show ${what}'. Type /show for help`;
  }
  try {
    const text = describeModel(model, what === 'info' ? undefined : (what as ShowPart));
    return text.trimEnd() || `No ${what} was specified for this model.`;
  } catch (err) {
    return `Couldn't show ${what}: ${(err as Error).message}`;
  }
}
