/**
 * Identification and claim (core/contracts/hal.ts `Hal`): the HAL says which PCI ids it drives, accepts its own
 * devices, refuses everything else with VGPU_ENODEV before touching it, and opens a device into a PhysicalGpu whose
 * hardware configuration agrees with the device and with its own parts.
 */
import { ErrorCode } from '../../core/contracts/exceptions.js';
import type { HalCapability, PciDeviceInfo, PhysicalGpu } from '../../core/contracts/hal.js';
import type { CheckContext } from '../check-context.js';
import { defineCheck } from '../check.js';
import { DOTTED_VERSION, hex, pciId, size } from '../describe.js';

// Every member of the HalCapability union: `satisfies` makes the compiler refuse this table when the contract grows a
// capability the kit does not know yet (a type has no runtime list to read).
const CAPABILITY_TABLE = {
  'gsp-client-alloc': true, 'rm-alloc': true, 'chid-alloc': true, 'fb-mem-alloc': true, 'fb-mem-bar1-map': true,
  'chan-mem-map': true, 'ce-chan-alloc': true, 'pushbuf-submit': true, 'pf-event-delivery': true, 'suspend-resume': true,
  'gpu-reset': true, 'sriov-configure': true,
} as const satisfies Record<HalCapability, true>;
const KNOWN_CAPS: ReadonlySet<string> = new Set(Object.keys(CAPABILITY_TABLE));

const isU16 = (n: unknown): boolean => Number.isInteger(n) && (n as number) >= 0 && (n as number) <= 0xffff;

function claimed(ctx: CheckContext, vendorId: number, deviceId: number): boolean {
  return ctx.hal.claims.some((c) => c.vendorId === vendorId && c.deviceId === deviceId);
}

/** A device id of the device's vendor that the HAL does not claim: 0x1234 unless claimed, then upwards. */
function unclaimedId(ctx: CheckContext): number {
  let id = 0x1234;
  while (claimed(ctx, ctx.device.vendorId, id)) id = (id + 1) & 0xffff;
  return id;
}

/** `open()` must refuse `device` with VGPU_ENODEV; a GPU it opened anyway is closed again. */
async function refusesToOpen(ctx: CheckContext, device: PciDeviceInfo, what: string): Promise<void> {
  await ctx.rejects(`open() of ${what}`, () => ctx.hal.open(device, { logger: ctx.logger, rpcTimeoutMs: ctx.settings.rpcTimeoutMs }),
    [ErrorCode.UnsupportedDevice], { onSuccess: (gpu) => ctx.track(gpu as PhysicalGpu) });
}

