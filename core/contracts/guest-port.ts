/**
 * GuestPort contract: the guest-visible side of a physical GPU's VFs — what a VMM's guest reaches through a VF's
 * PCI functions (config space, BAR0 registers, BAR1 framebuffer aperture, interrupts, DMA to guest memory). The
 * vfio-user face serves it to VMMs; the HAL provides it, because what a VF looks like is the device's business.
 *
 * A GuestPort is opened by the process that serves VFs to VMMs (the "device front", which outlives the daemon), not
 * by the daemon: so the daemon only hands over a LOCATOR — a module path and JSON options — that the front imports
 * and opens itself (`PhysicalGpu.guestPort`). The locator's options must be JSON-serialisable, except in worker mode
 * where the front runs inside the daemon's process and may receive in-process objects.
 */

/** Where the front finds the HAL's guest side: `(await import(module)).openGuestPort(options)`. */
export interface GuestPortLocator {
  /** Absolute path (or file: URL) of an ES module exporting `openGuestPort(options): GuestPort`. */
  module: string;
  options: Record<string, unknown>;
}

export interface GuestBarSizes {
  bar0: bigint;
  bar1: bigint;
  bar3: bigint;
}

/** How the device reaches guest memory: whoever holds the VMM's DMA map implements it. Errors carry an errno in
 *  `details.errno` (EFAULT for an unmapped IOVA). */
export interface GuestDmaHandler {
  read(iova: bigint, length: number): Promise<Uint8Array>;
  write(iova: bigint, data: Uint8Array): Promise<void>;
}

/** One VF as its guest sees it. */
export interface GuestVf {
  readonly index: number;
  readonly gfid: number;
  /** The VF's config space as the device presents it (4 KiB): the base the VFIO emulation starts from. */
  configSpace(): Uint8Array;
  bars(): GuestBarSizes;
  /**
   * A trapped 32-bit register read/write in BAR `bar` (0 or 3) at a 4-byte aligned offset; `byteMask` says which
   * bytes a narrower write covers (default all four), as PCIe byte enables do.
   */
  read32(bar: number, offset: number): number;
  write32(bar: number, offset: number, value: number, byteMask?: number): void;
  /** The FB slice of the vGPU running on this VF (the firmware's record), or null when none runs. */
  fbSlice(): { offset: bigint; size: bigint } | null;
  /**
   * Where FB byte 0 of the physical GPU lives, for handing a descriptor to a VMM: a file path and the file offset of
   * FB byte 0. Null when the FB is not in a file (worker mode: BAR1 is then trapped only).
   */
  fbFile(): { path: string; offset: bigint } | null;
  /** Read/write FB bytes [offset, offset+len) of the slice (trapped BAR1 accesses). */
  fbRead(offset: bigint, length: number): Uint8Array;
  fbWrite(offset: bigint, data: Uint8Array): void;
  /** Vector numbers (MSI-X) the device raised since the last call and that the guest's enables let through. */
  takeInterrupts(): number[];
  /** Whether the VF may master the bus (config Bus Master Enable): without it the device's DMA fails. */
  setBusMaster(on: boolean): void;
  /**
   * Serve the device's DMA through `handler` (the VMM's DMA map), or stop serving with null (no VMM attached:
   * the device's DMA then fails at once).
   */
  serveDma(handler: GuestDmaHandler | null): void;
  /** A function-level reset of the VF's guest side (registers back to power-on, the firmware forgets the guest). */
  reset(): void;
}

export interface GuestPort {
  readonly gpu: string;
  readonly numVfs: number;
  vf(index: number): GuestVf;
  /**
   * Call `cb(vfIndex)` whenever the device has something for a VF (an interrupt, a DMA request). One wait per
   * physical GPU, woken by the device (no polling). Returns a function that stops it.
   */
  watch(cb: (vfIndex: number) => void): () => void;
  /** Serve pending DMA requests of a VF (call after watch() reported it). */
  pumpDma(vfIndex: number): Promise<void>;
  close(): void;
}

export interface GuestPortModule {
  openGuestPort(options: Record<string, unknown>): GuestPort;
}
