/**
 * A fake host sysfs for the Linux sysfs backend's tests: a temp directory laid out like `/sys` (plain files and
 * symlinks under `bus/pci/devices/<BDF>/`, `module/nvidia/version`), and a fake kernel that plays what plain files
 * cannot — the stores' errnos. Reads go to the files; a write goes through `FakeKernel.writeText`, which applies the
 * rules the real attributes have (the upstream RFC's homogeneous `current_vgpu_type`, drivers/pci/iov.c
 * `sriov_numvfs`) and then rewrites the files, so what the backend reads back is what a kernel would show.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseTypeId } from '../../core/manager/vf-type-abi.js';
import { parseNumVfs } from '../../core/manager/sriov-numvfs-abi.js';
import { nodeSysfsIo, type SysfsIo } from '../../plugins/linux-sysfs/sysfs-io.js';

export interface FakeType { id: number; name: string; maxInstance: number }

export interface FakePfSpec {
  bdf: string;
  deviceId?: number;
  vendorId?: number;
  classCode?: number;
  totalVfs?: number;
  numVfs?: number;
  driver?: string;
  /** The driver has a sriov_configure callback (else a sriov_numvfs write is ENOENT, as for nvidia.ko + sriov-manage). */
  canConfigure?: boolean;
  types?: FakeType[];
  /** NVIDIA's further per-VF attributes (placement_id, vgpu_params…) with their text. */
  extraVfAttrs?: Record<string, string>;
}

export const GPU_A = '0000:41:00.0';
export const RTX_TYPES: FakeType[] = [
  { id: 941, name: 'NVIDIA RTX6000-Ada-1Q', maxInstance: 32 },
  { id: 947, name: 'NVIDIA RTX6000-Ada-12Q', maxInstance: 4 },
  { id: 949, name: 'NVIDIA RTX6000-Ada-24Q', maxInstance: 2 },
];

const errno = (code: string, path: string): Error => Object.assign(new Error(`${code}: ${path}`), { code });
const hex = (n: number, w: number): string => `0x${n.toString(16).padStart(w, '0')}\n`;

/** VF n of a PF at bus:dev.0: functions from 00.4 on, 8 per device (the simulator's offset 4, stride 1). */
export function vfBdfOf(pf: string, n: number): string {
  const [dom, bus] = pf.split(':');
  const fn = 4 + n;
  return `${dom}:${bus}:${String(Math.floor(fn / 8)).padStart(2, '0')}.${fn % 8}`;
}

interface PfState {
  spec: Required<Omit<FakePfSpec, 'extraVfAttrs'>> & { extraVfAttrs: Record<string, string> };
  numVfs: number;
  /** Per VF: its type id (0 = none) and whether a VMM holds it open. */
  vfs: { type: number; open: boolean }[];
}

export class FakeKernel implements SysfsIo {
  readonly root: string;
  readonly devices: string;
  /** Every write the backend made, in order (path relative to the root, text). */
  readonly writes: { path: string; text: string }[] = [];
  private readonly pfs = new Map<string, PfState>();
  private readonly failures = new Map<string, string>();

  constructor(pfs: FakePfSpec[], opts: { driverVersion?: string } = {}) {
    this.root = mkdtempSync(join(tmpdir(), 'vgpud-fake-sysfs-'));
    this.devices = join(this.root, 'bus', 'pci', 'devices');
    mkdirSync(this.devices, { recursive: true });
    mkdirSync(join(this.root, 'bus', 'pci', 'drivers', 'nvidia'), { recursive: true });
    mkdirSync(join(this.root, 'module', 'nvidia'), { recursive: true });
    writeFileSync(join(this.root, 'module', 'nvidia', 'version'), `${opts.driverVersion ?? '570.144'}\n`);
    for (const p of pfs) {
      const spec = {
        deviceId: 0x26b1, vendorId: 0x10de, classCode: 0x030200, totalVfs: 4, numVfs: p.numVfs ?? p.totalVfs ?? 4, driver: 'nvidia',
        canConfigure: true, types: RTX_TYPES, extraVfAttrs: {}, ...p, bdf: p.bdf.toLowerCase(),
      };
      const st: PfState = { spec, numVfs: 0, vfs: [] };
      this.pfs.set(spec.bdf, st);
      this.writePf(st);
      this.setNumVfs(st, spec.numVfs);
    }
  }

