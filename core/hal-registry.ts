/**
 * Chooses the HAL for a PCI device among every HAL the plugins bound (TOKENS.Hal is a multi-binding), and lists
 * the devices of every bound PCI bus. This is the core driver's "is this device on my supported list" check
 * (docs/reference/core-driver-interface.md duty 6) made data-driven: the core knows no chip, only HALs that claim ids.
 *
 * Resolve it only after the plugins are loaded (start hooks or later): it is a singleton, and the HAL list is
 * captured when it is first built.
 */
import { inject, injectable, multiInject, optional } from 'inversify';
import { ErrorCode, VgpuError } from './contracts/exceptions.js';
import type { Hal, PciBus, PciDeviceInfo, PciId } from './contracts/hal.js';
import type { Logger } from './contracts/logger.js';
import { TOKENS } from './tokens.js';

export interface HalRegistry {
  /** Every bound HAL, in binding order. */
  hals(): readonly Hal[];
  /** The first HAL whose `supports(dev)` is true; throws VGPU_ENODEV listing what the bound HALs claim. */
  forDevice(device: PciDeviceInfo): Hal;
  /** The HAL with this id (a `gpus[].hal` override); throws VGPU_ENODEV naming the bound ids. */
  byId(id: string): Hal;
  /** Every device of every bound PCI bus; a bus that fails to list is logged and skipped. */
  devices(): Promise<PciDeviceInfo[]>;
  /** The BDFs the buses were configured to find (PciBus.expected), lower-case, without duplicates. */
  expectedDevices(): string[];
}

const hex4 = (n: number): string => n.toString(16).padStart(4, '0');
const pciId = (id: PciId): string => `${hex4(id.vendorId)}:${hex4(id.deviceId)}`;

@injectable()
export class HalRegistryImpl implements HalRegistry {
  private readonly halList: readonly Hal[];
  private readonly buses: readonly PciBus[];

  constructor(
    @multiInject(TOKENS.Hal) @optional() hals: Hal[] | undefined,
    @multiInject(TOKENS.PciBus) @optional() buses: PciBus[] | undefined,
    @inject(TOKENS.Logger) private readonly logger: Logger,
  ) {
    this.halList = hals ?? [];
    this.buses = buses ?? [];
  }

  hals(): readonly Hal[] {
    return this.halList;
  }

  forDevice(device: PciDeviceInfo): Hal {
    const hal = this.halList.find((h) => h.supports(device));
    if (hal !== undefined) return hal;
    const claimed = this.halList.map((h) => `${h.id} [${h.claims.map(pciId).join(', ')}]`);
    throw new VgpuError(ErrorCode.UnsupportedDevice,
      `no HAL drives device ${device.bdf} (${pciId(device)}, transport ${device.transport.kind}); ` +
      `loaded HALs claim: ${claimed.length > 0 ? claimed.join('; ') : 'nothing (no HAL plugin enabled)'}`, {
        hint: 'enable the HAL plugin for this GPU generation, or leave this device out of the config',
        details: { bdf: device.bdf, id: pciId(device), claimed },
      });
  }

  byId(id: string): Hal {
    const hal = this.halList.find((h) => h.id === id);
    if (hal !== undefined) return hal;
    const ids = this.halList.map((h) => h.id);
    throw new VgpuError(ErrorCode.UnsupportedDevice, `no HAL with id '${id}' is loaded (loaded: ${ids.join(', ') || 'none'})`, {
      hint: 'fix gpus[].hal in the config or enable the HAL plugin', details: { id, loaded: ids },
    });
  }

  expectedDevices(): string[] {
    const out = new Set<string>();
    for (const bus of this.buses) for (const bdf of bus.expected?.() ?? []) out.add(bdf.toLowerCase());
    return [...out].sort();
  }

  async devices(): Promise<PciDeviceInfo[]> {
    const seen = new Set<string>();
    const out: PciDeviceInfo[] = [];
    for (const bus of this.buses) {
      let list: PciDeviceInfo[];
      try {
        list = await bus.list();
      } catch (error) {
        // One broken backend (e.g. sysfs unreadable) must not hide the devices of the others.
        this.logger.error('PCI bus failed to list devices', { bus: bus.name, error });
        continue;
      }
      for (const d of list) {
        if (seen.has(d.bdf)) {
          this.logger.warn('device listed by more than one PCI bus; keeping the first', { bdf: d.bdf, bus: bus.name });
          continue;
        }
        seen.add(d.bdf);
        out.push(d);
      }
    }
    return out;
  }
}
