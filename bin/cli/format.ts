/** Human output of vgpuctl: aligned tables and byte sizes. */

export function table(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n');
}

/** "24.0 GiB" from a decimal byte string (the API's bigint encoding) or a number. */
export function bytes(v: string | number | bigint): string {
  const n = Number(v);
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let x = n;
  let u = 0;
  while (x >= 1024 && u < units.length - 1) { x /= 1024; u++; }
  return u === 0 ? `${n} B` : `${x.toFixed(x >= 100 ? 0 : 1)} ${units[u]}`;
}

/** A GPU as the API sends it; `fb` is absent where the kernel driver accounts the FB (sysfs backend). */
export interface GpuRow {
  bdf: string; name: string; state: string; reason?: string; policy: string; vgpus: number; backend?: string;
  fb?: { total: string; used: string; free: string; stranded: string };
}

export function gpuTable(gpus: GpuRow[]): string {
  const fb = (g: GpuRow, k: 'used' | 'free' | 'total'): string => (g.fb === undefined ? '-' : bytes(g.fb[k]));
  return table(['GPU', 'NAME', 'STATE', 'POLICY', 'BACKEND', 'VGPUS', 'FB USED', 'FB FREE', 'FB TOTAL'],
    gpus.map((g) => [g.bdf, g.name, g.state, g.policy, g.backend ?? '-', g.vgpus, fb(g, 'used'), fb(g, 'free'), fb(g, 'total')]));
}
