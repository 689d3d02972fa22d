/**
 * Node Feature Discovery's local feature file for this node (kubernetes-sigs/node-feature-discovery
 * source/local/local.go; docs/reference/kubelet-device-plugin.md): one `name=value` per line, `#` lines are
 * comments, a name with a domain prefix becomes a label of that name. What vgpud publishes:
 *
 *   nvidia.com/vgpu.present=true|false
 *   nvidia.com/vgpu.gpu.count=<managed GPUs>
 *   nvidia.com/vgpu.product=<board, label-safe>         when every GPU is the same board
 *   nvidia.com/vgpu.product.<board>=true                  one per distinct board
 *   nvidia.com/vgpu.type.<type, as in resource names>=true   one per type some GPU can create now
 *
 * Label values (and the name part after "/") are at most 63 characters of [A-Za-z0-9._-], alphanumeric at both ends
 * (k8s.io/apimachinery validation IsValidLabelValue); board names are made so.
 */
import type { VgpuService } from '../../core/contracts/vgpu-service.js';

/** A string as a label value / name segment: runs of other characters as "-", trimmed to 63, alphanumeric ends. */
export function labelSafe(s: string): string {
  const t = s.replace(/[^A-Za-z0-9._-]+/g, '-').slice(0, 63).replace(/^[^A-Za-z0-9]+/, '').replace(/[^A-Za-z0-9]+$/, '');
  return t;
}

export function nfdFeatureLines(service: VgpuService): string[] {
  const gpus = service.gpus();
  const lines = ['# Written by vgpud: the vGPU features of this node (rewritten when they change).'];
  lines.push(`nvidia.com/vgpu.present=${gpus.length > 0 ? 'true' : 'false'}`);
  if (gpus.length === 0) return lines;
  lines.push(`nvidia.com/vgpu.gpu.count=${gpus.length}`);
  const boards = [...new Set(gpus.map((g) => labelSafe(g.name)).filter((b) => b !== ''))].sort();
  if (boards.length === 1) lines.push(`nvidia.com/vgpu.product=${boards[0]}`);
  // The name part after "/" may be 63 characters: "vgpu.product." leaves 50 for the board.
  for (const b of boards) lines.push(`nvidia.com/vgpu.product.${labelSafe(b.slice(0, 50))}=true`);
  const creatable = new Set<string>();
  for (const g of gpus) {
    if (g.state !== 'ready') continue;
    let types;
    try {
      types = service.types(g.bdf);
    } catch {
      continue; // a GPU going away between the two calls
    }
    for (const t of types) if (t.available > 0) creatable.add(labelSafe(t.name.trim().replace(/\s+/g, '_').slice(0, 53)));
  }
  for (const t of [...creatable].sort()) lines.push(`nvidia.com/vgpu.type.${t}=true`);
  return lines;
}
