/**
 * The quarantined VFs of one GPU: VFs whose state the journal lost (their vGPU record was damaged), so whatever the
 * device still runs there is unknown. A quarantined VF
 *  - holds what is known of it: its type selection (so its FB placement and instance count stay taken), its guest
 *    FB, heap and CHID run where the damaged record still names them;
 *  - is never handed to a create, and its type cannot be changed through the VF ABI (it counts as open);
 *  - blocks every create on its GPU while its heap, CHIDs or guest FB are unknown: a new vGPU could otherwise be
 *    placed over memory or channels a plugin task of the old one still uses;
 *  - is released only by an operator (`vgpuctl vf VF release`): SHUTDOWN and CLEANUP of the gfid's plugin task, the
 *    RM client freed if its handle is known, the guest FB scrubbed, the held resources freed, the quarantine record
 *    removed. Every step is idempotent, so a release that fails half-way can simply be repeated.
 */
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import type { ChannelRange } from '../../core/contracts/channels.js';
import type { FbRange } from '../../core/contracts/memory.js';
import type { JournalQuarantine, QuarantineUnknown, VgpuJournal } from '../../core/contracts/vgpu-journal.js';
import type { QuarantinedVf, VfReleaseReport } from '../../core/contracts/vgpu-service.js';
import { BLOCKING_UNKNOWNS, createsWaitForRelease } from '../../core/manager/quarantine-refusal.js';
import { stopPluginTask, type StepEnv } from './create-steps.js';

/** What may hide a live plugin task's memory or channels: creates on the GPU wait while one is unknown. */
const BLOCKING = BLOCKING_UNKNOWNS;

interface Held {
  entry: JournalQuarantine;
  guestFb?: FbRange;
  heap?: FbRange;
  chids?: ChannelRange;
  /** Resources what could not be held (an offset overlapping something live counts as unknown too). */
  unknown: Set<QuarantineUnknown>;
  /** The device side was torn down; only the journal record is left to remove (a retry does just that). */
  tornDown: boolean;
  releasing?: Promise<VfReleaseReport>;
}

export class VfQuarantine {
  private readonly held = new Map<number, Held>();

  constructor(private readonly env: StepEnv, private readonly journal: VgpuJournal | undefined, private readonly persistGpu: () => void) {}

  private get bdf(): string {
    return this.env.gpu.bdf;
  }

  has(vf: number): boolean {
    return this.held.has(vf);
  }

  /** Take the VF out of service and hold what is known of it. Returns the entry as held (unknowns widened). */
  hold(entry: JournalQuarantine): JournalQuarantine {
    const { gpu, mgr } = this.env;
    const vf = entry.vf;
    const owner = `quarantine-vf${vf}`;
    const h: Held = { entry, unknown: new Set(entry.unknown), tornDown: false };
    const log = (what: string, error: unknown): void => {
      h.unknown.add(what as QuarantineUnknown);
      this.env.logger.warn(`quarantined VF ${vf}: cannot hold its ${what}; counted as unknown`, { vf, error: (error as Error).message });
    };
    let sel = mgr.selectionOf(vf);
    if (sel === undefined && entry.typeId !== undefined) {
      const placementAt = entry.placementId ?? (entry.guestFb !== undefined ? this.placementAt(entry.guestFb.offset) : undefined);
      if (placementAt !== undefined) {
        try {
          sel = mgr.policy.select(vf, entry.typeId, { placementAt });
        } catch (error) {
          log('type', error);
        }
      }
    }
    if (sel === undefined) h.unknown.add('type');
    // The guest FB is where the record says, else where the VF's placement puts every vGPU of it.
    const fb = entry.guestFb ?? (sel !== undefined ? { offset: mgr.placementOffset(sel.placement), size: sel.fbBytes } : undefined);
    if (fb !== undefined) {
      try {
        h.guestFb = gpu.memory.reserve({ size: fb.size, at: fb.offset, align: mgr.vmmuSegmentSize, owner, label: 'guest-fb' });
        h.unknown.delete('guest-fb');
      } catch (error) {
        log('guest-fb', error);
      }
    } else h.unknown.add('guest-fb');
    if (entry.heap !== undefined) {
      try {
        h.heap = mgr.reserveHeap({ vf, size: entry.heap.size, at: entry.heap.offset, owner });
      } catch (error) {
        log('heap', error);
      }
    }
    if (entry.chids !== undefined) {
      try {
        h.chids = mgr.allocChids({ vf, count: entry.chids.count, at: entry.chids.offset, owner });
      } catch (error) {
        log('chids', error);
      }
    }
    if (entry.clientHandle === undefined && entry.client === undefined) h.unknown.add('rm-client');
    mgr.setVfOpen(vf, true); // its type cannot change through the VF ABI while quarantined (EBUSY)
    h.entry = { ...entry, unknown: [...h.unknown].sort() };
    this.held.set(vf, h);
    this.env.logger.error('VF quarantined: its state is unknown; no create will use it until an operator releases it', {
      vf, vgpu: entry.vgpuId, reason: entry.reason, unknown: h.entry.unknown,
    });
    return h.entry;
  }

