/**
 * The HAL of an NVIDIA GPU with GSP-RM, for any generation: it claims the boards of the board table it is given
 * (hal/ada-lovelace/chips.ts, hal/hopper/chips.ts) and opens them. Each generation's HAL is this class with its table
 * (AdaHal, HopperHal). Today the only transport is the simulator ('gsp-sim': a device region in a file or a
 * SharedArrayBuffer); a real card behind sysfs/VFIO would be another transport, with the same board table.
 *
 * open(): probe (transport, id) → claim (chip table) → map the device region → check the device header and the
 * NV_PMC_BOOT_0 identification against the claimed chip → hardware configuration → Firmware/Memory/Channels.
 * It does not boot GSP-RM (the caller does, so the boot is logged as its own step) — except that a GSP-RM found
 * already running (daemon restart) is attached to, not rebooted.
 */
import { fileURLToPath } from 'node:url';
import type { GuestPortLocator } from '../../core/contracts/guest-port.js';
import type { GpuOpenOptions, Hal, HardwareConfig, PciDeviceInfo, PciId, PhysicalGpu } from '../../core/contracts/hal.js';
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import { FramebufferMemoryImpl, type FbBackingStore } from '../../core/alloc/framebuffer-memory.js';
import type { SharedArena } from '../../native/native-ops.js';
import { loadNativeOps } from '../../native/index.js';
import type { BoardTable } from '../sim/board/board-table.js';
import { NVIDIA_VENDOR_ID, decodeBoot0, engineBitmap, type SimBoard } from '../sim/board/sim-board.js';
import { GspCopyChannelPool } from './gsp-copy-channel.js';
import { GspFirmwareClient } from './gsp-firmware-client.js';
import { GspPhysicalGpu } from './gsp-physical-gpu.js';
import { Bar0, DeviceState, LAYOUT_MAGIC, LAYOUT_VERSION, Region } from '../sim/device/device-layout.js';
import { readHeader } from '../sim/device/device-region.js';
import { readIdentity, readSriov } from '../sim/device/pci-config.js';
import { setNumVfs } from '../sim/device/sriov-configure.js';
import { readIrqAddress } from '../sim/device/irq-protocol.js';
import { IrqLink } from './irq-link.js';
import { SIM_TRANSPORT, type SimTransport } from '../sim/device/sim-pci-bus.js';

export class GspHal implements Hal {
  readonly claims: readonly PciId[];

  /** `id`: the HAL's id (also the PhysicalGpu's halId), e.g. 'ada-lovelace'; the generation comes from the table. */
  constructor(readonly id: string, private readonly table: BoardTable) {
    this.claims = table.boards.map((b) => ({ vendorId: b.vendorId, deviceId: b.deviceId }));
  }

  get generation(): string {
    return this.table.generation;
  }

  supports(device: PciDeviceInfo): boolean {
    return device.vendorId === NVIDIA_VENDOR_ID && this.table.byDeviceId(device.deviceId) !== undefined &&
      device.transport.kind === SIM_TRANSPORT;
  }

