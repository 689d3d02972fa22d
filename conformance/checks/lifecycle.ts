/**
 * The lifecycle's create order on this HAL, end to end: the daemon's own plugins (lifecycle + copy-engine scrub)
 * in a container with the HAL as its only HAL plugin probe and boot the device, bring up the vGPU manager (metadata,
 * type upload), create two vGPUs of the smallest type in the upstream create order (register → CHIDs → guest FB →
 * scrub → management heap → RM client → bootload → RPC setup → ready) and destroy them in the reverse order. After
 * the destroys the books are what they were before the first create (FB ranges, CHIDs, the firmware's RM clients)
 * and the guest data the kit wrote into each vGPU's FB is gone.
 */
import { dirname } from 'node:path';
import { ContainerModule } from 'inversify';
import { createContainer } from '../../core/container.js';
import type { BusEvents, EventBus } from '../../core/contracts/events.js';
import type { Hal, PciBus, PhysicalGpu } from '../../core/contracts/hal.js';
import type { VgpudPlugin } from '../../core/contracts/plugin.js';
import type { VgpuInfo, VgpuService } from '../../core/contracts/vgpu-service.js';
import { TOKENS } from '../../core/tokens.js';
import { ensureDefaultMetadata } from '../../metadata/default-metadata.js';
import { CREATE_STEPS } from '../../plugins/lifecycle/create-steps.js';
import { createLifecyclePlugin } from '../../plugins/lifecycle/lifecycle-plugin.js';
import { VgpuServiceImpl } from '../../plugins/lifecycle/vgpu-service-impl.js';
import { createRouterPlugin } from '../../plugins/router/router-plugin.js';
import { createScrubPlugin } from '../../plugins/scrub/scrub-plugin.js';
import type { CheckContext } from '../check-context.js';
import { defineCheck } from '../check.js';
import { describeError, differing, hex, patternBytes, plural, size, span } from '../describe.js';

const PAGE = 4096;

/** A vGPU as the daemon's own lifecycle reports it on a GSP HAL: with its guest FB and CHIDs (optional in the
 *  contract, for backends that do not place vGPUs themselves). */
type Placed = VgpuInfo & { fb: NonNullable<VgpuInfo['fb']>; chids: NonNullable<VgpuInfo['chids']> };

function placed(ctx: CheckContext, v: VgpuInfo): Placed {
  ctx.expect(v.fb !== undefined && v.chids !== undefined, () => `create of ${v.id} reported no guest FB or CHIDs placement`);
  return v as Placed;
}
const GUEST_DATA = 0x6e75_6c6c;

/** The fixture's HAL, recording every GPU it opens (and running the fixture's onOpen on it). */
function recordingHal(ctx: CheckContext, opened: PhysicalGpu[]): Hal {
  const inner = ctx.hal;
  return {
    get id() { return inner.id; },
    get generation() { return inner.generation; },
    get claims() { return inner.claims; },
    supports: (d) => inner.supports(d),
    open: async (d, o) => {
      const gpu = await inner.open(d, o);
      opened.push(gpu);
      // Stopping the lifecycle leaves its GPUs open (a daemon restart must not touch running vGPUs): the kit
      // closes them after the check, also when the start failed half-way.
      ctx.track(gpu);
      await ctx.fixture.onOpen?.(gpu);
      return gpu;
    },
  };
}

/** The plugin that puts the fixture's HAL and ONLY the device under test into the container. */
function halPlugin(hal: Hal, bus: PciBus, bdf: string): VgpudPlugin {
  const onlyOurs: PciBus = { name: `${bus.name} (conformance)`, list: async () => (await bus.list()).filter((d) => d.bdf === bdf) };
  return {
    manifest: { name: 'conformance-hal', version: '1.0.0', description: 'the HAL under test', provides: ['hal', 'pci-bus'], requires: [] },
    module: new ContainerModule(({ bind }) => {
      bind<Hal>(TOKENS.Hal).toConstantValue(hal);
      bind<PciBus>(TOKENS.PciBus).toConstantValue(onlyOurs);
    }),
  };
}

function ranges(gpu: PhysicalGpu): string[] {
  return gpu.memory.list().map((r) => `${r.label}/${r.owner} ${span(r.offset, r.size)}`);
}

function chids(gpu: PhysicalGpu): string[] {
  return gpu.channels.list().map((r) => `${r.owner} [${r.offset}, +${r.count})`);
}

