import { TemplateError } from './errors.ts';

/** A template cut into text and action tokens, with `{{-` / `-}}` whitespace trimming already applied. */
export type Piece = { kind: 'text'; text: string } | { kind: 'action'; tokens: Token[]; line: number };

export type Token =
  | { t: 'string' | 'number' | 'ident' | 'field' | 'var' | 'op'; v: string; spaced: boolean }
  | { t: 'comment'; v: string; spaced: boolean };

const SPACE = /[ \t\r\n]/;

export function lex(src: string): Piece[] {
  const pieces: Piece[] = [];
  let pos = 0;
  let trimNext = false;
  while (pos < src.length) {
    const open = src.indexOf('{{', pos);
    let text = src.slice(pos, open < 0 ? src.length : open);
    if (trimNext) text = text.replace(/^[ \t\r\n]+/, '');
    trimNext = false;
    if (open < 0) {
      if (text) pieces.push({ kind: 'text', text });
      break;
    }
    let start = open + 2;
    if (src[start] === '-' && SPACE.test(src[start + 1] ?? '')) {
      text = text.replace(/[ \t\r\n]+$/, '');
      start += 2;
    }
    if (text) pieces.push({ kind: 'text', text });
    const line = lineOf(src, open);
    const { tokens, end, trimRight } = lexAction(src, start, line);
    pieces.push({ kind: 'action', tokens, line });
    trimNext = trimRight;
    pos = end;
  }
  return pieces;
}

function lineOf(src: string, index: number): number {
  let line = 1;
  for (let i = 0; i < index; i++) if (src[i] === '\n') line++;
  return line;
}

function lexAction(src: string, pos: number, line: number): { tokens: Token[]; end: number; trimRight: boolean } {
  const tokens: Token[] = [];
  let spaced = true;
  const fail = (msg: string): never => {
    throw new TemplateError(line, msg);
  };
  while (true) {
    if (pos >= src.length) fail('unclosed action');
    const c = src[pos]!;
    if (SPACE.test(c)) {
      if (src.startsWith('-}}', pos + 1)) return { tokens, end: pos + 4, trimRight: true };
      pos++;
      spaced = true;
      continue;
    }
    if (src.startsWith('}}', pos)) return { tokens, end: pos + 2, trimRight: false };
    const push = (t: Token['t'], v: string, len: number) => {
      tokens.push({ t, v, spaced } as Token);
      pos += len;
      spaced = false;
    };
    if (src.startsWith('/*', pos)) {
      const close = src.indexOf('*/', pos + 2);
      if (close < 0) fail('unclosed comment');
      push('comment', src.slice(pos + 2, close), close + 2 - pos);
    } else if (c === '"') {
      let i = pos + 1;
      while (i < src.length && src[i] !== '"' && src[i] !== '\n') i += src[i] === '\\' ? 2 : 1;
      if (src[i] !== '"') fail('unterminated quoted string');
      let value: string;
      try {
        value = JSON.parse(src.slice(pos, i + 1));
      } catch {
        return fail(`bad string ${src.slice(pos, i + 1)}`);
      }
      push('string', value, i + 1 - pos);
    } else if (c === '`') {
      const close = src.indexOf('`', pos + 1);
      if (close < 0) fail('unterminated raw string');
      push('string', src.slice(pos + 1, close), close + 1 - pos);
    } else if (/[0-9]/.test(c) || (c === '-' && /[0-9]/.test(src[pos + 1] ?? ''))) {
      const m = /^-?[0-9]+(\.[0-9]+)?/.exec(src.slice(pos))!;
      push('number', m[0], m[0].length);
    } else if (src.startsWith(':=', pos)) push('op', ':=', 2);
    else if ('=|(),'.includes(c)) push('op', c, 1);
    else if (c === '$') {
      const m = /^\$[A-Za-z0-9_]*((\.[A-Za-z_][A-Za-z0-9_]*)*)/.exec(src.slice(pos))!;
      push('var', m[0], m[0].length);
    } else if (c === '.') {
      const m = /^(\.[A-Za-z_][A-Za-z0-9_]*)+/.exec(src.slice(pos));
      push('field', m ? m[0] : '.', m ? m[0].length : 1);
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(pos))!;
      push('ident', m[0], m[0].length);
    } else fail(`unexpected "${c}" in action`);
  }
}
