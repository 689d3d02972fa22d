/**
 * Parse a VF's `creatable_vgpu_types` (docs/reference/nvidia-sysfs-host.md): lines "ID : Name" — the upstream RFC
 * prints `%-5d : %s`, NVIDIA's driver lines look like `1414 : NVIDIA H200X-1-18C` — after an optional header
 * ("ID    : vGPU Name"). A line that does not start with a decimal id (the header, a blank line, anything a future
 * driver adds) is skipped, as NVIDIA's own vgpu-device-manager does (PR #195 pkg/vgpu/vfio/types.go), so a header
 * change never makes vgpud invent a type. Ids must fit a u32 (the kernel's type ids are u32).
 */
export interface CreatableType {
  id: number;
  name: string;
}

export function parseCreatableTypes(text: string): CreatableType[] {
  const out: CreatableType[] = [];
  const seen = new Set<number>();
  for (const raw of text.split('\n')) {
    const m = /^\s*(\d{1,10})\s*:\s*(\S.*?)\s*$/.exec(raw);
    if (m === null) continue;
    const id = Number(m[1]);
    if (id === 0 || id > 0xffff_ffff || seen.has(id)) continue;
    seen.add(id);
    out.push({ id, name: m[2]! });
  }
  return out;
}

/** True when the text carries the header line the upstream driver prints before a full list. */
export function hasCreatableHeader(text: string): boolean {
  return /^\s*ID\s*:\s*vGPU Name\s*$/m.test(text);
}