  async open(device: PciDeviceInfo, opts: GpuOpenOptions): Promise<PhysicalGpu> {
    const log = opts.logger.child({ gpu: device.bdf });
    log.info('probe', { vendorId: hex(device.vendorId), deviceId: hex(device.deviceId), transport: device.transport.kind });
    const board = this.table.byDeviceId(device.deviceId);
    const gen = this.table.generation;
    if (device.vendorId !== NVIDIA_VENDOR_ID || board === undefined) {
      throw new VgpuError(ErrorCode.UnsupportedDevice,
        `${device.bdf} (${hex(device.vendorId)}:${hex(device.deviceId)}) is not a ${gen} board with vGPU support`, {
          hint: `the ${gen} HAL drives: ${this.table.describe()}`,
          details: { bdf: device.bdf, vendorId: device.vendorId, deviceId: device.deviceId, supported: this.table.boards.map((b) => b.key) },
        });
    }
    if (device.transport.kind !== SIM_TRANSPORT) {
      throw new VgpuError(ErrorCode.UnsupportedDevice, `${device.bdf}: transport "${device.transport.kind}" is not one the ${gen} HAL speaks`, {
        hint: "list the device through the simulator's PCI bus (transport 'gsp-sim')",
      });
    }
    log.info('claim', { board: board.key, name: board.name, chip: board.chip });
    const arena = mapRegion(device.transport as SimTransport);
    let link: IrqLink | undefined;
    let gpu: GspPhysicalGpu | undefined;
    try {
      const header = checkRegion(arena, device, board);
      // The device's interrupt link first: a device that does not answer on it is not running, whatever its header
      // says (a simulator killed with -9 leaves "running" behind).
      link = await connectLink(arena, device.bdf);
      const config = hardwareConfig(arena, board, header.fbBytes, gen);
      log.info('hardware configuration', {
        fbBytes: String(config.fbBytes), totalVfs: config.totalVfs, engines: config.engines.length, chids: config.channelCount,
        boot0: hex(arena.load32(BigInt(Region.BAR0 + Bar0.PMC_BOOT_0))), simulatedFbOfBoard: String(header.boardFbBytes),
      });
      const firmware = new GspFirmwareClient({
        arena, board, bdf: device.bdf, fbBytes: header.fbBytes, logger: log.child({ component: 'gsp' }),
        ...(opts.rpcTimeoutMs !== undefined ? { rpcTimeoutMs: opts.rpcTimeoutMs } : {}),
      });
      const store: FbBackingStore = {
        window: (offset, length) => arena.window(BigInt(Region.FB) + offset, length),
        fill: (offset, length, pattern) => arena.fill(BigInt(Region.FB) + offset, length, pattern),
        verify: async (offset, length, pattern) => {
          const at = await arena.verify(BigInt(Region.FB) + offset, length, pattern);
          return at === null ? null : at - BigInt(Region.FB);
        },
        // The arena's page hash skips holes (SEEK_DATA) and runs on its threads: migration's dirty scans keep the
        // simulated FB sparse and the loop free.
        hashPages: (offset, length, pageSize) => arena.hashPages(BigInt(Region.FB) + offset, length, pageSize),
        // The region file's holes are pages nothing wrote since the scrub released them (SEEK_DATA; no page is
        // read): what lets a migration send only the written part of a fresh vGPU's FB.
        ...(arena.dataExtents !== undefined ? {
          dataExtents: (offset: bigint, length: bigint) => arena.dataExtents!(BigInt(Region.FB) + offset, length).map((x) => x - BigInt(Region.FB)),
        } : {}),
        // Backing without writing (fallocate): a migration's destination pre-faults its slice as real VRAM needs no
        // first-touch allocation; the holes' record above stays exact (docs/reference/precopy-convergence.md).
        ...(arena.reserve !== undefined ? {
          reserve: (offset: bigint, length: bigint, keepFreeBytes?: bigint) => arena.reserve!(BigInt(Region.FB) + offset, length, keepFreeBytes),
        } : {}),
        ...(arena.populate !== undefined ? {
          populate: (offset: bigint, length: bigint) => arena.populate!(BigInt(Region.FB) + offset, length),
        } : {}),
        // The simulated plugin task wakes the words it answers in (plugin-task-runtime.ts `publish32`): the host's
        // mailbox waits sleep on them instead of polling on a timer.
        waitWord32: async (offset, expected, timeoutMs) => { await arena.wait32(BigInt(Region.FB) + offset, expected, timeoutMs); },
      };
      const memory = new FramebufferMemoryImpl({ totalBytes: header.fbBytes, name: `framebuffer of ${device.bdf}`, store });
      // Copy-engine channels run host-side over the shared FB (gsp-copy-channel.ts).
      const channels = new GspCopyChannelPool(device.bdf, {
        bdf: device.bdf, store, isLive: (r) => memory.has(r), firmware, logger: log.child({ component: 'ce' }),
      }, board.channelCount);
      gpu = new GspPhysicalGpu({
        halId: this.id, bdf: device.bdf, arena, config, firmware, memory, channels, logger: log, link,
        guestPort: guestPortLocator(device.bdf, device.transport as SimTransport),
        writeSriovControl: (numVfs) => setNumVfs(arena, board, numVfs),
      });
      try {
        if (await firmware.attachIfRunning()) log.info('GSP-RM already running: attached (no reboot)', { version: firmware.info().version });
      } catch (e) {
        // Its control page says RUNNING but it does not answer (hung, or left so by a device that died): what a host
        // does with an unresponsive GSP is reset the GPU (OpenRM: Xid 119, then "GPU reset required"). The file and
        // its FB stay; the caller boots a fresh GSP-RM.
        log.warn('GSP-RM says it runs but does not answer: resetting the GPU', { error: (e as Error).message });
        await gpu.reset();
      }
      log.info('ready', { firmware: firmware.state });
      return gpu;
    } catch (e) {
      // Once built, the GPU owns the mapping and the link: its detach releases both (the device keeps running).
      if (gpu !== undefined) {
        await gpu.detach().catch(() => undefined);
      } else {
        link?.close();
        arena.close();
      }
      throw e;
    }
  }
}

