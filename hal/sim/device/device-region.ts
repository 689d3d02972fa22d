/**
 * Power-on and inspection of a simulated device region (layout in device-layout.ts).
 *
 * `powerOnRegion` is what the device does when a simulator starts on a region: a fresh (all-zero) region gets its
 * header, config spaces and registers written; a region that already holds THIS device (same magic, layout and
 * PCI id) keeps its FB, logs and log directory — that is how a restarted simulator, or a re-attached daemon, finds
 * the vGPUs' memory intact. A region holding another device or another layout version is refused, never
 * overwritten: it may be somebody else's GPU.
 */
import type { SharedArena } from '../../../native/native-ops.js';
import { ErrorCode, VgpuError } from '../../../core/contracts/exceptions.js';
import { GSP_CONTROL_MAGIC, GspControl, GspFwState, GspRegion } from '../../gsp/gsp-layout.js';
import type { SimBoard } from '../board/sim-board.js';
import { boot0For } from '../board/sim-board.js';
import {
  Bar0, Cpuctl, DEVICE_HEARTBEAT_MS, DeviceState, Header, LAYOUT_MAGIC, LAYOUT_VERSION, MAX_VFS, Region, UPGRADABLE_LAYOUT_VERSIONS,
  regionBytes, vfConfigOffset,
} from './device-layout.js';
import { buildPfConfig, buildVfConfig } from './pci-config.js';
import { initLogRing } from './log-ring.js';
import { VF_PAGES, VF_REGION_END } from './vf/vf-layout.js';

export interface PowerOnOptions {
  board: SimBoard;
  bdf: string;
  fbBytes: bigint;
  firmwareVersion: string;
  numVfs: number;
  pid: number;
}

export interface DeviceHeaderInfo {
  magic: number;
  layoutVersion: number;
  deviceId: number;
  subsystemId: number;
  deviceState: number;
  firmwareState: number;
  simPid: number;
  generation: number;
  heartbeat: number;
  heartbeatMs: number;
  totalVfs: number;
  numVfs: number;
  fbOffset: bigint;
  fbBytes: bigint;
  boardFbBytes: bigint;
  bar0Offset: bigint;
  bar0Bytes: bigint;
  gspOffset: bigint;
  gspBytes: bigint;
  regionBytes: bigint;
  pfBars: { bar0: bigint; bar1: bigint; bar3: bigint };
  vfBars: { bar0: bigint; bar1: bigint; bar3: bigint };
  boardKey: string;
  firmwareVersion: string;
  bdf: string;
}

function readStr(buf: Buffer, off: number, len: number): string {
  const raw = buf.subarray(off, off + len);
  const end = raw.indexOf(0);
  return raw.subarray(0, end < 0 ? len : end).toString('utf8');
}

function writeStr(buf: Buffer, off: number, len: number, s: string, what: string): void {
  const b = Buffer.from(s, 'utf8');
  if (b.byteLength >= len) {
    throw new VgpuError(ErrorCode.InvalidArgument, `${what} "${s}" is longer than ${len - 1} bytes`, {
      hint: `use a ${what} of at most ${len - 1} bytes`,
    });
  }
  buf.fill(0, off, off + len);
  b.copy(buf, off);
}

export function headerWindow(arena: SharedArena): Buffer {
  return arena.window(BigInt(Region.HEADER), 0x1000);
}

export function readHeader(arena: SharedArena): DeviceHeaderInfo {
  const h = headerWindow(arena);
  const u64 = (o: number): bigint => h.readBigUInt64LE(o);
  return {
    magic: h.readUInt32LE(Header.MAGIC),
    layoutVersion: h.readUInt32LE(Header.LAYOUT_VERSION),
    deviceId: h.readUInt32LE(Header.DEVICE_ID),
    subsystemId: h.readUInt32LE(Header.SUBSYSTEM_ID),
    deviceState: arena.load32(BigInt(Header.DEVICE_STATE)),
    firmwareState: arena.load32(BigInt(Header.FIRMWARE_STATE)),
    simPid: h.readUInt32LE(Header.SIM_PID),
    generation: h.readUInt32LE(Header.GENERATION),
    heartbeat: arena.load32(BigInt(Header.HEARTBEAT)),
    heartbeatMs: h.readUInt32LE(Header.HEARTBEAT_MS),
    totalVfs: h.readUInt32LE(Header.TOTAL_VFS),
    numVfs: h.readUInt32LE(Header.NUM_VFS),
    fbOffset: u64(Header.FB_OFFSET),
    fbBytes: u64(Header.FB_BYTES),
    boardFbBytes: u64(Header.BOARD_FB_BYTES),
    bar0Offset: u64(Header.BAR0_OFFSET),
    bar0Bytes: u64(Header.BAR0_BYTES),
    gspOffset: u64(Header.GSP_OFFSET),
    gspBytes: u64(Header.GSP_BYTES),
    regionBytes: u64(Header.REGION_BYTES),
    pfBars: { bar0: u64(Header.PF_BAR0), bar1: u64(Header.PF_BAR1), bar3: u64(Header.PF_BAR3) },
    vfBars: { bar0: u64(Header.VF_BAR0), bar1: u64(Header.VF_BAR1), bar3: u64(Header.VF_BAR3) },
    boardKey: readStr(h, Header.BOARD_KEY, Header.STRING_BYTES),
    firmwareVersion: readStr(h, Header.FIRMWARE_VERSION, Header.STRING_BYTES),
    bdf: readStr(h, Header.BDF, Header.BDF_BYTES),
  };
}