  cleanup(): void {
    rmSync(this.root, { recursive: true, force: true });
  }

  /** A device the backend must ignore (another vendor, a PF on vfio-pci…): attributes as given. */
  addDevice(bdf: string, files: Record<string, string>, links: Record<string, string> = {}): void {
    const dir = join(this.devices, bdf);
    mkdirSync(dir, { recursive: true });
    for (const [k, v] of Object.entries(files)) writeFileSync(join(dir, k), v);
    for (const [k, v] of Object.entries(links)) symlinkSync(v, join(dir, k));
  }

  vf(pf: string, n: number): string {
    return vfBdfOf(pf, n);
  }

  /** What a VF holds (test assertions and "someone else" changes). */
  typeOf(pf: string, n: number): number {
    return this.state(pf).vfs[n]?.type ?? 0;
  }

  /** Behind vgpud's back: set a VF's type directly (an operator's echo, another tool). */
  setTypeBehindTheBack(pf: string, n: number, type: number): void {
    const st = this.state(pf);
    st.vfs[n]!.type = type;
    this.refreshVfFiles(st);
  }

  /** A VMM opens (or closes) the VF's device: its type cannot change then (EBUSY). */
  setOpen(pf: string, n: number, open: boolean): void {
    this.state(pf).vfs[n]!.open = open;
  }

  /** The next write of `path` (relative to the root, or a suffix of it) fails with `code`. */
  failNextWrite(pathSuffix: string, code: string): void {
    this.failures.set(pathSuffix, code);
  }

  // ---- SysfsIo ----

  readText(path: string): string | undefined {
    return nodeSysfsIo.readText(path);
  }

  readLink(path: string): string | undefined {
    return nodeSysfsIo.readLink(path);
  }

  list(dir: string): string[] {
    return nodeSysfsIo.list(dir);
  }

  async writeText(path: string, text: string): Promise<void> {
    const rel = path.slice(this.root.length + 1);
    this.writes.push({ path: rel, text });
    for (const [suffix, code] of this.failures) {
      if (rel.endsWith(suffix)) {
        this.failures.delete(suffix);
        throw errno(code, path);
      }
    }
    const m = /^bus\/pci\/devices\/([^/]+)\/(.+)$/.exec(rel);
    if (m === null) throw errno('EACCES', path);
    const [, dev, attr] = m as unknown as [string, string, string];
    if (attr === 'sriov_numvfs') return this.storeNumVfs(this.state(dev), text, path);
    if (attr === 'nvidia/current_vgpu_type') return this.storeType(dev, text, path);
    // Every other attribute is read-only (kernfs refuses the open for writing).
    throw errno('EACCES', path);
  }

  // ---- the kernel's rules ----

  private storeNumVfs(st: PfState, text: string, path: string): void {
    let n: number;
    try {
      n = parseNumVfs(text);
    } catch (e) {
      throw errno((e as { errno: string }).errno, path);
    }
    if (n > st.spec.totalVfs) throw errno('ERANGE', path);
    if (n === st.numVfs) return;
    if (!st.spec.canConfigure) throw errno('ENOENT', path);
    if (n !== 0 && st.numVfs !== 0) throw errno('EBUSY', path);
    this.setNumVfs(st, n);
  }

  /** The RFC's homogeneous current_vgpu_type store (vfio_sysfs.c), over the files. */
  private storeType(vfBdf: string, text: string, path: string): void {
    const { st, n } = this.vfOf(vfBdf, path);
    let id: bigint;
    try {
      id = parseTypeId(text);
    } catch (e) {
      throw errno((e as { errno: string }).errno, path);
    }
    const vf = st.vfs[n]!;
    if (vf.open) throw errno('EBUSY', path);
    if (id === 0n) {
      vf.type = 0;
    } else {
      const t = st.spec.types.find((x) => BigInt(x.id) === id);
      if (t === undefined) throw errno('ENODEV', path);
      const active = this.activeType(st);
      const count = st.vfs.filter((v) => v.type !== 0).length;
      if (active !== undefined && active !== t.id) throw errno('EINVAL', path);
      if (active !== undefined && count >= t.maxInstance) throw errno('ENOSPC', path);
      vf.type = t.id;
    }
    this.refreshVfFiles(st);
  }

