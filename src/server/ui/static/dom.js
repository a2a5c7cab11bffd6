/** Small DOM helpers: the page builds its elements with these, never from HTML strings. */

function fill(el, props, children) {
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key === 'value' || key === 'checked') el[key] = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  el.append(...children.flat(Number.POSITIVE_INFINITY).filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

/**
 * An HTML element: h('button', { class: 'x', onclick }, 'text', otherNode). Strings become text nodes.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, unknown>} [props]
 * @param {...unknown} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export const h = (tag, props = {}, ...children) => fill(document.createElement(tag), props, children);

/**
 * An SVG element, as h().
 * @param {string} tag
 * @param {Record<string, unknown>} [props]
 * @param {...unknown} children
 * @returns {SVGElement}
 */
export const svg = (tag, props = {}, ...children) =>
  fill(document.createElementNS('http://www.w3.org/2000/svg', tag), props, children);

export const $ = (selector, root = document) => root.querySelector(selector);

/** 1536 -> "1.5 KiB". */
export function formatBytes(n) {
  if (!Number.isFinite(n)) return '';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let k = 0;
  while (n >= 1024 && k < units.length - 1) {
    n /= 1024;
    k++;
  }
  return `${k === 0 ? n : n.toFixed(n < 10 ? 1 : 0)} ${units[k]}`;
}

/** Seconds -> "850 ms", "2.5 s". */
export function formatSeconds(s) {
  if (s === null || !Number.isFinite(s)) return '–';
  return s < 1 ? `${Math.round(s * 1000)} ms` : `${s.toFixed(s < 10 ? 2 : 1)} s`;
}