export const identificationChecks = [
  defineCheck('identification', 'names-and-claims', 'the HAL has an id, a generation and a list of claimed PCI ids', async (ctx) => {
    const h = ctx.hal;
    ctx.expect(typeof h.id === 'string' && h.id.length > 0, () => `hal.id is ${JSON.stringify(h.id)}, not a non-empty string`);
    ctx.expect(typeof h.generation === 'string' && h.generation.length > 0, () => `hal.generation is ${JSON.stringify(h.generation)}, not a non-empty string`);
    ctx.expect(Array.isArray(h.claims) && h.claims.length > 0, () => `hal.claims is empty: the HAL claims no PCI id`);
    for (const c of h.claims) {
      ctx.expect(isU16(c.vendorId) && isU16(c.deviceId), () => `hal.claims holds ${JSON.stringify(c)}, not a pair of 16-bit PCI ids`);
    }
  }),

  defineCheck('identification', 'supports-own-devices', 'supports() accepts every device of the fixture, and each is in claims', async (ctx) => {
    for (const d of ctx.fixture.devices) {
      const id = pciId(d.vendorId, d.deviceId);
      ctx.expect(ctx.attemptSync(`supports(${d.bdf})`, () => ctx.hal.supports(d)) === true,
        () => `supports() of the fixture's device ${d.bdf} (${id}) returned false`);
      ctx.expect(claimed(ctx, d.vendorId, d.deviceId), () => `the HAL supports ${d.bdf} (${id}) but does not list ${id} in hal.claims`);
    }
  }),

  defineCheck('identification', 'refuses-unknown-id', 'an unclaimed PCI id is not supported, and open() throws VGPU_ENODEV', async (ctx) => {
    const id = unclaimedId(ctx);
    const unknown: PciDeviceInfo = { ...ctx.device, deviceId: id };
    ctx.expect(ctx.attemptSync(`supports(${pciId(unknown.vendorId, id)})`, () => ctx.hal.supports(unknown)) === false,
      () => `supports() of ${ctx.bdf} with the unknown device id ${hex(id)} returned true`);
    await refusesToOpen(ctx, unknown, `an unknown device id ${hex(id)}`);
    const otherVendor: PciDeviceInfo = { ...ctx.device, vendorId: ctx.device.vendorId === 0x1002 ? 0x8086 : 0x1002 };
    if (!claimed(ctx, otherVendor.vendorId, otherVendor.deviceId)) {
      ctx.expect(ctx.hal.supports(otherVendor) === false,
        () => `supports() of device id ${hex(otherVendor.deviceId)} under vendor ${hex(otherVendor.vendorId)} returned true: the vendor id was not checked`);
      await refusesToOpen(ctx, otherVendor, `vendor ${hex(otherVendor.vendorId)}'s device ${hex(otherVendor.deviceId)}`);
    }
  }),

  defineCheck('identification', 'refuses-foreign-transport', 'a device listed by a bus the HAL cannot reach is not supported, and open() throws VGPU_ENODEV', async (ctx) => {
    const foreign: PciDeviceInfo = { ...ctx.device, transport: { kind: 'conformance-kit-foreign-bus' } };
    ctx.expect(ctx.hal.supports(foreign) === false,
      () => `supports() of ${ctx.bdf} behind the unknown transport 'conformance-kit-foreign-bus' returned true: the HAL would open a device it cannot reach`);
    await refusesToOpen(ctx, foreign, `${ctx.bdf} behind the unknown transport 'conformance-kit-foreign-bus'`);
  }),

  defineCheck('identification', 'hardware-config', 'open() yields a PhysicalGpu whose hardware config agrees with the device and its parts', async (ctx) => {
    const d = ctx.device;
    const gpu = await ctx.open();
    const c = gpu.config;
    ctx.expect(gpu.bdf === d.bdf, () => `the opened GPU's bdf is ${gpu.bdf}, the device's ${d.bdf}`);
    ctx.expect(gpu.halId === ctx.hal.id, () => `the opened GPU's halId is '${gpu.halId}', the HAL's id '${ctx.hal.id}'`);
    ctx.expect(c.generation === ctx.hal.generation, () => `config.generation is '${c.generation}', hal.generation '${ctx.hal.generation}'`);
    ctx.expect(typeof c.name === 'string' && c.name.length > 0, () => 'config.name (the marketing name) is empty');
    ctx.expect(c.pci.vendorId === d.vendorId && c.pci.deviceId === d.deviceId,
      () => `config.pci is ${pciId(c.pci.vendorId, c.pci.deviceId)}, the device is ${pciId(d.vendorId, d.deviceId)}`);
    ctx.expect(c.fbBytes > 0n && c.fbBytes === gpu.memory.totalBytes,
      () => `config.fbBytes is ${size(c.fbBytes)} but memory.totalBytes is ${size(gpu.memory.totalBytes)}`);
    ctx.expect(Number.isInteger(c.channelCount) && c.channelCount > 0 && c.channelCount === gpu.channels.total,
      () => `config.channelCount is ${c.channelCount} but channels.total is ${gpu.channels.total}`);
    ctx.expect(Number.isInteger(c.totalVfs) && c.totalVfs > 0, () => `config.totalVfs is ${c.totalVfs}: a vGPU host needs SR-IOV VFs`);
    if (d.sriov !== undefined) {
      ctx.expect(c.totalVfs === d.sriov.totalVfs, () => `config.totalVfs is ${c.totalVfs}, the device's SR-IOV TotalVFs ${d.sriov!.totalVfs}`);
    }
    ctx.expect(DOTTED_VERSION.test(c.firmwareFloor), () => `config.firmwareFloor '${c.firmwareFloor}' is not a dotted version like 570.144`);
    for (const e of c.engines) {
      ctx.expect(Number.isInteger(e) && e >= 0 && e < c.engineBitmap.length * 8,
        () => `engine ${e} of config.engines does not fit the ${c.engineBitmap.length}-byte engine bitmap`);
      ctx.expect(((c.engineBitmap[e >> 3] ?? 0) & (1 << (e & 7))) !== 0, () => `engine ${e} is in config.engines but its bit is clear in config.engineBitmap`);
    }
    let bits = 0;
    for (const byte of c.engineBitmap) for (let b = byte; b !== 0; b &= b - 1) bits++;
    ctx.expect(bits === new Set(c.engines).size, () => `config.engineBitmap has ${bits} bits set for ${new Set(c.engines).size} engines in config.engines`);
    for (const [which, bars] of [['PF', c.pfBars], ['VF', c.vfBars]] as const) {
      for (const bar of ['bar0', 'bar1'] as const) {
        ctx.expect(bars[bar] > 0n, () => `config.${which === 'PF' ? 'pfBars' : 'vfBars'}.${bar} is 0`);
      }
      for (const bar of ['bar0', 'bar1', 'bar3'] as const) {
        const v = bars[bar];
        // A BAR's size is a power of two: the device hard-wires its low address bits to zero (PCI Local Bus spec 3.0
        // §6.2.5.1; Linux sizes BARs from that mask, drivers/pci/probe.c pci_size()).
        ctx.expect(v === 0n || (v & (v - 1n)) === 0n, () => `${which} ${bar.toUpperCase()} is ${size(v)}, not a power of two as PCI BARs are`);
      }
    }
    for (const cap of gpu.caps) ctx.expect(KNOWN_CAPS.has(cap), () => `gpu.caps holds '${cap}', which is not a HalCapability`);
  }),
];
