/**
 * The boot path of the physical GPUs as the daemon sees it: list devices on every bound PCI bus → choose the HAL
 * (HalRegistry, or the `gpus[].hal` override of the config) → `hal.open()` → `firmware.boot()` → check the
 * hardware config → 'gpu:probed' / 'gpu:ready' on the bus. Each step is logged on a `{gpu}` child logger, so the
 * log of one GPU's bring-up reads top to bottom.
 *
 * One GPU failing does not stop the others (a daemon with four GPUs and one broken keeps serving three): the
 * failure is logged with its step, the GPU is closed again, and it is reported in `failed`.
 */
import { inject, injectable, optional } from 'inversify';
import type { VgpudConfig } from '../config/config-schema.js';
import type { EventBus } from '../contracts/events.js';
import { ErrorCode, VgpuError, isVgpuError } from '../contracts/exceptions.js';
import type { FirmwareImage, FirmwareInfo } from '../contracts/firmware.js';
import type { Hal, PciDeviceInfo, PhysicalGpu } from '../contracts/hal.js';
import type { Logger } from '../contracts/logger.js';
import type { HalRegistry } from '../hal-registry.js';
import type { GpuRegistry } from '../gpu-registry.js';
import { TOKENS } from '../tokens.js';

export type ProbeStep = 'select-hal' | 'open' | 'boot' | 'hardware-config';

export interface ProbedGpu {
  device: PciDeviceInfo;
  hal: Hal;
  gpu: PhysicalGpu;
  firmware: FirmwareInfo;
}

export interface ProbeFailure {
  device: PciDeviceInfo;
  step: ProbeStep;
  error: VgpuError;
}

export interface ProbeResult {
  ready: ProbedGpu[];
  failed: ProbeFailure[];
}

export interface ProbeOptions {
  /** Firmware image to boot; default: the HAL's firmware floor version (the image the HAL ships). */
  firmwareImage?: (gpu: PhysicalGpu) => FirmwareImage;
  rpcTimeoutMs?: number;
}

@injectable()
export class GpuProbe {
  constructor(
    @inject(TOKENS.HalRegistry) private readonly registry: HalRegistry,
    @inject(TOKENS.EventBus) private readonly bus: EventBus,
    @inject(TOKENS.Logger) private readonly logger: Logger,
    @inject(TOKENS.Config) private readonly config: Readonly<VgpudConfig>,
    @inject(TOKENS.GpuRegistry) @optional() private readonly gpus?: GpuRegistry,
  ) {}

  /** Probe every device of every bound bus, one after the other (boots are heavy; order = bus order). */
  async probeAll(opts: ProbeOptions = {}): Promise<ProbeResult> {
    const result: ProbeResult = { ready: [], failed: [] };
    for (const device of await this.registry.devices()) {
      try {
        result.ready.push(await this.probe(device, opts));
      } catch (error) {
        const e = error as VgpuError & { probeStep?: ProbeStep };
        result.failed.push({ device, step: e.probeStep ?? 'open', error: e });
      }
    }
    return result;
  }

  /** Probe one device. Throws a VgpuError with `details.step` (and `probeStep`); nothing stays open on failure. */
  async probe(device: PciDeviceInfo, opts: ProbeOptions = {}): Promise<ProbedGpu> {
    const log = this.logger.child({ gpu: device.bdf });
    const timeout = opts.rpcTimeoutMs ?? this.config.timeouts.rpcMs;
    let step: ProbeStep = 'select-hal';
    let gpu: PhysicalGpu | undefined;
    try {
      const override = this.config.gpus.find((g) => g.bdf?.toLowerCase() === device.bdf.toLowerCase())?.hal;
      const hal = override !== undefined ? this.registry.byId(override) : this.registry.forDevice(device);
      log.info('HAL selected', { hal: hal.id, generation: hal.generation, override: override !== undefined });

      step = 'open';
      gpu = await hal.open(device, { logger: log, rpcTimeoutMs: timeout });
      log.info('GPU opened', { name: gpu.config.name, fbBytes: gpu.config.fbBytes.toString(), totalVfs: gpu.config.totalVfs });
      this.bus.emit('gpu:probed', { gpu: device.bdf, name: gpu.config.name });

      step = 'boot';
      const image = opts.firmwareImage?.(gpu) ?? { version: gpu.config.firmwareFloor, source: `hal:${hal.id}` };
      log.info('booting GSP firmware', { version: image.version, source: image.source });
      const firmware = await gpu.firmware.boot(image, { timeoutMs: timeout });
      log.info('GSP firmware running', { version: firmware.version });

      step = 'hardware-config';
      checkVgpuCapable(gpu);
      log.info('GPU ready for vGPU', {
        engines: gpu.config.engines.length, channels: gpu.config.channelCount, totalVfs: gpu.config.totalVfs,
        eccSupported: gpu.config.eccSupported,
      });
      this.gpus?.add(gpu);
      // Every RPC's round trip feeds the per-GPU latency histogram (metrics plugin) through the bus.
      const bdf = device.bdf;
      gpu.firmware.observeRpcs?.((e) => this.bus.emit('rpc:latency', { gpu: bdf, ...e }));
      this.bus.emit('gpu:ready', { gpu: device.bdf });
      return { device, hal, gpu, firmware };
    } catch (error) {
      const e = isVgpuError(error)
        ? error
        : new VgpuError(ErrorCode.Internal, `probe of ${device.bdf} failed: ${String((error as Error)?.message ?? error)}`, { cause: error });
      Object.assign(e.details, { step, bdf: device.bdf });
      (e as VgpuError & { probeStep?: ProbeStep }).probeStep = step;
      log.error('GPU probe failed', { step, error: e });
      if (gpu !== undefined) {
        try {
          await gpu.close();
        } catch (closeError) {
          log.error('closing the GPU after a failed probe failed too', { error: closeError });
        }
      }
      throw e;
    }
  }
}

/** docs/reference/core-driver-interface.md duty 6: vGPU needs SR-IOV, a reserved channel pool and a running firmware. */
function checkVgpuCapable(gpu: PhysicalGpu): void {
  const c = gpu.config;
  const problems: string[] = [];
  if (c.totalVfs <= 0) problems.push('no SR-IOV VFs');
  if (c.channelCount <= 0) problems.push('no channels reserved for vGPU');
  if (c.fbBytes <= 0n) problems.push('no framebuffer');
  if (!gpu.firmware.info().initDone) problems.push('firmware did not report init done');
  if (problems.length > 0) {
    throw new VgpuError(ErrorCode.UnsupportedDevice, `${gpu.bdf} cannot host vGPUs: ${problems.join(', ')}`, {
      hint: 'enable SR-IOV on the GPU and check the HAL', details: { problems },
    });
  }
}
