/**
 * The simulated device's interrupt link: how the device tells its host "look now" without the host polling.
 *
 * A real GPU raises interrupts: GSP-RM rings the host with a falcon software interrupt when it has posted to the
 * message queue and halts with a HALT interrupt when it crashes, and OpenRM reads the GSP logs when it services
 * them (open-gpu-kernel-modules src/nvidia/src/kernel/gpu/gsp/arch/turing/kernel_gsp_tu102.c kgspService_TU102:
 * IRQSTAT_HALT → dump logs + health check, IRQSTAT_SWGEN0 → drain the message queue; kernel_gsp.c
 * _kgspRpcDrainEvents dumps the logs after every drained event). A host that loses the device altogether learns
 * it from the bus ("GPU has fallen off the bus", Xid 79). Between two processes that needs a kernel object
 * (a futex cannot tell a dead peer from a quiet one): here it is a Unix stream socket the device listens on.
 *
 *  - Every listener (the daemon's HAL, and any other process that wants the device's interrupts, such as a vfio-user
 *    device front) connects to the address written in the device header (Header.IRQ_ADDRESS; an abstract socket,
 *    so a device that died leaves no file behind) and gets the same messages.
 *  - The link carries no state, only "look": what changed lives in the shared region (the host-event ring, the
 *    log rings' write counters, FW_STATE), so a coalesced or missed message loses nothing but time.
 *  - The kernel closes the socket the moment the device process dies, however it dies: that close IS the surprise
 *    removal. A clean stop closes it too, after the header says Stopped.
 *
 * Wire format (simulator's own, version 1): one JSON object per line, device → listener only (a listener's bytes
 * are read and ignored). Lines are at most MAX_LINE bytes; a longer one is a protocol error and ends the link.
 *
 *   {"t":"hello","v":1,"bdf":"0000:41:00.0","pid":1234,"generation":7}      first line of every connection
 *   {"t":"irq","src":"host-event","seq":5}        the PF host-event ring moved (sim/host-events.ts)
 *   {"t":"irq","src":"log","gfids":[3,4]}         these gfids' plugin tasks appended to their log rings
 *   {"t":"irq","src":"gsp","state":"crashed"}     GSP-RM changed state: running | crashed | stopped
 *   {"t":"irq","src":"reset","phase":"done"}      a function-level reset of the PF has completed
 *   {"t":"irq","src":"vf","gfid":3,"vector":0}    reserved: a VF's own interrupt (MSI-X vector), for a device front
 */
import type { SharedArena } from '../../../native/native-ops.js';
import { Header } from './device-layout.js';

export const IRQ_PROTOCOL_VERSION = 1;
/** Longest line either side accepts. */
export const MAX_LINE = 4096;

export type GspStateName = 'running' | 'crashed' | 'stopped';

export type IrqMessage =
  | { t: 'irq'; src: 'host-event'; seq: number }
  | { t: 'irq'; src: 'log'; gfids: number[] }
  | { t: 'irq'; src: 'gsp'; state: GspStateName }
  | { t: 'irq'; src: 'reset'; phase: 'done' }
  | { t: 'irq'; src: 'vf'; gfid: number; vector: number };

export interface IrqHello {
  t: 'hello';
  v: number;
  bdf: string;
  pid: number;
  generation: number;
}

export type IrqLine = IrqHello | IrqMessage;

/** One line of the wire format. */
export function encodeIrqLine(m: IrqLine): string {
  return `${JSON.stringify(m)}\n`;
}

const isInt = (v: unknown, max = 0xffffffff): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max;

/**
 * Parse one line; null when it is not a message of this protocol (the caller decides what a bad line means).
 * Unknown `src` values of a later version are returned as null too, never guessed at.
 */
export function decodeIrqLine(line: string): IrqLine | null {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return null;
  }
  if (v === null || typeof v !== 'object') return null;
  const m = v as Record<string, unknown>;
  if (m.t === 'hello') {
    if (!isInt(m.v) || typeof m.bdf !== 'string' || !isInt(m.pid) || !isInt(m.generation)) return null;
    return { t: 'hello', v: m.v, bdf: m.bdf, pid: m.pid, generation: m.generation };
  }
  if (m.t !== 'irq') return null;
  switch (m.src) {
    case 'host-event':
      return isInt(m.seq) ? { t: 'irq', src: 'host-event', seq: m.seq } : null;
    case 'log':
      return Array.isArray(m.gfids) && m.gfids.length <= 64 && m.gfids.every((g) => isInt(g, 64))
        ? { t: 'irq', src: 'log', gfids: m.gfids as number[] } : null;
    case 'gsp':
      return m.state === 'running' || m.state === 'crashed' || m.state === 'stopped' ? { t: 'irq', src: 'gsp', state: m.state } : null;
    case 'reset':
      return m.phase === 'done' ? { t: 'irq', src: 'reset', phase: 'done' } : null;
    case 'vf':
      return isInt(m.gfid, 64) && isInt(m.vector, 2047) ? { t: 'irq', src: 'vf', gfid: m.gfid, vector: m.vector } : null;
    default:
      return null;
  }
}

/** Node's spelling of a socket address: an abstract name starts with NUL, written '@' in the header and logs. */
export function toSocketPath(address: string): string {
  return address.startsWith('@') ? `\0${address.slice(1)}` : address;
}

/** The address a device publishes (the device writes it once it listens). */
export function writeIrqAddress(arena: SharedArena, address: string): void {
  const b = Buffer.from(address, 'utf8');
  if (b.byteLength > Header.IRQ_ADDRESS_BYTES) {
    throw new RangeError(`interrupt address of ${b.byteLength} bytes does not fit the ${Header.IRQ_ADDRESS_BYTES}-byte header field`);
  }
  const w = arena.window(BigInt(Header.IRQ_ADDRESS), Header.IRQ_ADDRESS_BYTES);
  w.fill(0);
  b.copy(w);
  arena.store32(BigInt(Header.IRQ_ADDRESS_LEN), b.byteLength);
}

/** The address the device listens on, or null when it published none (not running, or an older simulator). */
export function readIrqAddress(arena: SharedArena): string | null {
  const len = arena.load32(BigInt(Header.IRQ_ADDRESS_LEN));
  if (len === 0 || len > Header.IRQ_ADDRESS_BYTES) return null;
  return arena.window(BigInt(Header.IRQ_ADDRESS), len).toString('utf8');
}

/** Device side: clear the published address (a stopped device listens nowhere). */
export function clearIrqAddress(arena: SharedArena): void {
  arena.store32(BigInt(Header.IRQ_ADDRESS_LEN), 0);
}

/** The device doorbell (Header.DEVICE_DOORBELL): a host write the device must act on has happened. */
export function ringDevice(arena: SharedArena): void {
  const at = BigInt(Header.DEVICE_DOORBELL);
  arena.store32(at, (arena.load32(at) + 1) >>> 0);
  arena.wake32(at);
}
