/**
 * What the guest-model e2e tests share: the real daemon and simulator started as the README starts them (through
 * the e2e harness, on private paths), vGPUs made with the real vgpuctl, the socket found the way an operator finds
 * it (`vgpuctl show --json`), and the simulated device's own view of its FB and registers — the region file the
 * vgpu-sim process serves, not anything the vfio-user server says — to check what the guest did.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import assert from 'node:assert/strict';
import { createHarness, GPU, type Harness } from './daemon-harness.js';
import { loadFdOps } from '../../../native/fd-ops.js';
import { Bar0 as SimBar0, Region as SimRegion } from '../../../hal/sim/device/device-layout.js';

export interface VgpuJson {
  id: string;
  vf: number;
  gfid: number;
  typeId: number;
  typeName: string;
  state: string;
  fb: { offset: string; size: string };
  vfBdf: string;
  vfioUser?: { socket: string; attached: boolean; clientPid?: number };
}

/** A harness whose daemon config carries extra `plugins.vfio-user` keys (YAML lines under it), then started. */
export async function startRig(prefix: string, vfioUser: string[] = []): Promise<Harness> {
  const h = await createHarness(prefix);
  try {
    if (vfioUser.length > 0) writeFileSync(h.config, `${readFileSync(h.config, 'utf8')}  vfio-user:\n${vfioUser.map((l) => `    ${l}\n`).join('')}`);
    await h.start();
  } catch (e) {
    await h.close();
    throw e;
  }
  return h;
}

export async function createVgpus(h: Harness, type: string, count: number): Promise<VgpuJson[]> {
  const r = await h.ctl('create', '--gpu', GPU, '--type', type, '--count', String(count), '--json');
  assert.equal(r.code, 0, r.err);
  return (JSON.parse(r.out) as { vgpus: VgpuJson[] }).vgpus;
}

export async function show(h: Harness, id: string): Promise<VgpuJson> {
  const r = await h.ctl('show', id, '--json');
  assert.equal(r.code, 0, r.err);
  return (JSON.parse(r.out) as { vgpu: VgpuJson }).vgpu;
}

/** Ask the daemon until `pred` holds. Each ask is a vgpuctl process (no timer in the loop); bounded tries. */
export async function showUntil(h: Harness, id: string, what: string, pred: (v: VgpuJson) => boolean, tries = 300): Promise<VgpuJson> {
  let last: VgpuJson | undefined;
  for (let i = 0; i < tries; i++) {
    last = await show(h, id);
    if (pred(last)) return last;
  }
  throw new Error(`vgpuctl show ${id} never showed ${what}; last: ${JSON.stringify(last)}`);
}

/** The vGPU's vfio-user socket, as `vgpuctl show --json` names it. */
export async function socketOf(h: Harness, id: string): Promise<string> {
  return (await showUntil(h, id, 'a vfio-user socket', (v) => v.vfioUser !== undefined)).vfioUser!.socket;
}

/** FB bytes as the simulated device holds them (its region file), `offset` from FB byte 0. */
export function deviceFb(h: Harness, offset: bigint, length: number): Buffer {
  return Buffer.from(h.sim.fbWindow(offset, length));
}

/** NV_PMC_BOOT_0 of the physical GPU as the simulated device holds it. */
export function deviceBoot0(h: Harness): number {
  return h.sim.arena.load32(BigInt(SimRegion.BAR0 + SimBar0.PMC_BOOT_0));
}

/** The PID on the far end of a connected Unix socket (the process serving the vGPU). */
export function peerPid(fd: number): number {
  return loadFdOps().peerCred(fd).pid;
}

/** Open descriptors of a process (same user: /proc/PID/fd is readable). */
export function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** True when FB [offset, offset+length) of the device is all zero (compared in 64 MiB windows). */
export function deviceFbIsZero(h: Harness, offset: bigint, length: bigint): boolean {
  const step = 64n << 20n;
  const zero = Buffer.alloc(Number(length < step ? length : step));
  for (let at = 0n; at < length; at += step) {
    const n = Number(length - at < step ? length - at : step);
    if (!h.sim.fbWindow(offset + at, n).equals(zero.subarray(0, n))) return false;
  }
  return true;
}

/** Bytes no two seeds (and no two offsets) share, so a misplaced copy shows (xorshift32). */
export function pattern(seed: number, length: number): Buffer {
  const b = Buffer.alloc(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}
