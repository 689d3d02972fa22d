/**
 * What the lifecycle makes of a damaged journal: where the sequences must continue (above every id and RM handle
 * any record still names), the quarantine entry of a damaged vGPU record, and the firmware's "handle in use" answer
 * that reveals a client the journal lost.
 */
import { isVgpuError } from '../../core/contracts/exceptions.js';
import type { JournalDamage, JournalQuarantine, QuarantineUnknown, VgpuJournal } from '../../core/contracts/vgpu-journal.js';
import { NvStatus } from '../../core/firmware-abi/nv-status.js';

const ID_RE = /^vgpu-(\d+)$/;

/**
 * The first vGPU id and RM handle number the sequences may hand out: one above the highest any journal record
 * (good, damaged or quarantined) names. Handles count only in our namespace (top byte `namespace`), as the
 * sequence numbers are their low 24 bits.
 */
export function sequenceFloors(j: VgpuJournal, gpus: readonly string[], namespace: number): { vgpuId: number; rmHandle: number } {
  let id = 0;
  let handle = 0;
  const seeId = (v: string | undefined): void => {
    const m = v === undefined ? null : ID_RE.exec(v);
    if (m !== null) id = Math.max(id, Number(m[1]));
  };
  const seeHandle = (h: number | undefined): void => {
    if (h !== undefined && h >>> 24 === namespace) handle = Math.max(handle, h & 0xffffff);
  };
  for (const r of j.vgpus()) {
    seeId(r.id);
    seeHandle(r.clientHandle);
    seeHandle(r.client?.hClient);
  }
  for (const d of j.damaged()) {
    seeId(d.salvaged?.id);
    seeHandle(d.salvaged?.clientHandle);
    seeHandle(d.salvaged?.client?.hClient);
  }
  for (const q of j.quarantined()) {
    seeId(q.vgpuId);
    seeHandle(q.clientHandle);
    seeHandle(q.client?.hClient);
  }
  for (const bdf of gpus) for (const h of j.gpu(bdf)?.managerClients ?? []) seeHandle(h);
  return { vgpuId: id + 1, rmHandle: handle + 1 };
}

/** The quarantine of the VF a damaged vGPU record still names: what it may hold, and what is unknown. */
export function quarantineFromDamage(d: JournalDamage, gpu: string, vf: number): JournalQuarantine {
  const s = d.salvaged!;
  const unknown: QuarantineUnknown[] = [];
  if (s.typeId === undefined) unknown.push('type');
  if (s.guestFb === undefined) unknown.push('guest-fb');
  if (s.heap === undefined) unknown.push('heap');
  if (s.chids === undefined) unknown.push('chids');
  if (s.clientHandle === undefined && s.client === undefined) unknown.push('rm-client');
  return {
    gpu, vf, vgpuId: s.id, reason: `its journal record ${d.file} is unreadable (${d.reason})`, since: Date.now(),
    ...(s.typeId !== undefined ? { typeId: s.typeId } : {}),
    ...(s.placementId !== undefined ? { placementId: s.placementId } : {}),
    ...(s.autoSelected !== undefined ? { autoSelected: s.autoSelected } : {}),
    ...(s.chids !== undefined ? { chids: s.chids } : {}),
    ...(s.guestFb !== undefined ? { guestFb: s.guestFb } : {}),
    ...(s.heap !== undefined ? { heap: s.heap } : {}),
    ...(s.clientHandle !== undefined ? { clientHandle: s.clientHandle } : {}),
    ...(s.client !== undefined ? { client: s.client } : {}),
    unknown,
  };
}

/** The firmware refused a caller-chosen RM client handle because a client with it exists. */
export function isDuplicateHandle(e: unknown): boolean {
  return isVgpuError(e) && e.details['rmStatus'] === NvStatus.INSERT_DUPLICATE_NAME;
}
