/**
 * HostVfJournal contract: the Linux sysfs backend's record of what vgpud set on a real host, so a restart (a
 * crash, `kill -9`, an upgrade) can tell the vGPU types it set from those someone else set or changed since.
 *
 * Write-ahead, like the vGPU journal: 'setting' is on disk before the type id is written to the VF's
 * `current_vgpu_type`, 'clearing' before 0 is. At start the backend compares every record with sysfs: a record the
 * kernel agrees with is kept; one caught half-way is settled by what the kernel holds; one the kernel contradicts
 * was changed behind vgpud's back and is reported, never written over.
 *
 * It also keeps each GPU's type catalogue as last seen in `creatable_vgpu_types` (that file lists every type only
 * while no vGPU exists; once one does, only what may still be created), so names and ids of a full GPU stay known
 * across restarts. Bound to TOKENS.HostVfJournal by the 'state' plugin; the backend keeps one in memory without it.
 */

/** One vGPU vgpud manages on a real host: a VF whose type vgpud set (or adopted). */
export interface HostVfRecord {
  /** The vGPU's id (from the same never-repeating sequence as the userspace manager's). */
  id: string;
  /** PF BDF (lower case). */
  gpu: string;
  /** VF index (`virtfnN`). */
  vf: number;
  vfBdf: string;
  typeId: number;
  typeName: string;
  /** 'setting' / 'clearing': written before the type / 0 is written to sysfs (half-way after a crash); 'set': done. */
  state: 'setting' | 'set' | 'clearing';
  /** Taken over with `vgpuctl adopt` (the type was set outside vgpud). */
  adopted?: boolean;
  /** The control request that made it (core/contracts/request-journal.ts). */
  requestId?: string;
  createdAt: number;
  updatedAt: number;
}

/** A GPU's vGPU types as last read from its VFs' `creatable_vgpu_types`. */
export interface HostTypeCatalogue {
  gpu: string;
  types: { id: number; name: string }[];
  updatedAt: number;
}

export interface HostVfJournal {
  records(): HostVfRecord[];
  record(id: string): HostVfRecord | undefined;
  /** Write (create or replace) a record durably; resolves once it is on disk. */
  put(record: HostVfRecord): Promise<void>;
  remove(id: string): Promise<void>;
  catalogue(gpu: string): HostTypeCatalogue | undefined;
  putCatalogue(catalogue: HostTypeCatalogue): Promise<void>;
}