  /** Throw VGPU_EBUSY if a create on `vf` must wait for a release (the VF itself, or an unknown elsewhere). */
  assertCreatable(vf: number, vfBdf: (vf: number) => string): void {
    const own = this.held.get(vf);
    if (own !== undefined) {
      throw new VgpuError(ErrorCode.Busy, `VF ${vf} of ${this.bdf} is quarantined: ${own.entry.reason}`, {
        hint: `see \`vgpuctl status\`; release it (tears down whatever the device still holds for it) with: vgpuctl vf ${vfBdf(vf)} release`,
        details: { gpu: this.bdf, vf, quarantined: true, vgpu: own.entry.vgpuId },
      });
    }
    const blocker = this.blocker();
    if (blocker !== undefined) throw createsWaitForRelease(this.bdf, { vf: blocker.entry.vf, vfBdf: vfBdf(blocker.entry.vf), unknown: blocker.entry.unknown });
  }

  /** True while some quarantined VF of this GPU blocks every create. */
  blocksCreates(): boolean {
    return this.blocker() !== undefined;
  }

  list(vfBdf: (vf: number) => string): QuarantinedVf[] {
    return [...this.held.values()].sort((a, b) => a.entry.vf - b.entry.vf).map((h) => ({
      gpu: this.bdf, vf: h.entry.vf, vfBdf: vfBdf(h.entry.vf), reason: h.entry.reason, since: h.entry.since,
      unknown: [...h.entry.unknown], blocksCreates: h.entry.unknown.some((u) => BLOCKING.includes(u)),
      ...(h.entry.vgpuId !== undefined ? { vgpuId: h.entry.vgpuId } : {}),
      ...(h.entry.typeId !== undefined ? { typeId: h.entry.typeId } : {}),
    }));
  }

  /** The operator's release (see the file comment). Resolves with what was done; a second call joins the first. */
  release(vf: number): Promise<VfReleaseReport> {
    const h = this.held.get(vf);
    if (h === undefined) {
      throw new VgpuError(ErrorCode.IllegalState, `VF ${vf} of ${this.bdf} is not quarantined: there is nothing to release`, {
        hint: 'a VF with a vGPU is freed by destroying the vGPU (vgpuctl destroy ID)', details: { gpu: this.bdf, vf },
      });
    }
    h.releasing ??= this.runRelease(h).finally(() => { delete h.releasing; });
    return h.releasing;
  }

  // ---------------------------------------------------------------------------------------------------------------

  private blocker(): Held | undefined {
    for (const h of this.held.values()) if (h.entry.unknown.some((u) => BLOCKING.includes(u))) return h;
    return undefined;
  }

  private placementAt(offset: bigint): number | undefined {
    const { base, segmentSize } = this.env.mgr.region;
    if (offset < base || (offset - base) % segmentSize !== 0n) return undefined;
    return Number((offset - base) / segmentSize);
  }

