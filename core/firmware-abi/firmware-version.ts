/**
 * GSP build versions ("570.144", "535.113.01") compared numerically part by part; a missing part counts as 0, so
 * "570.144" == "570.144.0" and "570.144.1" > "570.144". A non-numeric version sorts below every real one, so a
 * garbled version string can never pass a floor check.
 */
export function compareVersions(a: string, b: string): number {
  const pa = parse(a);
  const pb = parse(b);
  if (pa === null || pb === null) return pa === pb ? 0 : pa === null ? -1 : 1;
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}

function parse(v: string): number[] | null {
  if (!/^\d+(\.\d+)*$/.test(v.trim())) return null;
  return v.trim().split('.').map(Number);
}
