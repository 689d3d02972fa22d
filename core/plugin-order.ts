/**
 * Resolves the start order of plugins from their manifests, before any plugin code runs.
 *
 * Capabilities, not plugin names, are the edges: a plugin that requires "hal" starts after every plugin that
 * provides "hal". The sort is a depth-first post-order over the plugins in the order they were given, so the
 * result keeps the given order wherever the dependencies allow it (stable, reproducible logs).
 */
import { ErrorCode, VgpuError } from './contracts/exceptions.js';
import type { PluginManifest } from './contracts/plugin.js';

/** What the core itself provides; a plugin may require these without any plugin providing them. */
export const CORE_CAPABILITIES: ReadonlySet<string> = new Set([
  'core', 'config', 'logger', 'events', 'exceptions', 'clock', 'hal-registry', 'gpu-registry',
]);

/**
 * Capabilities several plugins may provide at once: every HAL, every PCI bus and every vGPU backend (the router
 * presents them as one service) is collected with @multiInject. Any other capability provided twice is ambiguous
 * (which scrub runs?) and refused.
 */
export const MULTI_CAPABILITIES: ReadonlySet<string> = new Set(['hal', 'pci-bus', 'vgpu-backend']);

/** Thrown inside the sort to unwind to the optional edge at `depth` that closed a loop. */
class Backtrack {
  constructor(readonly depth: number) {}
}

/**
 * Order `plugins` (by manifest) so each starts after the providers of what it requires or optionally uses.
 * `disabled`: known plugins left out of plugins.enabled, so a missing capability's error can name the one to add
 * (a config written before a capability moved to a new plugin then says exactly what to change).
 */
export function resolvePluginOrder<T extends { manifest: PluginManifest }>(plugins: readonly T[], disabled: readonly PluginManifest[] = []): T[] {
  const providers = new Map<string, T[]>();
  for (const p of plugins) {
    for (const cap of new Set(p.manifest.provides)) {
      if (CORE_CAPABILITIES.has(cap)) {
        throw new VgpuError(ErrorCode.Config, `plugin '${p.manifest.name}' provides '${cap}', which the core provides`, {
          hint: 'remove the capability from the plugin manifest; override core services with rebind instead',
          details: { plugin: p.manifest.name, capability: cap },
        });
      }
      const list = providers.get(cap) ?? [];
      list.push(p);
      providers.set(cap, list);
    }
  }
  for (const [cap, list] of providers) {
    if (list.length > 1 && !MULTI_CAPABILITIES.has(cap)) {
      const names = list.map((p) => p.manifest.name);
      throw new VgpuError(ErrorCode.Config, `capability '${cap}' is provided by more than one plugin: ${names.join(', ')}`, {
        hint: `enable only one of ${names.join(', ')} in plugins.enabled`,
        details: { capability: cap, plugins: names },
      });
    }
  }

  // Every missing requirement is found here, before anything is loaded or started.
  for (const p of plugins) {
    for (const cap of p.manifest.requires) {
      if (!CORE_CAPABILITIES.has(cap) && !providers.has(cap)) {
        const candidates = disabled.filter((m) => m.provides.includes(cap)).map((m) => m.name);
        throw new VgpuError(ErrorCode.PluginMissing,
          `plugin '${p.manifest.name}' requires capability '${cap}', which no enabled plugin provides`, {
            hint: candidates.length > 0
              ? `add ${candidates.map((n) => `'${n}'`).join(' or ')} to plugins.enabled (it provides '${cap}'), or disable '${p.manifest.name}'`
              : `enable a plugin that provides '${cap}' (plugins.enabled / plugins.paths) or disable '${p.manifest.name}'`,
            details: { plugin: p.manifest.name, capability: cap, ...(candidates.length > 0 ? { candidates } : {}) },
          });
      }
    }
  }

  const order: T[] = [];
  const done = new Set<T>();
  const stack: T[] = [];
  /** The edge through which stack[i] reached stack[i + 1], for the cycle message and to drop optional edges. */
  const via: { cap: string; optional: boolean }[] = [];

  const visit = (p: T): void => {
    stack.push(p);
    const edges = [
      ...p.manifest.requires.map((cap) => ({ cap, optional: false })),
      ...(p.manifest.optional ?? []).map((cap) => ({ cap, optional: true })),
    ];
    for (const edge of edges) {
      for (const dep of providers.get(edge.cap) ?? []) {
        if (dep === p || done.has(dep)) continue;
        const at = stack.indexOf(dep);
        if (at >= 0) {
          // An optional use only orders startup; it must not make an otherwise valid set unbootable. Drop an
          // optional edge of the loop: this one if it is optional, else the outermost one and resume from there.
          if (edge.optional) continue;
          const opt = via.slice(at).findIndex((e) => e.optional);
          if (opt >= 0) throw new Backtrack(at + opt);
          const path = [...via.slice(at), edge];
          const cycle = [...stack.slice(at), dep].map((x) => x.manifest.name);
          const caps = path.map((e) => e.cap);
          const edgesText = cycle.slice(0, -1).map((n, i) => `${n} requires '${caps[i]}'`).join(', ');
          throw new VgpuError(ErrorCode.PluginCycle, `plugin dependency cycle: ${cycle.join(' → ')}`, {
            hint: `break the cycle (${edgesText}): move the shared service into one plugin or use the event bus`,
            details: { cycle, capabilities: caps },
          });
        }
        const depth = via.length;
        via.push(edge);
        try {
          visit(dep);
        } catch (e) {
          if (!(e instanceof Backtrack) || e.depth !== depth) throw e;
          // Unwind what the dropped optional branch left on the stack; finished plugins stay finished (their
          // requirements were all met).
          stack.length = depth + 1;
        }
        via.length = depth;
      }
    }
    stack.pop();
    done.add(p);
    order.push(p);
  };
  for (const p of plugins) if (!done.has(p)) visit(p);
  return order;
}