  private async runRelease(h: Held): Promise<VfReleaseReport> {
    const { gpu, mgr } = this.env;
    const vf = h.entry.vf;
    const gfid = vf + 1;
    const done: string[] = [];
    const rpc = { timeoutMs: this.env.timeouts.rpcMs };
    const id = h.entry.vgpuId ?? `quarantine-vf${vf}`;
    if (!h.tornDown) {
      // The plugin task first: nothing else may be freed while the firmware might still use it. On the vGPU's own
      // client when it is known (the task was bootloaded on it), else on the manager's.
      const client = h.entry.client ?? mgr.client;
      if (!(await stopPluginTask({ id, gfid }, this.env, client)) && !(client !== mgr.client && await stopPluginTask({ id, gfid }, this.env, mgr.client))) {
        throw new VgpuError(ErrorCode.Busy, `the firmware would not shut down the plugin task of gfid ${gfid} (VF ${vf} of ${this.bdf}); the VF stays quarantined`, {
          hint: 'retry the release; if it keeps failing, reset the GPU', details: { gpu: this.bdf, vf, gfid },
        });
      }
      done.push(`plugin task of gfid ${gfid} shut down and cleaned up`);
      const hClient = h.entry.client?.hClient ?? h.entry.clientHandle;
      if (hClient !== undefined) {
        try {
          await gpu.firmware.freeClient(h.entry.client ?? { hClient, hDevice: 0, hSubdevice: 0 }, rpc);
          done.push(`RM client 0x${hClient.toString(16)} freed`);
        } catch (error) {
          this.env.logger.warn('release: freeing the journalled RM client failed', { vf, hClient, error: (error as Error).message });
        }
      } else done.push('RM client unknown: not freed (the firmware frees it at the next GPU reset)');
      const scrubbed = await this.scrub(h, id);
      if (scrubbed !== undefined) done.push(scrubbed);
      this.freeHeld(h);
      h.tornDown = true;
    }
    // The journal record goes last: a crash before this point finds the VF still quarantined and releases again.
    await this.journal?.removeQuarantine(h.entry.gpu, vf);
    this.held.delete(vf);
    mgr.setVfOpen(vf, false);
    if (h.entry.autoSelected !== false) {
      // Its create had selected the type (or nobody knows): the release gives the VF back without one.
      try {
        mgr.policy.deselect(vf);
      } catch (error) {
        this.env.logger.warn('release: could not deselect the VF type', { vf, error: (error as Error).message });
      }
    }
    this.persistGpu();
    this.env.logger.info('quarantined VF released', { vf, vgpu: h.entry.vgpuId, done });
    return { gpu: this.bdf, vf, gfid, ...(h.entry.vgpuId !== undefined ? { vgpuId: h.entry.vgpuId } : {}), done };
  }

  /** Scrub the VF's guest FB (it held a tenant's data) with a CHID run of its own or a borrowed one. */
  private async scrub(h: Held, id: string): Promise<string | undefined> {
    const { gpu, mgr, scrubber } = this.env;
    let range = h.guestFb;
    const sel = mgr.selectionOf(h.entry.vf);
    if (range === undefined && sel !== undefined) {
      try {
        range = h.guestFb = gpu.memory.reserve({ size: sel.fbBytes, at: mgr.placementOffset(sel.placement), align: mgr.vmmuSegmentSize, owner: id, label: 'guest-fb' });
      } catch (error) {
        this.env.logger.warn('release: cannot reserve the VF placement to scrub it', { vf: h.entry.vf, error: (error as Error).message });
      }
    }
    if (range === undefined) return 'guest FB unknown: nothing scrubbed here (every create scrubs its FB first)';
    if (scrubber === undefined) {
      this.env.noScrubber('release of a quarantined VF');
      return 'no scrubber bound: guest FB not scrubbed';
    }
    let borrowed: ChannelRange | undefined;
    try {
      const chids = h.chids ?? (borrowed = gpu.channels.alloc(sel !== undefined ? mgr.chidsFor(sel.type) : 1, id));
      await scrubber.scrub({
        gpu, range, chids, vgpuId: id, reason: 'destroy', timeoutMs: this.env.timeouts.scrubMs, scratchBelow: mgr.region.base,
      });
      return `${range.size} bytes of guest FB scrubbed`;
    } catch (error) {
      // The FB goes back to the pool anyway: the next create scrubs it before a guest sees it.
      this.env.logger.warn('release: the scrub of the guest FB failed (the next create scrubs it)', { vf: h.entry.vf, error: (error as Error).message });
      return 'guest FB scrub failed (the next create on it scrubs it first)';
    } finally {
      if (borrowed !== undefined) gpu.channels.free(borrowed);
    }
  }

  private freeHeld(h: Held): void {
    const { gpu } = this.env;
    if (h.heap !== undefined) gpu.memory.free(h.heap);
    if (h.guestFb !== undefined) gpu.memory.free(h.guestFb);
    if (h.chids !== undefined) gpu.channels.free(h.chids);
    delete h.heap;
    delete h.guestFb;
    delete h.chids;
  }
}
