/**
 * Keeps the journal in step with the vGPU manager through the bus: every 'vgpu:state' event rewrites that vGPU's
 * record from `service.get()`; 'destroyed' removes it.
 *
 * Limit (until the lifecycle plugin writes the journal itself): this records AFTER the transition is announced,
 * so a crash between the hardware step and the event loses that one transition. A write-ahead record (journal
 * first, then act) needs the lifecycle to await the journal inside create/destroy.
 */
import type { EventBus } from '../contracts/events.js';
import type { Logger } from '../contracts/logger.js';
import type { VgpuService } from '../contracts/vgpu-service.js';
import { recordFromInfo, type StateJournal } from './state-journal.js';

export function attachJournalRecorder(journal: StateJournal, bus: EventBus, service: VgpuService, logger?: Logger): () => void {
  return bus.on('vgpu:state', (e) => {
    const write = async (): Promise<void> => {
      if (e.to === 'destroyed') return journal.remove(e.vgpuId);
      let info;
      try {
        info = service.get(e.vgpuId);
      } catch {
        // Gone already (destroyed between the event and now): the 'destroyed' event removes it.
        return;
      }
      await journal.put(recordFromInfo({ ...info, state: e.to }));
    };
    write().catch((error: unknown) => logger?.error('journal write failed', { vgpu: e.vgpuId, to: e.to, error }));
  });
}
