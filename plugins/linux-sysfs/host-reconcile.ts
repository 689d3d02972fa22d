/**
 * Start-up reconcile of the host VF journal with sysfs (core/contracts/host-vf-journal.ts): for every record of a
 * GPU the backend found, what the VF's `current_vgpu_type` says now decides —
 *
 *   record     VF holds its type        VF holds 0                 VF holds another type / VF gone
 *   set        kept                     changed (reported, kept)   changed (reported, kept, never written)
 *   setting    finished → set           rolled back (dropped)      not ours: dropped, shows as not adopted
 *   clearing   finished: 0 written      finished (dropped)         changed (reported, kept as set)
 *
 * A 'clearing' record is finished by writing 0 — vgpud's own unfinished destroy of its own vGPU; if the kernel
 * refuses (a VM opened the VF meanwhile) the vGPU stays, as 'set'. Nothing else is written: a type someone else set
 * or changed is left alone and reported (status, log, metric) until an operator adopts it or destroys the record.
 * Records of GPUs the backend did not find stay in the journal for a later start.
 */
import type { HostVfJournal, HostVfRecord } from '../../core/contracts/host-vf-journal.js';
import type { Logger } from '../../core/contracts/logger.js';

export interface HostReconcileReport {
  kept: string[];
  finished: string[];
  rolledBack: string[];
  changed: { id: string; vfBdf: string; expectedTypeId: number; foundTypeId: number | null }[];
  /** Records of GPUs not found at this start (left in the journal). */
  absent: string[];
}

export interface ReconcileIo {
  /** The GPUs found now. */
  gpus: ReadonlySet<string>;
  /** The VF's current_vgpu_type, or null when the VF (or its nvidia/ group) is gone. */
  current(vfBdf: string): number | null;
  /** Write 0 to the VF's current_vgpu_type (rejects with the kernel's error). */
  clear(vfBdf: string): Promise<void>;
}

export async function reconcileHostVfs(journal: HostVfJournal, io: ReconcileIo, log: Logger): Promise<HostReconcileReport> {
  const report: HostReconcileReport = { kept: [], finished: [], rolledBack: [], changed: [], absent: [] };
  const changed = (r: HostVfRecord, found: number | null): void => {
    report.changed.push({ id: r.id, vfBdf: r.vfBdf, expectedTypeId: r.typeId, foundTypeId: found });
    log.warn('a VF\'s vGPU type was changed behind vgpud\'s back; left alone', {
      vgpu: r.id, vf: r.vfBdf, expectedType: r.typeId, foundType: found, hint: 'vgpuctl adopt takes the VF over as it is; vgpuctl destroy forgets a vGPU whose VF reads 0',
    });
  };
  const settle = async (r: HostVfRecord, state: HostVfRecord['state']): Promise<void> => journal.put({ ...r, state, updatedAt: Date.now() });
  for (const r of journal.records()) {
    if (!io.gpus.has(r.gpu)) {
      report.absent.push(r.id);
      continue;
    }
    const cur = io.current(r.vfBdf);
    if (r.state === 'set') {
      if (cur === r.typeId) report.kept.push(r.id);
      else changed(r, cur);
    } else if (r.state === 'setting') {
      if (cur === r.typeId) {
        await settle(r, 'set');
        report.finished.push(r.id);
        log.info('a create a crash interrupted had reached the kernel; kept', { vgpu: r.id, vf: r.vfBdf, type: r.typeId });
      } else {
        await journal.remove(r.id);
        report.rolledBack.push(r.id);
        log.warn('a create a crash interrupted never reached the kernel; dropped', { vgpu: r.id, vf: r.vfBdf, found: cur });
      }
    } else if (cur === 0 || cur === null) {
      await journal.remove(r.id);
      report.finished.push(r.id);
    } else if (cur === r.typeId) {
      try {
        await io.clear(r.vfBdf);
        await journal.remove(r.id);
        report.finished.push(r.id);
        log.info('finished a destroy a crash interrupted', { vgpu: r.id, vf: r.vfBdf });
      } catch (error) {
        await settle(r, 'set');
        report.kept.push(r.id);
        log.warn('could not finish a destroy a crash interrupted; the vGPU stays', { vgpu: r.id, vf: r.vfBdf, error });
      }
    } else {
      await settle(r, 'set');
      changed(r, cur);
    }
  }
  return report;
}