/** Parse "570.144" into the mailbox encoding major·1000 + minor (0 when unparsable). */
export function versionWord(version: string): number {
  const m = /^(\d+)\.(\d+)/.exec(version);
  return m ? (Number(m[1]) * 1000 + Math.min(999, Number(m[2]))) >>> 0 : 0;
}

/**
 * Write (or re-validate) the device's power-on state. Returns whether the region already held this device, i.e.
 * whether FB contents from an earlier run were kept.
 */
export function powerOnRegion(arena: SharedArena, o: PowerOnOptions): { reattached: boolean } {
  if (o.numVfs < 0 || o.numVfs > o.board.totalVfs || o.board.totalVfs > MAX_VFS) {
    throw new VgpuError(ErrorCode.InvalidArgument, `numVfs ${o.numVfs} is outside 0..${o.board.totalVfs}`, {
      hint: `enable at most TotalVFs (${o.board.totalVfs}) VFs`,
    });
  }
  const need = regionBytes(o.fbBytes);
  if (arena.size < need) {
    throw new VgpuError(ErrorCode.InvalidArgument, `device region of ${arena.size} bytes is smaller than the ${need} the layout needs`, {
      hint: 'create the region with regionBytes(fbBytes) bytes',
    });
  }
  const h = headerWindow(arena);
  const magic = h.readUInt32LE(Header.MAGIC);
  let reattached = false;
  if (magic !== 0) {
    const info = readHeader(arena);
    const known = info.layoutVersion === LAYOUT_VERSION || UPGRADABLE_LAYOUT_VERSIONS.includes(info.layoutVersion);
    if (info.magic !== LAYOUT_MAGIC || !known) {
      throw new VgpuError(ErrorCode.UnsupportedDevice,
        `device region holds magic 0x${info.magic.toString(16)} layout v${info.layoutVersion}, not a simulated-GPU layout v${LAYOUT_VERSION}`, {
          hint: 'this file belongs to another simulator version or program; remove it (it is only simulated state) or use another --dir',
        });
    }
    if (info.deviceId !== o.board.deviceId || info.fbBytes !== o.fbBytes) {
      throw new VgpuError(ErrorCode.UnsupportedDevice,
        `device region already holds a 0x${info.deviceId.toString(16)} (${info.boardKey}) with ${info.fbBytes} bytes FB, not ${o.board.key}`, {
          hint: 'start the simulator with the board it was created with, or delete the device file to create a new board',
          details: { existing: info.boardKey, requested: o.board.key },
        });
    }
    reattached = true;
  }
  h.writeUInt32LE(LAYOUT_MAGIC, Header.MAGIC);
  h.writeUInt32LE(LAYOUT_VERSION, Header.LAYOUT_VERSION);
  h.writeUInt32LE(o.board.deviceId, Header.DEVICE_ID);
  h.writeUInt32LE(o.board.subsystemId, Header.SUBSYSTEM_ID);
  h.writeUInt32LE(o.pid >>> 0, Header.SIM_PID);
  h.writeUInt32LE((h.readUInt32LE(Header.GENERATION) + 1) >>> 0, Header.GENERATION);
  h.writeUInt32LE(DEVICE_HEARTBEAT_MS, Header.HEARTBEAT_MS);
  h.writeUInt32LE(0, Header.HEARTBEAT);
  // No interrupt link until the device listens again (a host must not dial the address of a dead device).
  h.fill(0, Header.IRQ_ADDRESS_LEN, Header.IRQ_ADDRESS + Header.IRQ_ADDRESS_BYTES);
  h.writeUInt32LE(o.board.totalVfs, Header.TOTAL_VFS);
  h.writeUInt32LE(o.numVfs, Header.NUM_VFS);
  h.writeBigUInt64LE(BigInt(Region.FB), Header.FB_OFFSET);
  h.writeBigUInt64LE(o.fbBytes, Header.FB_BYTES);
  h.writeBigUInt64LE(o.board.fbBytes, Header.BOARD_FB_BYTES);
  h.writeBigUInt64LE(BigInt(Region.BAR0), Header.BAR0_OFFSET);
  h.writeBigUInt64LE(BigInt(Region.BAR0_SIZE), Header.BAR0_BYTES);
  h.writeBigUInt64LE(BigInt(Region.GSP_QUEUES), Header.GSP_OFFSET);
  h.writeBigUInt64LE(BigInt(Region.GSP_QUEUES_SLOT), Header.GSP_BYTES);
  h.writeBigUInt64LE(need, Header.REGION_BYTES);
  h.writeBigUInt64LE(o.board.pfBars.bar0, Header.PF_BAR0);
  h.writeBigUInt64LE(o.board.pfBars.bar1, Header.PF_BAR1);
  h.writeBigUInt64LE(o.board.pfBars.bar3, Header.PF_BAR3);
  h.writeBigUInt64LE(o.board.vfBars.bar0, Header.VF_BAR0);
  h.writeBigUInt64LE(o.board.vfBars.bar1, Header.VF_BAR1);
  h.writeBigUInt64LE(o.board.vfBars.bar3, Header.VF_BAR3);
  writeStr(h, Header.BOARD_KEY, Header.STRING_BYTES, o.board.key, 'board key');
  writeStr(h, Header.FIRMWARE_VERSION, Header.STRING_BYTES, o.firmwareVersion, 'firmware version');
  writeStr(h, Header.BDF, Header.BDF_BYTES, o.bdf, 'BDF');

  // Config spaces are rebuilt on every power-on (a real power cycle resets them too).
  const pf = arena.window(BigInt(Region.PF_CONFIG), Region.CONFIG_SIZE);
  buildPfConfig(pf, o.board, o.numVfs);
  for (let i = 0; i < MAX_VFS; i++) {
    const vf = arena.window(BigInt(vfConfigOffset(i)), Region.CONFIG_SIZE);
    if (i < o.numVfs) buildVfConfig(vf, o.board);
    else vf.fill(0xff); // an absent function reads all-ones
  }
  writeRegisters(arena, o, pf);
  // The VFs' guest-visible state (registers, firmware records, DMA mailboxes) powers on cleared, like the registers.
  arena.window(BigInt(VF_PAGES), VF_REGION_END - VF_PAGES).fill(0);
  initLogRing(arena.window(BigInt(Region.GSP_LOG), Region.GSP_LOG_SIZE));
  resetFirmwareState(arena);
  return { reattached };
}