export const lifecycleChecks = [
  defineCheck('lifecycle', 'create-destroy', 'the lifecycle creates two vGPUs in the upstream order and destroys them, leaving the books clean and the guest FB scrubbed', async (ctx) => {
    const opened: PhysicalGpu[] = [];
    const metadataDir = ctx.fixture.metadataDir ?? dirname(await ctx.attempt('compiling the default vGPU type catalogue', () => ensureDefaultMetadata()));
    const s = ctx.settings;
    const created = await ctx.attempt('building a container with the lifecycle and scrub plugins', () => createContainer({
      config: { timeouts: { rpcMs: s.rpcTimeoutMs, bootloadMs: s.waitMs, scrubMs: s.scrubTimeoutMs }, plugins: { scrub: { hostFallback: true } } },
      logger: ctx.logger,
      plugins: [halPlugin(recordingHal(ctx, opened), ctx.fixture.bus, ctx.bdf), createScrubPlugin(), createLifecyclePlugin({ init: { metadataDir } }), createRouterPlugin()],
      startTimeoutMs: s.callMs,
      stopTimeoutMs: s.callMs,
    }));
    let stopped = false;
    ctx.defer('stopping the container', async () => { if (!stopped) await created.host.stop(); });
    await ctx.attempt('starting the lifecycle plugin (probe, boot, vGPU manager bring-up)', () => created.host.start());
    const service = created.container.get<VgpuService>(TOKENS.VgpuManager);
    const impl = created.container.get(VgpuServiceImpl);
    const failure = impl.probeFailures.find((f) => f.device.bdf === ctx.bdf);
    if (failure !== undefined) return ctx.fail(`the lifecycle's probe of ${ctx.bdf} failed at step '${failure.step}': ${describeError(failure.error)}`);
    const summary = service.gpus().find((g) => g.bdf === ctx.bdf);
    if (summary === undefined) return ctx.fail(`the lifecycle did not bring ${ctx.bdf} up (its vGPU manager failed: see the log lines of ${ctx.bdf})`);
    ctx.expect(summary.state === 'ready', () => `the lifecycle reports ${ctx.bdf} as '${summary.state}', not 'ready'`);
    const gpu = opened.at(-1)!;

    const types = service.types(ctx.bdf).filter((t) => t.available >= 2);
    if (types.length === 0) {
      ctx.fail(`no vGPU type can be created twice on the empty ${ctx.bdf}: types() lists ${JSON.stringify(service.types(ctx.bdf, { all: true }).map((t) => [t.name, t.available]))} ` +
        `(metadata in ${metadataDir})`);
    }
    const prof = (t: (typeof types)[number]): bigint => t.profileFbBytes ?? t.fbBytes ?? 0n;
    const type = [...types].sort((x, y) => (prof(x) < prof(y) ? -1 : prof(x) > prof(y) ? 1 : x.id - y.id))[0]!;

    const bus = created.container.get<EventBus>(TOKENS.EventBus);
    const steps: Parameters<BusEvents['vgpu:step']>[0][] = [];
    const states: Parameters<BusEvents['vgpu:state']>[0][] = [];
    const offs = [bus.on('vgpu:step', (e) => { steps.push(e); }), bus.on('vgpu:state', (e) => { states.push(e); })];
    ctx.defer('unsubscribing from the bus', () => { for (const off of offs) off(); });

    const fbBefore = ranges(gpu);
    const chidsBefore = chids(gpu);
    const usedBefore = gpu.memory.stats().used;
    const clientsBefore = ctx.fixture.inspect === undefined ? undefined : await ctx.attempt('inspect.rmClients()', () => ctx.fixture.inspect!.rmClients(ctx.bdf));

    const vgpus: Placed[] = [];
    for (let i = 0; i < 2; i++) {
      const v = placed(ctx, await ctx.attempt(`create of a ${type.name} vGPU (#${i + 1}) on ${ctx.bdf}`, () => service.create({ gpu: ctx.bdf, type: type.id }), s.callMs));
      vgpus.push(v);
      ctx.expect(v.state === 'ready', () => `create of ${v.id} resolved in state '${v.state}', not 'ready'`);
      const order = steps.filter((e) => e.vgpuId === v.id && e.phase === 'done').map((e) => e.step);
      ctx.expect(order.join() === CREATE_STEPS.join(), () => `create of ${v.id} completed the steps ${order.join(' → ')}, not the upstream order ${CREATE_STEPS.join(' → ')}`);
      const fb = gpu.memory.list().find((r) => r.offset === v.fb.offset);
      ctx.expect(fb !== undefined && fb.size >= v.fb.size && fb.owner === v.id,
        () => `${v.id}'s guest FB ${span(v.fb.offset, v.fb.size)} is not an FB range of ${v.id} in memory.list(): ${ranges(gpu).join('; ')}`);
      ctx.expect(gpu.channels.list().some((r) => r.offset === v.chids.offset && r.count === v.chids.count),
        () => `${v.id}'s CHIDs [${v.chids.offset}, +${v.chids.count}) are not a range in channels.list(): ${chids(gpu).join('; ')}`);
      // Guest data in the first and the last page of the guest FB: the destroy's scrub must remove it.
      const map = ctx.attemptSync(`memory.map() of ${v.id}'s guest FB`, () => gpu.memory.map(fb!));
      ctx.attemptSync(`writing guest data into ${v.id}'s FB`, () => {
        map.write(0, patternBytes(GUEST_DATA, PAGE));
        map.write(Number(v.fb.size) - PAGE, patternBytes(GUEST_DATA, PAGE));
      });
      map.unmap();
    }
    const [v1, v2] = vgpus as [Placed, Placed];
    ctx.expect(v1.vf !== v2.vf && v1.gfid !== v2.gfid, () => `both vGPUs got VF ${v1.vf} / gfid ${v1.gfid}`);
    ctx.expect(v1.fb.offset + v1.fb.size <= v2.fb.offset || v2.fb.offset + v2.fb.size <= v1.fb.offset,
      () => `the two vGPUs' guest FBs overlap: ${span(v1.fb.offset, v1.fb.size)} and ${span(v2.fb.offset, v2.fb.size)}`);
    ctx.expect(v1.chids.offset + v1.chids.count <= v2.chids.offset || v2.chids.offset + v2.chids.count <= v1.chids.offset,
      () => `the two vGPUs' CHID ranges overlap: [${v1.chids.offset}, +${v1.chids.count}) and [${v2.chids.offset}, +${v2.chids.count})`);

    for (const v of [v2, v1]) {
      await ctx.attempt(`destroy of ${v.id}`, () => service.destroy(v.id), s.callMs);
      const undone = steps.filter((e) => e.vgpuId === v.id && e.phase === 'undo').map((e) => e.step);
      const want = [...CREATE_STEPS].reverse();
      ctx.expect(undone.join() === want.join(), () => `destroy of ${v.id} undid the steps ${undone.join(' → ')}, not ${want.join(' → ')}`);
      const seen = states.filter((e) => e.vgpuId === v.id).map((e) => e.to);
      ctx.expect(seen.join() === 'creating,ready,stopping,destroyed', () => `${v.id} went through the states ${seen.join(' → ')}`);
      for (const at of [v.fb.offset, v.fb.offset + v.fb.size - BigInt(PAGE)]) {
        let bytes: Uint8Array;
        let where: string;
        if (ctx.fixture.deviceView !== undefined) {
          where = "in the device's view";
          bytes = await ctx.attempt(`deviceView.readFb(${hex(at)}, ${PAGE})`, () => ctx.fixture.deviceView!.readFb(ctx.bdf, at, PAGE));
        } else {
          where = 'through a host mapping of the freed page';
          const probe = ctx.attemptSync(`memory.reserve(4 KiB at ${hex(at)}) after the destroy`, () => gpu.memory.reserve({ size: BigInt(PAGE), at, owner: 'conformance', label: 'probe' }));
          const m = gpu.memory.map(probe);
          bytes = Uint8Array.from(m.read(0, PAGE));
          gpu.memory.free(probe);
        }
        const left = differing(bytes, () => 0);
        ctx.expect(left.count === 0, () => `destroy of ${v.id} left guest data in its FB: ${plural(left.count, 'non-zero byte')} in the page at FB offset ${hex(at)}, ` +
          `first at ${hex(at + BigInt(left.first))} (${where})`);
      }
    }
    const fbAfter = ranges(gpu);
    ctx.expect(fbAfter.join() === fbBefore.join(), () => `after create + destroy the FB ranges are [${fbAfter.join('; ')}], before them [${fbBefore.join('; ')}]`);
    ctx.expect(gpu.memory.stats().used === usedBefore, () => `after create + destroy ${size(gpu.memory.stats().used)} of FB is used, ${size(usedBefore)} before`);
    const chidsAfter = chids(gpu);
    ctx.expect(chidsAfter.join() === chidsBefore.join(), () => `after create + destroy the CHID ranges are [${chidsAfter.join('; ')}], before them [${chidsBefore.join('; ')}]`);
    if (clientsBefore !== undefined) {
      const after = await ctx.attempt('inspect.rmClients()', () => ctx.fixture.inspect!.rmClients(ctx.bdf));
      ctx.expect(after === clientsBefore, () => `after create + destroy the firmware holds ${after} RM clients, ${clientsBefore} before`);
    }
    stopped = true;
    await ctx.attempt('stopping the container', () => created.host.stop());
  }),
];
