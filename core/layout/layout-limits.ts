/**
 * What one layout may contain, and a scan of YAML text that enforces it BEFORE the YAML is parsed.
 *
 * Why before: the YAML library costs far more per key than a character scan (a 20,000-key map took 3.3 s to parse,
 * and its duplicate-key check is quadratic in a map's size), so an oversized layout must be refused by something
 * linear and cheap. The scan does not understand YAML; it counts what can only over-count: every `:` that ends a
 * key (followed by a space, a tab or the end of a line, outside quotes and comments) is a possible mapping key,
 * every `- ` at the start of a line and every `,` in a flow collection a possible list item, every `[`/`{` a level
 * of flow nesting. A layout within these bounds is then parsed and checked exactly (checkValueBounds).
 *
 * The limits sit far above real files: NVIDIA's published example layout file (vgpu-device-manager
 * examples/config-example.yaml, ~53 KB) has about 280 configs, 1,400 keys and 340 list items.
 */
import type { ValueLimits } from '../validation/bounded-value.js';
import { tooLarge } from '../validation/bounded-value.js';

export const LAYOUT_LIMITS = {
  /** Characters of layout text (the API's body limit is 1 MiB too). */
  maxTextLength: 1024 * 1024,
  /** Lines of layout text. */
  maxLines: 65_536,
  /** Configs in one file. */
  maxConfigs: 1024,
  /** Entries of one config (NVIDIA's `default` config has 56). */
  maxEntriesPerConfig: 256,
  /** vGPU types in one entry's `vgpu-devices`. */
  maxTypesPerEntry: 64,
  /** PCI ids in one `device-filter`, GPU indices or addresses in one `devices` list. */
  maxSelectors: 256,
  /** Flow nesting (`[`/`{`) the text scan accepts. */
  maxFlowDepth: 8,
  value: {
    maxKeys: 8192,
    maxKeysPerObject: 1024,
    maxArrayLength: 1024,
    // version/vgpu-configs → config → entry list → entry → vgpu-devices / devices → value
    maxDepth: 6,
    maxStringLength: 256,
  } satisfies ValueLimits,
} as const;

const HINT = 'split the layout file or remove what this host does not need; docs/operations.md lists the layout limits';

/** Throw VGPU_E2BIG when YAML text certainly exceeds a layout limit; linear in the text, no allocation per key. */
export function scanLayoutText(text: string): void {
  const L = LAYOUT_LIMITS;
  if (text.length > L.maxTextLength) {
    throw tooLarge(`the layout has ${text.length} characters`, `${L.maxTextLength} characters (1 MiB)`, HINT);
  }
  let keys = 0;
  let items = 0;
  let lines = 1;
  let flow = 0;
  let lineStart = true; // only indentation seen so far on this line
  let quote = 0; // 0, or the char code of the open quote
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (quote !== 0) {
      if (c === 0x5c /* \ */ && quote === 0x22) { i++; continue; }
      if (c === quote) {
        if (quote === 0x27 && text.charCodeAt(i + 1) === 0x27) { i++; continue; } // '' inside '…'
        quote = 0;
      } else if (c === 0x0a) {
        lines++;
      }
      continue;
    }
    switch (c) {
      case 0x0a: // \n
        lines++;
        lineStart = true;
        continue;
      case 0x20: case 0x09: case 0x0d:
        continue;
      case 0x23: { // # starts a comment at the line start or after white space
        const prev = i === 0 ? 0x0a : text.charCodeAt(i - 1);
        if (prev === 0x20 || prev === 0x09 || prev === 0x0a) {
          while (i + 1 < n && text.charCodeAt(i + 1) !== 0x0a) i++;
        }
        break;
      }
      case 0x22: case 0x27: { // " or ' opens a quoted scalar only where a scalar can start
        const prev = i === 0 ? 0x20 : text.charCodeAt(i - 1);
        if (prev === 0x20 || prev === 0x09 || prev === 0x0a || prev === 0x5b || prev === 0x7b || prev === 0x2c || prev === 0x3a) quote = c;
        break;
      }
      case 0x3a: { // : followed by white space or the end ends a key
        const next = i + 1 < n ? text.charCodeAt(i + 1) : 0x0a;
        if (next === 0x20 || next === 0x09 || next === 0x0a || next === 0x0d || (flow > 0 && (next === 0x2c || next === 0x7d))) keys++;
        break;
      }
      case 0x2d: { // - followed by white space at the start of a line is a list item
        const next = i + 1 < n ? text.charCodeAt(i + 1) : 0x0a;
        if (lineStart && (next === 0x20 || next === 0x09 || next === 0x0a)) items++;
        break;
      }
      case 0x5b: case 0x7b: // [ {
        flow++;
        items++;
        if (flow > L.maxFlowDepth) throw tooLarge(`the layout nests flow collections deeper than ${L.maxFlowDepth} levels (line ${lines})`, `${L.maxFlowDepth} levels`, HINT);
        break;
      case 0x5d: case 0x7d: // ] }
        if (flow > 0) flow--;
        break;
      case 0x2c: // , separates flow items
        if (flow > 0) items++;
        break;
      default:
        break;
    }
    lineStart = false;
    if (keys > L.value.maxKeys) throw tooLarge(`the layout has more than ${L.value.maxKeys} keys (at line ${lines})`, `${L.value.maxKeys} keys`, HINT);
    if (items > L.value.maxKeys) throw tooLarge(`the layout has more than ${L.value.maxKeys} list items (at line ${lines})`, `${L.value.maxKeys} list items`, HINT);
    if (lines > L.maxLines) throw tooLarge(`the layout has more than ${L.maxLines} lines`, `${L.maxLines} lines`, HINT);
  }
}