/**
 * What a power cycle (or a function-level reset) does to the firmware's side of the region: GSP-RM is not running
 * any more, whatever the control page last said. A device file left by a simulator that died (kill -9) still
 * reads FW_STATE = RUNNING with a frozen heartbeat; a host that believed it would attach to a firmware nobody runs
 * and fail the GPU. The plugin tasks died with GSP-RM, so the log directory (the firmware's record of where their
 * log rings are) is cleared too. FB contents — guest memory and the rings themselves — stay as they are.
 * The queue region itself belongs to the host, which initialises it again when it boots GSP-RM.
 */
export function resetFirmwareState(arena: SharedArena): void {
  const control = BigInt(Region.GSP_QUEUES + GspRegion.CONTROL);
  if (arena.load32(control + BigInt(GspControl.MAGIC)) === GSP_CONTROL_MAGIC) {
    arena.store32(control + BigInt(GspControl.CRASH_REASON), 0);
    arena.store32(control + BigInt(GspControl.FW_STATE), GspFwState.Off);
  }
  arena.window(BigInt(Region.LOG_DIRECTORY), Region.CONFIG_SIZE).fill(0);
  arena.store32(BigInt(Header.FIRMWARE_STATE), GspFwState.Off);
  arena.store32(BigInt(Region.BAR0 + Bar0.PGSP_MAILBOX0), 0);
  arena.store32(BigInt(Region.BAR0 + Bar0.PGSP_MAILBOX1), 0);
  arena.store32(BigInt(Region.BAR0 + Bar0.PGSP_CPUCTL), Cpuctl.HALTED);
}

function writeRegisters(arena: SharedArena, o: PowerOnOptions, pfConfig: Buffer): void {
  const base = BigInt(Region.BAR0);
  const reg = (off: number, v: number): void => arena.store32(base + BigInt(off), v >>> 0);
  reg(Bar0.PMC_BOOT_0, boot0For(o.board));
  // NV_PCFG mirror: the first 4 KiB of config space as the GPU's own PRI bus sees it.
  arena.window(base + BigInt(Bar0.PCFG), 0x1000).set(pfConfig.subarray(0, 0x1000));
  // The mirror's VF BAR1/BAR2 type words (0xbf4/0xbfc): 64-bit prefetchable (bits[2:1] = 0b10).
  reg(Bar0.PCFG_VF_BAR1_TYPE, 0xc);
  reg(Bar0.PCFG_VF_BAR2_TYPE, 0xc);
  reg(Bar0.PGSP_MAILBOX0, 0);
  reg(Bar0.PGSP_MAILBOX1, 0);
  reg(Bar0.PGSP_CPUCTL, Cpuctl.HALTED); // a powered-on GPU's GSP waits for the host to start it
}

export function setDeviceState(arena: SharedArena, state: DeviceState): void {
  arena.store32(BigInt(Header.DEVICE_STATE), state);
}

export { DeviceState, versionWord as firmwareVersionWord };
