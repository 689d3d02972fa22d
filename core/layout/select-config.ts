/**
 * Picking one config of a layout file (`-c NAME`), as NVIDIA's GetSelectedVGPUConfig does: a file with one config
 * needs no name, a file with several needs one, and a name the file does not have is refused (404 over HTTP).
 *
 * Names are looked up as the file's OWN keys only: `-c constructor` or `-c __proto__` once reached
 * Object.prototype and failed deep inside with "entries is not iterable".
 */
import { ErrorCode, VgpuError } from '../contracts/exceptions.js';
import type { LayoutEntry, LayoutFile } from './layout-file.js';

export interface SelectedConfig {
  name: string;
  entries: LayoutEntry[];
}

/** The entries of config `name`; without a name the file must hold exactly one config. */
export function selectLayoutConfig(file: LayoutFile, name?: string): SelectedConfig {
  const configs = file['vgpu-configs'];
  const names = Object.keys(configs);
  const listed = names.length > 20 ? `${names.slice(0, 20).join(', ')}, … (${names.length} in all)` : names.join(', ');
  if (name === undefined) {
    if (names.length !== 1) {
      throw new VgpuError(ErrorCode.InvalidArgument, `the layout holds ${names.length} configs; say which one to use`, {
        hint: `pass -c NAME, one of: ${listed}`, details: { configs: names.slice(0, 100) },
      });
    }
    name = names[0]!;
  }
  if (!Object.hasOwn(configs, name)) {
    throw new VgpuError(ErrorCode.NotFound, `the layout has no config named '${name.slice(0, 100)}'`, {
      hint: `use one of: ${listed}`, details: { config: name.slice(0, 100), configs: names.slice(0, 100) },
    });
  }
  return { name, entries: configs[name]! };
}