  private activeType(st: PfState): number | undefined {
    return st.vfs.find((v) => v.type !== 0)?.type;
  }

  // ---- the files ----

  private state(bdf: string): PfState {
    const st = this.pfs.get(bdf.toLowerCase());
    if (st === undefined) throw errno('ENOENT', bdf);
    return st;
  }

  private vfOf(vfBdf: string, path: string): { st: PfState; n: number } {
    for (const st of this.pfs.values()) {
      for (let n = 0; n < st.numVfs; n++) if (vfBdfOf(st.spec.bdf, n) === vfBdf.toLowerCase()) return { st, n };
    }
    throw errno('ENOENT', path);
  }

  private writePf(st: PfState): void {
    const s = st.spec;
    const dir = join(this.devices, s.bdf);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'vendor'), hex(s.vendorId, 4));
    writeFileSync(join(dir, 'device'), hex(s.deviceId, 4));
    writeFileSync(join(dir, 'subsystem_vendor'), hex(0x10de, 4));
    writeFileSync(join(dir, 'subsystem_device'), hex(0x16a1, 4));
    writeFileSync(join(dir, 'class'), hex(s.classCode, 6));
    writeFileSync(join(dir, 'sriov_totalvfs'), `${s.totalVfs}\n`);
    writeFileSync(join(dir, 'sriov_vf_device'), `${(s.deviceId + 1).toString(16)}\n`);
    symlinkSync(`../../drivers/${s.driver}`, join(dir, 'driver'));
  }

  private setNumVfs(st: PfState, n: number): void {
    const pfDir = join(this.devices, st.spec.bdf);
    for (let i = 0; i < st.numVfs; i++) {
      unlinkSync(join(pfDir, `virtfn${i}`));
      rmSync(join(this.devices, vfBdfOf(st.spec.bdf, i)), { recursive: true, force: true });
    }
    st.numVfs = n;
    st.vfs = Array.from({ length: n }, () => ({ type: 0, open: false }));
    writeFileSync(join(pfDir, 'sriov_numvfs'), `${n}\n`);
    for (let i = 0; i < n; i++) {
      const vf = vfBdfOf(st.spec.bdf, i);
      const dir = join(this.devices, vf);
      mkdirSync(join(dir, 'nvidia'), { recursive: true });
      writeFileSync(join(dir, 'vendor'), hex(st.spec.vendorId, 4));
      writeFileSync(join(dir, 'device'), hex(st.spec.deviceId + 1, 4));
      writeFileSync(join(dir, 'class'), hex(st.spec.classCode, 6));
      symlinkSync(`../${st.spec.bdf}`, join(dir, 'physfn'));
      symlinkSync(`../../drivers/${st.spec.driver}`, join(dir, 'driver'));
      symlinkSync(`../${vf}`, join(pfDir, `virtfn${i}`));
      for (const [k, v] of Object.entries(st.spec.extraVfAttrs)) writeFileSync(join(dir, 'nvidia', k), v);
    }
    this.refreshVfFiles(st);
  }

  /** current_vgpu_type and creatable_vgpu_types of every VF, as the RFC's show functions print them. */
  private refreshVfFiles(st: PfState): void {
    const active = this.activeType(st);
    const count = st.vfs.filter((v) => v.type !== 0).length;
    const line = (t: FakeType): string => `${String(t.id).padEnd(5, ' ')} : ${t.name}\n`;
    st.vfs.forEach((v, i) => {
      const dir = join(this.devices, vfBdfOf(st.spec.bdf, i), 'nvidia');
      writeFileSync(join(dir, 'current_vgpu_type'), `${v.type}\n`);
      let creatable = '';
      if (v.type === 0) {
        if (active === undefined) creatable = `ID    : vGPU Name\n${st.spec.types.map(line).join('')}`;
        else {
          const t = st.spec.types.find((x) => x.id === active)!;
          if (count < t.maxInstance) creatable = line(t);
        }
      }
      writeFileSync(join(dir, 'creatable_vgpu_types'), creatable);
    });
  }
}
