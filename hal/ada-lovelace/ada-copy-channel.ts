/**
 * Copy-engine channels of a simulated Ada GPU (docs/reference/core-driver-interface.md ops 21–27) and the CHID pool
 * that hands them out.
 *
 * Where the copy engine runs: on the HOST side, over the device's shared FB. The FB is one SharedArena that the
 * device (worker or vgpu-sim process) and the host both map, so the host-side engine writes the very bytes the
 * device sees; its fills are the arena's native fill (multi-threaded, off the event loop; zero fills punch holes
 * and keep the simulated FB sparse). Running it on the GSP thread instead would cost a doorbell protocol and a
 * hop per submission and buy nothing observable: on silicon the CE is neither GSP nor the host, it is a third
 * agent on the same memory, which is what this is.
 *
 * The FIFO non-stall interrupt reaches the host as a firmware event record, through the same listeners and
 * streams as every GSP event: `{ eventId: 5, name: 'FIFO_NONSTALL', payload: u32 LE chid }` (5 is the id of the
 * core driver's PF channel event table, docs/reference/core-driver-interface.md; no GSP event number collides with
 * it). A pushbuffer the engine refuses, or an MMU fault, raises RC_TRIGGERED (0x1004, rpc_rc_triggered head with
 * engine COPY0 and the CHID) instead, so a waiter times out as on a real channel error.
 *
 * The CE object handle names the channel's AMPERE_DMA_COPY_B object; no RM object is allocated in GSP-RM for it,
 * because the host-side engine needs none (documented simplification).
 */
import type { FbBackingStore } from '../../core/alloc/framebuffer-memory.js';
import type { CopyChannel } from '../../core/contracts/channels.js';
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import type { FirmwareState } from '../../core/contracts/firmware.js';
import type { FbRange } from '../../core/contracts/memory.js';
import type { Logger } from '../../core/contracts/logger.js';
import { SimCopyChannel } from '../sim/ce/sim-copy-channel.js';
import { AdaChannelPool } from './ada-channel-pool.js';
import { NV2080_ENGINE_TYPE } from './chips.js';
import { RC_TRIGGERED } from './gsp-event-payloads.js';
import { GspEvent } from '../gsp/gsp-layout.js';

export const ADA_FIFO_NONSTALL = { id: 5, name: 'FIFO_NONSTALL' } as const;
/** Pushbuffer of a scrub channel: 4096 dwords (16 KiB), room for many 150-dword scrub submissions. */
export const ADA_PUSHBUF_DWORDS = 4096;
const CE_HANDLE_BASE = 0xce000000;

/** What the channels need from the rest of the opened GPU. */
export interface AdaCopyChannelDeps {
  bdf: string;
  /** FB bytes, offset 0 = FB offset 0. */
  store: FbBackingStore;
  /** True while `range` is a live FB range of this GPU. */
  isLive(range: FbRange): boolean;
  firmware: {
    readonly state: FirmwareState;
    /** Deliver a host-side interrupt to the firmware's event listeners (AdaFirmwareClient.raiseInterrupt). */
    raiseInterrupt(eventId: number, name: string, payload: Uint8Array): void;
  };
  logger?: Logger;
  pushbufDwords?: number;
}

export class AdaCopyChannelPool extends AdaChannelPool {
  private readonly copyChannels = new Map<number, SimCopyChannel>();
  private nextHandle = 1;

  constructor(bdf: string, private readonly deps: AdaCopyChannelDeps) {
    super(bdf);
  }

  override async allocCopyChannel(chid: number, owner: string): Promise<CopyChannel> {
    this.checkCopyChid(chid, owner);
    if (this.deps.firmware.state !== 'running') {
      throw new VgpuError(ErrorCode.IllegalState, `cannot allocate a copy channel on ${this.deps.bdf}: firmware is ${this.deps.firmware.state}`, {
        hint: 'boot the firmware first',
      });
    }
    const held = this.copyChannels.get(chid);
    if (held !== undefined) {
      throw new VgpuError(ErrorCode.Busy, `CHID ${chid} already has a copy channel (owner ${held.owner})`, {
        hint: 'free the existing copy channel first', details: { chid },
      });
    }
    const ch = new SimCopyChannel({
      chid, owner,
      objectHandle: (CE_HANDLE_BASE | (this.nextHandle++ & 0xffffff)) >>> 0,
      pushbufDwords: this.deps.pushbufDwords ?? ADA_PUSHBUF_DWORDS,
      store: this.deps.store,
      isLive: (r) => this.deps.isLive(r),
      raiseNonstall: (c) => this.deps.firmware.raiseInterrupt(ADA_FIFO_NONSTALL.id, ADA_FIFO_NONSTALL.name, u32(c)),
      raiseError: (c, message) => {
        this.deps.logger?.error('copy channel error (RC)', { chid: c, message });
        this.deps.firmware.raiseInterrupt(GspEvent.RC_TRIGGERED, 'RC_TRIGGERED',
          RC_TRIGGERED.encode({ nv2080EngineType: NV2080_ENGINE_TYPE.COPY0, chid: c }));
      },
      checkCanSubmit: () => {
        if (this.deps.firmware.state !== 'running') {
          throw new VgpuError(this.deps.firmware.state === 'crashed' ? ErrorCode.GpuLost : ErrorCode.IllegalState,
            `cannot submit on copy channel ${chid} of ${this.deps.bdf}: firmware is ${this.deps.firmware.state}`, {
              hint: 'the GPU must be running; reset it if it was lost',
            });
        }
      },
      onFree: (c) => { if (this.copyChannels.get(c.chid) === c) this.copyChannels.delete(c.chid); },
    });
    this.copyChannels.set(chid, ch);
    return ch;
  }

  /** Live copy channels (the books). */
  liveCopyChannels(): Array<{ chid: number; owner: string; vaMappings: number }> {
    return [...this.copyChannels.values()].map((c) => ({ chid: c.chid, owner: c.owner, vaMappings: c.vaMappingCount }));
  }

  /** Free every copy channel (GPU close). */
  freeCopyChannels(): void {
    for (const c of [...this.copyChannels.values()]) c.dispose();
  }
}

function u32(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v >>> 0, true);
  return b;
}
