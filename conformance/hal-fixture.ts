/**
 * What a HAL hands the conformance kit: a fixture factory. A vendor's module exports
 *
 *   export default { name: 'acme-gen9', createFixture } satisfies HalConformanceModule;
 *
 * and `createFixture(opts)` brings up one (simulated or real) device and returns the HAL under test, the bus that
 * lists the device, and a teardown. Everything else is optional: each optional part is a capability the kit uses
 * when it is present and reports as "skipped: the HAL offers no …" when it is absent, so a missing capability is
 * visible in the report and never a silent pass.
 *
 * The kit drives the HAL only through the core contracts (core/contracts/hal.ts, firmware.ts, memory.ts,
 * channels.ts, events.ts); these capabilities are the few things a contract cannot show from the host side: the
 * bytes as the device holds them, and the events and failures only the device can cause.
 */
import type { HostEventKind } from '../core/contracts/events.js';
import type { FirmwareImage } from '../core/contracts/firmware.js';
import type { Hal, PciBus, PciDeviceInfo, PhysicalGpu } from '../core/contracts/hal.js';
import type { Logger } from '../core/contracts/logger.js';

export interface HalFixtureOptions {
  /** Where the fixture's own devices log (the kit's logger; quiet unless a check fails). */
  logger: Logger;
  /**
   * A private, empty directory the fixture may use (device files, sockets); the kit deletes it after `teardown`.
   * Never use a default path: other runs of the kit (and other daemons) may be running on the same host.
   */
  workDir: string;
}

/** The device's own view of its framebuffer: not the HAL's host mappings, but the memory the device reads/writes. */
export interface DeviceFbView {
  /** Copy of FB bytes [offset, offset + length) as the device holds them (offset from FB byte 0). */
  readFb(bdf: string, offset: bigint, length: number): Uint8Array | Promise<Uint8Array>;
}

/** Host-side PF events only the device (or the host kernel) can raise: SR-IOV reconfigure, unbind, suspend, resume. */
export interface HostEventInjector {
  /** Raise `e` on the device; the HAL must deliver it to the GPU's `onHostEvent` listeners. For 'sriov-configure'
   *  the device's NumVFs changes to `numVfs` first. */
  raise(bdf: string, e: { kind: HostEventKind; numVfs?: number }): Promise<void>;
}

/** Firmware events only the firmware can raise. */
export interface FirmwareEventInjector {
  /** Make the firmware raise a robust-channel (RC) error for `gfid`; the HAL must deliver it to `onEvent`. */
  raiseRcError(bdf: string, gfid: number): Promise<void>;
}

/**
 * Failures of the firmware's message path. Each applies to the NEXT RM control sent to that GPU's firmware (the
 * kit sends one right after arming the fault). Every member is optional: offer what the device can do.
 */
export interface FirmwareFaultInjector {
  /** The firmware handles the next control but its reply never reaches the host. */
  dropNextReply?(bdf: string): Promise<void>;
  /** The reply to the next control arrives damaged (bad checksum, torn element). */
  corruptNextReply?(bdf: string): Promise<void>;
  /** The firmware dies now (a GSP crash): in-flight and later calls must fail with VGPU_ELOST. */
  crash?(bdf: string): Promise<void>;
}

/** Books the host cannot read through the contracts: what the firmware itself still holds. */
export interface FirmwareInspector {
  /** RM clients the firmware holds right now. */
  rmClients(bdf: string): Promise<number>;
}

export interface HalFixture {
  /** The HAL under test. */
  hal: Hal;
  /** A bus that lists `devices` (the kit only ever uses the devices named here). */
  bus: PciBus;
  /** The device(s) under test, as `bus` lists them; the kit tests the first. */
  devices: PciDeviceInfo[];
  /** The image the kit boots (default `{ version: gpu.config.firmwareFloor }`, what the daemon's probe boots). */
  firmwareImage?: FirmwareImage;
  /**
   * Called after every `open()` of a device by the kit (also inside the lifecycle check), before the boot: a mock
   * installs its scripted firmware answers here. Real and simulated HALs leave it out.
   */
  onOpen?(gpu: PhysicalGpu): void | Promise<void>;
  /**
   * Folder holding the vGPU metadata file (`vgpu-<GSP version>.bin`) with types for the device, for the lifecycle
   * check. Default: the repository's compiled catalogue (`npm run metadata:build`).
   */
  metadataDir?: string;
  /** Optional capabilities (see each interface). */
  deviceView?: DeviceFbView;
  hostEvents?: HostEventInjector;
  firmwareEvents?: FirmwareEventInjector;
  faults?: FirmwareFaultInjector;
  inspect?: FirmwareInspector;
  /** Stop every device the fixture started and free what it holds. Called once, also after a failed check. */
  teardown(): Promise<void>;
}

/** What a HAL module exports (default export) for `npm run conformance -- --hal <module>`. */
export interface HalConformanceModule {
  /** Shown in the report, e.g. "ada-lovelace (simulated RTX 6000 Ada)". */
  name: string;
  createFixture(opts: HalFixtureOptions): Promise<HalFixture>;
}
