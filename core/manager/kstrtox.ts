/**
 * The kernel's unsigned string parser as sysfs stores use it: `kstrtoull(s, base, &res)` (Linux lib/kstrtox.c;
 * docs/reference/sysfs-abi.md). Every sysfs attribute vgpud serves or writes parses its input this way, so a write
 * is accepted or refused exactly as the kernel would:
 *
 * 1. sysfs hands the store a NUL-terminated copy of the write, so the text ends at its first NUL;
 * 2. one leading '+' is skipped (a '-' is not accepted by the unsigned parsers);
 * 3. base 0 picks the radix from the text (`_parse_integer_fixup_radix`): "0x" followed by a hex digit is hex,
 *    another leading "0" octal, else decimal; base 10 looks for no prefix ("0x10" stops at the 'x');
 * 4. digits are consumed while valid for the radix; overflow past 2^64−1 is remembered;
 * 5. overflow → ERANGE (checked before the rest of the string); no digit → EINVAL;
 * 6. one optional '\n', then the string must end; anything else → EINVAL.
 * The narrower `kstrtou16` etc. parse the same way and answer ERANGE for a value above their type's maximum.
 */
export type KstrtoxResult = { ok: true; value: bigint } | { ok: false; errno: 'ERANGE' | 'EINVAL' };

const ULLONG_MAX = 0xffff_ffff_ffff_ffffn;

function digitOf(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  if (l >= 0x61 && l <= 0x66) return l - 0x61 + 10;
  return 99;
}

export function kstrtoull(text: string, base: 0 | 8 | 10 | 16): KstrtoxResult {
  const nul = text.indexOf('\0');
  const s = nul < 0 ? text : text.slice(0, nul);
  let i = s.startsWith('+') ? 1 : 0;
  let radix: number = base;
  const zeroX = s[i] === '0' && (s[i + 1] === 'x' || s[i + 1] === 'X');
  if (base === 0) radix = s[i] !== '0' ? 10 : zeroX && digitOf(s.charCodeAt(i + 2)) < 16 ? 16 : 8;
  if (radix === 16 && zeroX) i += 2;
  const start = i;
  let value = 0n;
  let overflow = false;
  for (; i < s.length; i++) {
    const d = digitOf(s.charCodeAt(i));
    if (d >= radix) break;
    value = value * BigInt(radix) + BigInt(d);
    if (value > ULLONG_MAX) overflow = true;
  }
  if (overflow) return { ok: false, errno: 'ERANGE' };
  if (i === start) return { ok: false, errno: 'EINVAL' };
  if (s[i] === '\n') i++;
  if (i !== s.length) return { ok: false, errno: 'EINVAL' };
  return { ok: true, value };
}