/** The device's interrupt link, from the address its header publishes. GpuLost when nothing answers there. */
async function connectLink(arena: SharedArena, bdf: string): Promise<IrqLink> {
  const address = readIrqAddress(arena);
  if (address === null) {
    throw new VgpuError(ErrorCode.GpuLost, `${bdf}: the simulated device publishes no interrupt link (it is not running, or older than this HAL)`, {
      hint: 'start vgpu-sim for this device again; its FB is kept in its file',
    });
  }
  return IrqLink.connect(address);
}

/** The guest side of the VFs, for the vfio-user front: the module (.ts under tsx, .js once compiled) and the region. */
const GUEST_PORT_MODULE = fileURLToPath(new URL(`../sim/device/vf/vf-guest-port${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url));

function guestPortLocator(bdf: string, t: SimTransport): GuestPortLocator {
  return { module: GUEST_PORT_MODULE, options: t.mode === 'process' ? { gpu: bdf, path: t.path } : { gpu: bdf, sab: t.sab } };
}

function hex(n: number): string {
  return `0x${(n >>> 0).toString(16)}`;
}

function mapRegion(t: SimTransport): SharedArena {
  const ops = loadNativeOps();
  if (t.mode === 'worker') return ops.attachSab(t.sab);
  if (t.mode === 'process') return ops.openArena(t.path);
  throw new VgpuError(ErrorCode.UnsupportedDevice, `unknown gsp-sim transport mode "${(t as { mode?: string }).mode}"`, {
    hint: "use mode 'worker' (sab) or 'process' (path)",
  });
}

/** Validate the region: a simulated-GPU header of our layout, a running device, and identification that agrees. */
function checkRegion(arena: SharedArena, device: PciDeviceInfo, board: SimBoard): ReturnType<typeof readHeader> {
  const h = readHeader(arena);
  if (h.magic !== LAYOUT_MAGIC || h.layoutVersion !== LAYOUT_VERSION) {
    throw new VgpuError(ErrorCode.UnsupportedDevice,
      `${device.bdf}: device region has magic ${hex(h.magic)} layout v${h.layoutVersion}, expected a simulated-GPU region v${LAYOUT_VERSION}`, {
        hint: 'the simulator and the daemon are from different versions, or the path is not a device file; restart vgpu-sim',
        details: { magic: h.magic, layoutVersion: h.layoutVersion },
      });
  }
  if (h.deviceState !== DeviceState.Running) {
    throw new VgpuError(ErrorCode.GpuLost, `${device.bdf}: the simulated device is not running (state ${h.deviceState})`, {
      hint: 'start vgpu-sim for this device again; the FB contents are kept in its file',
    });
  }
  const cfg = readIdentity(arena.window(BigInt(Region.PF_CONFIG), Region.CONFIG_SIZE));
  if (cfg.deviceId !== device.deviceId || h.deviceId !== device.deviceId) {
    throw new VgpuError(ErrorCode.UnsupportedDevice,
      `${device.bdf}: bus says device ${hex(device.deviceId)} but the device reports ${hex(cfg.deviceId)} (header ${hex(h.deviceId)})`, {
        hint: 'the bus listing is stale; list the devices again',
      });
  }
  const boot0 = decodeBoot0(arena.load32(BigInt(Region.BAR0 + Bar0.PMC_BOOT_0)));
  if (boot0.architecture !== board.architecture || boot0.implementation !== board.implementation) {
    throw new VgpuError(ErrorCode.UnsupportedDevice,
      `${device.bdf}: NV_PMC_BOOT_0 says architecture ${hex(boot0.architecture)} implementation ${hex(boot0.implementation)}, ` +
      `not ${board.chip} (${hex(board.architecture)}/${hex(board.implementation)})`, {
        hint: 'the PCI id and the chip disagree: a mislabelled device or a corrupt register window',
        details: { architecture: boot0.architecture, implementation: boot0.implementation, expected: board.chip },
      });
  }
  return h;
}

function hardwareConfig(arena: SharedArena, board: SimBoard, fbBytes: bigint, generation: string): HardwareConfig {
  const cfgBuf = arena.window(BigInt(Region.PF_CONFIG), Region.CONFIG_SIZE);
  const id = readIdentity(cfgBuf);
  const sriov = readSriov(cfgBuf);
  const h = readHeader(arena);
  return Object.freeze({
    name: board.name,
    generation,
    pci: { vendorId: id.vendorId, deviceId: id.deviceId },
    fbBytes,
    engines: Object.freeze([...board.engines]),
    engineBitmap: engineBitmap(board.engines),
    channelCount: board.channelCount,
    totalVfs: sriov?.totalVfs ?? 0,
    pfBars: { ...h.pfBars },
    vfBars: { ...h.vfBars },
    copyEngineClass: board.copyEngineClass,
    firmwareFloor: board.firmwareFloor,
    eccSupported: board.eccSupported,
  });
}

