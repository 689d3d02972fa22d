/**
 * VF listing and host events (core/contracts/hal.ts `vfs`, `onHostEvent`): the VFs are the enabled ones, numbered
 * as SR-IOV numbers them (VF n at the PF's routing ID + First VF Offset + n × VF Stride, gfid = n + 1); a host event
 * raised on the device reaches every listener, an SR-IOV reconfigure changes what vfs() lists, and an unsubscribed
 * listener hears nothing more.
 */
import type { HostEventKind } from '../../core/contracts/events.js';
import type { PhysicalGpu, VirtualFunction } from '../../core/contracts/hal.js';
import type { CheckContext } from '../check-context.js';
import { defineCheck } from '../check.js';

type HostEvent = { kind: HostEventKind; numVfs?: number };

/** "dddd:bb:dd.f" → routing ID (bus << 8 | device << 3 | function) and domain. */
function rid(bdf: string): { domain: number; rid: number } | undefined {
  const m = /^([0-9a-f]{4}):([0-9a-f]{2}):([0-1][0-9a-f])\.([0-7])$/i.exec(bdf);
  if (m === null) return undefined;
  return { domain: parseInt(m[1]!, 16), rid: (parseInt(m[2]!, 16) << 8) | (parseInt(m[3]!, 16) << 3) | parseInt(m[4]!, 16) };
}

function bdfOf(domain: number, r: number): string {
  const h = (n: number, w: number): string => n.toString(16).padStart(w, '0');
  return `${h(domain, 4)}:${h((r >> 8) & 0xff, 2)}:${h((r >> 3) & 0x1f, 2)}.${r & 7}`;
}

function listVfs(ctx: CheckContext, gpu: PhysicalGpu): VirtualFunction[] {
  return ctx.attemptSync('vfs()', () => gpu.vfs());
}

export const vfChecks = [
  defineCheck('vfs', 'listing', 'vfs() lists the enabled VFs with index n, gfid n + 1 and the BDF SR-IOV gives VF n', async (ctx) => {
    const gpu = await ctx.open();
    const d = ctx.device;
    const vfs = listVfs(ctx, gpu);
    ctx.expect(vfs.length <= gpu.config.totalVfs, () => `vfs() lists ${vfs.length} VFs, more than TotalVFs ${gpu.config.totalVfs}`);
    if (d.sriov !== undefined) {
      ctx.expect(vfs.length === d.sriov.numVfs, () => `vfs() lists ${vfs.length} VFs, the device has NumVFs ${d.sriov!.numVfs} enabled`);
    }
    ctx.expect(vfs.length > 0, () => 'vfs() lists no VF: the device has SR-IOV disabled, and no vGPU can be created on it');
    const pf = rid(gpu.bdf);
    const seen = new Set<string>();
    vfs.forEach((vf, n) => {
      ctx.expect(vf.index === n && vf.gfid === n + 1, () => `VF #${n} of vfs() has index ${vf.index} and gfid ${vf.gfid} (want ${n} and ${n + 1}; gfid 0 is the PF)`);
      ctx.expect(Number.isInteger(vf.deviceId) && vf.deviceId > 0 && vf.deviceId <= 0xffff, () => `VF ${n} has device id ${String(vf.deviceId)}`);
      ctx.expect(!seen.has(vf.bdf) && vf.bdf !== gpu.bdf, () => `VF ${n} has the BDF ${vf.bdf} of another function`);
      seen.add(vf.bdf);
      if (pf !== undefined && d.sriov !== undefined) {
        // PCIe base spec, SR-IOV capability: VF n's routing ID is the PF's + First VF Offset + n × VF Stride.
        const want = bdfOf(pf.domain, pf.rid + d.sriov.firstVfOffset + n * d.sriov.vfStride);
        ctx.expect(vf.bdf === want, () => `VF ${n} is at ${vf.bdf}; First VF Offset ${d.sriov!.firstVfOffset} and VF Stride ${d.sriov!.vfStride} put it at ${want}`);
      }
    });
  }),

  defineCheck('vfs', 'host-events', 'host events raised on the device reach every onHostEvent listener in order; SR-IOV reconfigure changes vfs(); unsubscribe works', async (ctx) => {
    const inject = ctx.need(ctx.fixture.hostEvents, 'host-event injection (hostEvents.raise)');
    const gpu = await ctx.open();
    const total = gpu.config.totalVfs;
    const original = listVfs(ctx, gpu).length;
    const a: HostEvent[] = [];
    const b: HostEvent[] = [];
    let wake: (() => void) | undefined;
    const offA = ctx.attemptSync('onHostEvent()', () => gpu.onHostEvent((e) => { a.push({ ...e }); }));
    const offB = ctx.attemptSync('a second onHostEvent()', () => gpu.onHostEvent((e) => { b.push({ ...e }); wake?.(); }));
    ctx.defer('unsubscribing the host-event listeners', () => { offA(); offB(); });
    // A failure half-way must not leave the device with fewer VFs for the checks after this one.
    ctx.defer(`restoring NumVFs to ${original}`, async () => {
      if (gpu.vfs().length !== original) await inject.raise(ctx.bdf, { kind: 'sriov-configure', numVfs: original });
    });
    const raise = async (e: HostEvent): Promise<void> => {
      const count = b.length;
      const what = `${e.kind}${e.numVfs !== undefined ? ` (numVfs ${e.numVfs})` : ''}`;
      await ctx.attempt(`hostEvents.raise(${what})`, () => inject.raise(ctx.bdf, e));
      await ctx.waitFor(`the host event ${what} raised on the device to reach onHostEvent`, (done) => {
        wake = () => { if (b.length > count) done(undefined); };
        wake();
      });
      const got = b[count]!;
      ctx.expect(got.kind === e.kind && (e.numVfs === undefined || got.numVfs === e.numVfs),
        () => `the device raised ${what}; onHostEvent received ${JSON.stringify(got)}`);
    };

    const fewer = original > 1 ? Math.min(2, original - 1) : Math.min(total, 1);
    await raise({ kind: 'sriov-configure', numVfs: fewer });
    ctx.expect(a.length === 1 && a[0]!.kind === 'sriov-configure', () => `of two onHostEvent listeners, the first received ${JSON.stringify(a)}`);
    const now = listVfs(ctx, gpu).length;
    ctx.expect(now === fewer, () => `after sriov-configure to ${fewer} VFs, vfs() lists ${now}`);
    offA();
    await raise({ kind: 'suspend' });
    await raise({ kind: 'resume' });
    ctx.expect(a.length === 1, () => `a host-event listener kept receiving events after its unsubscribe function was called: ${JSON.stringify(a.slice(1))}`);
    await raise({ kind: 'sriov-configure', numVfs: original });
    const back = listVfs(ctx, gpu).length;
    ctx.expect(back === original, () => `after sriov-configure back to ${original} VFs, vfs() lists ${back}`);
  }),
];
