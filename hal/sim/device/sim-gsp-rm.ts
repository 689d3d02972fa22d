/**
 * The simulated GSP-RM of a board (any GSP generation; the board record gives the facts): what the firmware does with each RPC. Transport-free — the GSP server
 * (hal/sim/gsp) decodes queue elements and calls `handle`; this class answers with an rpc_result and a reply
 * payload, and raises events through `io.postEvent`. It runs on the device's GSP thread, never on the host's.
 *
 * Modelled behaviour:
 *  - boot handshake: GSP_SET_SYSTEM_INFO then SET_REGISTRY, after which the firmware posts GSP_INIT_DONE (0x1001).
 *    Neither is answered (the GSP server sends no reply for them, as real GSP-RM: docs/reference/gsp-queues.md):
 *    a refusal here is a GSP log line and no GSP_INIT_DONE, so the host's boot times out and points at the log.
 *    Any other RPC before that is refused with NV_ERR_INVALID_STATE, like an RM that has not initialised.
 *  - RM objects: NV01_ROOT clients, NV01_DEVICE_0 under a client, NV20_SUBDEVICE_0 under a device; handles are
 *    unique per client, parents are checked, FREE of a parent frees its children.
 *  - RM controls on a subdevice: GSP_GET_FEATURES, GPU_GET_VMMU_SEGMENT_SIZE, GPU_QUERY_ECC_STATUS,
 *    PGPU_ADD_VGPU_TYPE (decoded and kept), BOOTLOAD / SHUTDOWN / CLEANUP of per-gfid plugin tasks with full
 *    argument checks (gfid range, guest FB and heap inside the FB, VMMU alignment, no overlap between gfids).
 *  - logs: GSP-RM's own ring in the device region; per-gfid rings in each vGPU's mgmt heap (FB), located through
 *    the log directory so the host can read them synchronously.
 *
 * Every refusal is a specific NV_STATUS plus a line in the GSP log saying why — the only way an operator learns
 * why real firmware said no is its log, so the simulator keeps that habit.
 */
import type { SharedArena } from '../../../native/native-ops.js';
import { GspEvent, GspFunction, gspFunctionName } from '../../gsp/gsp-layout.js';
import { decodeRmAlloc, decodeRmControl, decodeRmFree, encodeRmAlloc, encodeRmControl, encodeRmFree } from '../../gsp/rm-payload.js';
import { RmClass, rmClassName } from '../../../core/firmware-abi/rm-classes.js';
import {
  BOOTLOAD_PARAMS, GPU_GET_VMMU_SEGMENT_SIZE_PARAMS, GPU_QUERY_ECC_STATUS_PARAMS, GSP_GET_FEATURES_PARAMS,
  PLUGIN_CLEANUP_PARAMS, RmControl, SHUTDOWN_PARAMS, decodeBootloadParams, encodeEccStatus, encodeGspFeatures,
  encodeVmmuSegmentSize, rmControlName, type BootloadParams,
} from '../../../core/firmware-abi/rm-controls.js';
import { ADD_VGPU_TYPE_PARAMS, decodeAddVgpuTypeParams, type VgpuInfoRecord } from '../../../core/metadata/vgpu-info-record.js';
import type { SimBoard } from '../board/sim-board.js';
import { GSP_SYSTEM_INFO, NvStatus, REG_SRIOV_MODE, decodeRegistry, type GspSystemInfo } from '../../gsp/gsp-boot-params.js';
import { MMU_FAULT_QUEUED, POST_EVENT, RC_TRIGGERED, encodeOsErrorLog } from '../../gsp/gsp-event-payloads.js';
import { Bar0, Header, LOG_DIR_ENTRY_BYTES, Region, logDirEntryOffset } from './device-layout.js';
import { clearVfTaskRecord } from './vf/guest-rpc-service.js';
import { appendLogRing, initLogRing, logLine } from './log-ring.js';
import { PluginTask } from './plugin-task.js';
import { firmwareVersionWord } from './device-region.js';

export interface FirmwareIo {
  arena: SharedArena;
  /** Queue an event to the host (function ≥ 0x1000), tagged with `gfid` in the RPC header. */
  postEvent(fn: number, payload: Uint8Array, gfid?: number): void;
  /** A plugin task of `gfid` appended to one of its log rings (the device raises a log interrupt for it). */
  logWritten?(gfid: number): void;
  /**
   * Run `work` once the reply being written is out, before the next command (GspRpcServer.afterReplies). Without
   * it (the firmware alone in a unit test) the work runs at once.
   */
  afterReply?(work: () => void): void;
}

export interface SimGspRmOptions {
  board: SimBoard;
  firmwareVersion: string;
  numVfs: number;
  fbOffset: bigint;
  fbBytes: bigint;
  /** ECC enabled at power-on (defaults to the board's default). */
  eccEnabled?: boolean;
}

export interface RpcAnswer {
  /** rpc_result: 0 = the RPC itself was carried out (an RM status lives inside RM payloads). */
  result: number;
  payload: Uint8Array;
}

type Phase = 'reset' | 'have-system-info' | 'running';

interface RmClientState {
  hClient: number;
  /** hDevice → subdevice handles. */
  devices: Map<number, Set<number>>;
  /** Every handle in use by this client (client, devices, subdevices). */
  handles: Set<number>;
}

interface TaskRecord {
  task: PluginTask;
  params: BootloadParams;
  /** The task's three log rings in FB (views made once at bootload, not per line). */
  logs: Record<'init-task' | 'vgpu-task' | 'kernel', Buffer>;
}

/** Test-raised events (see test controls in start-sim-device.ts). */
export type SimEventRequest =
  | { kind: 'rc'; gfid: number; chid?: number; engineType?: number; exceptType?: number }
  | { kind: 'mmu-fault'; gfid: number; faultAddress?: bigint; engine?: number; faultType?: number }
  | { kind: 'error-log'; gfid?: number; message: string; exceptType?: number; chid?: number }
  | { kind: 'post-event'; gfid?: number; hClient?: number; hEvent?: number; notifyIndex?: number; data?: number };

const MAX_CLIENTS = 4096;

export class SimGspRm {
  private phase: Phase = 'reset';
  private systemInfo: GspSystemInfo | null = null;
  private registry = new Map<string, number>();
  private readonly clients = new Map<number, RmClientState>();
  private readonly tasks = new Map<number, TaskRecord>();
  private types: VgpuInfoRecord[] = [];
  private readonly eccEnabled: boolean;
  /** View of GSP-RM's own log ring (device region), made on first use. */
  private gspLogRing: Buffer | undefined;

  constructor(private readonly io: FirmwareIo, private readonly opts: SimGspRmOptions) {
    this.eccEnabled = opts.eccEnabled ?? opts.board.eccEnabledDefault;
    initLogRing(this.arenaWindow(Region.GSP_LOG, Region.GSP_LOG_SIZE));
    this.gspLog(`GSP-RM ${opts.firmwareVersion} (simulated ${opts.board.chip}, ${opts.board.name}) started; waiting for system info`);
  }

  get running(): boolean {
    return this.phase === 'running';
  }
  get uploadedTypes(): readonly VgpuInfoRecord[] {
    return this.types;
  }
  taskState(gfid: number): 'running' | 'shutdown' | undefined {
    return this.tasks.get(gfid)?.task.state;
  }
  get clientCount(): number {
    return this.clients.size;
  }

  /**
   * One RPC from the host. Never throws: a malformed request is an RM/RPC status plus a log line. (For the two
   * asynchronous boot RPCs the status goes nowhere but the log: the server does not answer them.)
   */
  handle(fn: number, payload: Uint8Array, gfid = 0): RpcAnswer {
    try {
      switch (fn) {
        case GspFunction.GSP_SET_SYSTEM_INFO:
          return this.setSystemInfo(payload);
        case GspFunction.SET_REGISTRY:
          return this.setRegistry(payload);
        case GspFunction.NOP:
          return { result: 0, payload: new Uint8Array(0) };
        default:
          break;
      }
      if (this.phase !== 'running') {
        this.gspLog(`${gspFunctionName(fn)} refused: RM not initialised (phase ${this.phase})`);
        return { result: NvStatus.INVALID_STATE, payload };
      }
      switch (fn) {
        case GspFunction.GSP_RM_ALLOC:
          return this.rmAlloc(payload);
        case GspFunction.FREE:
          return this.rmFree(payload);
        case GspFunction.GSP_RM_CONTROL:
          return this.rmControl(payload, gfid);
        default:
          this.gspLog(`unsupported RPC ${gspFunctionName(fn)} (${fn})`);
          return { result: NvStatus.NOT_SUPPORTED, payload };
      }
    } catch (e) {
      // A payload the codecs cannot parse: the firmware answers "bad parameter" instead of dying.
      this.gspLog(`${gspFunctionName(fn)}: malformed payload: ${(e as Error).message}`);
      return { result: NvStatus.INVALID_PARAM_STRUCT, payload };
    }
  }

  // ---- boot -------------------------------------------------------------------------------------------------

  private setSystemInfo(payload: Uint8Array): RpcAnswer {
    if (this.phase === 'running') {
      this.gspLog('GSP_SET_SYSTEM_INFO after init: refused');
      return { result: NvStatus.INVALID_STATE, payload };
    }
    const info = GSP_SYSTEM_INFO.decode(payload);
    const b = this.opts.board;
    if (info.pciDeviceId !== b.deviceId || info.totalVFs !== b.totalVfs || info.firstVFOffset !== b.firstVfOffset) {
      this.gspLog(`system info does not match this GPU: device 0x${info.pciDeviceId.toString(16)} totalVFs ${info.totalVFs} ` +
        `firstVFOffset ${info.firstVFOffset} (expected 0x${b.deviceId.toString(16)}/${b.totalVfs}/${b.firstVfOffset})`);
      return { result: NvStatus.INVALID_ARGUMENT, payload };
    }
    this.systemInfo = info;
    this.phase = 'have-system-info';
    this.gspLog(`system info: ${info.totalVFs} VFs from offset ${info.firstVFOffset}, 64-bit VF BAR1 ${info.b64bitBar1}`);
    return { result: 0, payload: new Uint8Array(0) };
  }

  private setRegistry(payload: Uint8Array): RpcAnswer {
    if (this.phase !== 'have-system-info') {
      this.gspLog(`SET_REGISTRY in phase ${this.phase}: system info must come first`);
      return { result: NvStatus.INVALID_STATE, payload };
    }
    this.registry = decodeRegistry(payload);
    this.phase = 'running';
    const sriov = this.registry.get(REG_SRIOV_MODE) === 1;
    this.gspLog(`registry: ${[...this.registry].map(([k, v]) => `${k}=${v}`).join(' ') || '(empty)'}; SR-IOV mode ${sriov ? 'on' : 'off'}`);
    this.arenaStore(Region.BAR0 + Bar0.PGSP_MAILBOX1, firmwareVersionWord(this.opts.firmwareVersion));
    this.gspLog('GSP_INIT_DONE');
    this.io.postEvent(GspEvent.GSP_INIT_DONE, new Uint8Array(4), 0);
    return { result: 0, payload: new Uint8Array(0) };
  }

  // ---- RM objects -------------------------------------------------------------------------------------------

  private rmAlloc(payload: Uint8Array): RpcAnswer {
    const req = decodeRmAlloc(payload);
    const status = this.alloc(req.hClient, req.hParent, req.hObject, req.hClass);
    if (status !== NvStatus.OK) {
      this.gspLog(`RM alloc ${rmClassName(req.hClass)} h=0x${req.hObject.toString(16)} parent=0x${req.hParent.toString(16)} ` +
        `client=0x${req.hClient.toString(16)} failed: status 0x${status.toString(16)}`);
    }
    return { result: 0, payload: encodeRmAlloc({ ...req, params: req.params.slice(), status }) };
  }

  private alloc(hClient: number, hParent: number, hObject: number, hClass: number): number {
    if (hObject === 0) return NvStatus.INVALID_OBJECT_HANDLE;
    if (hClass === RmClass.NV01_ROOT) {
      // A client names itself: hObject is the client handle; the parent is none (0) or itself.
      if (hClient !== hObject || (hParent !== 0 && hParent !== hObject)) return NvStatus.INVALID_ARGUMENT;
      if (this.clients.has(hObject)) return NvStatus.INSERT_DUPLICATE_NAME;
      if (this.clients.size >= MAX_CLIENTS) return NvStatus.NO_MEMORY;
      this.clients.set(hObject, { hClient: hObject, devices: new Map(), handles: new Set([hObject]) });
      return NvStatus.OK;
    }
    const c = this.clients.get(hClient);
    if (c === undefined) return NvStatus.INVALID_CLIENT;
    if (c.handles.has(hObject)) return NvStatus.INSERT_DUPLICATE_NAME;
    if (hClass === RmClass.NV01_DEVICE_0) {
      if (hParent !== hClient) return NvStatus.INVALID_OBJECT_PARENT;
      // One GPU here, and RM allows one device object per GPU per client.
      if (c.devices.size > 0) return NvStatus.IN_USE;
      c.devices.set(hObject, new Set());
      c.handles.add(hObject);
      return NvStatus.OK;
    }
    if (hClass === RmClass.NV20_SUBDEVICE_0) {
      const subs = c.devices.get(hParent);
      if (subs === undefined) return NvStatus.INVALID_OBJECT_PARENT;
      if (subs.size > 0) return NvStatus.IN_USE; // one subdevice (one GPU) per device
      subs.add(hObject);
      c.handles.add(hObject);
      return NvStatus.OK;
    }
    return NvStatus.INVALID_CLASS;
  }

  private rmFree(payload: Uint8Array): RpcAnswer {
    const req = decodeRmFree(payload);
    const status = this.free(req.hRoot, req.hObjectOld);
    if (status !== NvStatus.OK) this.gspLog(`RM free 0x${req.hObjectOld.toString(16)} (client 0x${req.hRoot.toString(16)}) failed: 0x${status.toString(16)}`);
    return { result: 0, payload: encodeRmFree({ ...req, status }) };
  }

  private free(hClient: number, hObject: number): number {
    const c = this.clients.get(hClient);
    if (c === undefined) return NvStatus.INVALID_CLIENT;
    if (hObject === hClient) {
      this.clients.delete(hClient);
      return NvStatus.OK;
    }
    if (!c.handles.has(hObject)) return NvStatus.INVALID_OBJECT_HANDLE;
    const subs = c.devices.get(hObject);
    if (subs !== undefined) {
      for (const s of subs) c.handles.delete(s);
      c.devices.delete(hObject);
      c.handles.delete(hObject);
      return NvStatus.OK;
    }
    for (const s of c.devices.values()) s.delete(hObject);
    c.handles.delete(hObject);
    return NvStatus.OK;
  }

  private isSubdevice(c: RmClientState, h: number): boolean {
    for (const s of c.devices.values()) if (s.has(h)) return true;
    return false;
  }

  // ---- RM controls ------------------------------------------------------------------------------------------

  private rmControl(payload: Uint8Array, _gfid: number): RpcAnswer {
    const req = decodeRmControl(payload);
    const params = req.params.slice();
    const reply = (status: number, out: Uint8Array = params): RpcAnswer => {
      if (status !== NvStatus.OK) {
        this.gspLog(`RM control ${rmControlName(req.cmd)} on 0x${req.hObject.toString(16)} failed: status 0x${status.toString(16)}`);
      }
      return { result: 0, payload: encodeRmControl({ ...req, params: out, status }) };
    };
    const c = this.clients.get(req.hClient);
    if (c === undefined) return reply(NvStatus.INVALID_CLIENT);
    if (!this.isSubdevice(c, req.hObject)) return reply(NvStatus.INVALID_OBJECT_HANDLE);
    const sized = (size: number): boolean => params.byteLength === size;
    switch (req.cmd) {
      case RmControl.GSP_GET_FEATURES:
        if (!sized(GSP_GET_FEATURES_PARAMS.size)) return reply(NvStatus.INVALID_PARAM_STRUCT);
        return reply(NvStatus.OK, encodeGspFeatures({
          gspFeatures: 0, bValid: true, bDefaultGspRmGpu: true, firmwareVersion: this.opts.firmwareVersion,
        }));
      case RmControl.GPU_GET_VMMU_SEGMENT_SIZE:
        if (!sized(GPU_GET_VMMU_SEGMENT_SIZE_PARAMS.size)) return reply(NvStatus.INVALID_PARAM_STRUCT);
        return reply(NvStatus.OK, encodeVmmuSegmentSize(this.opts.board.vmmuSegmentSize));
      case RmControl.GPU_QUERY_ECC_STATUS:
        if (!sized(GPU_QUERY_ECC_STATUS_PARAMS.size)) return reply(NvStatus.INVALID_PARAM_STRUCT);
        if (!this.opts.board.eccSupported) return reply(NvStatus.NOT_SUPPORTED);
        return reply(NvStatus.OK, encodeEccStatus({
          units: [{ enabled: this.eccEnabled, scrubComplete: true, supported: true }],
        }));
      case RmControl.VGPU_MGR_INTERNAL_PGPU_ADD_VGPU_TYPE:
        // The fixed-size C struct (vgpuInfo[0x40] of NVA081_CTRL_VGPU_INFO), like every RM control's params.
        if (!sized(ADD_VGPU_TYPE_PARAMS.bytes)) return reply(NvStatus.INVALID_PARAM_STRUCT);
        return reply(this.addTypes(params));
      case RmControl.VGPU_MGR_INTERNAL_BOOTLOAD_GSP_VGPU_PLUGIN_TASK:
        if (!sized(BOOTLOAD_PARAMS.size)) return reply(NvStatus.INVALID_PARAM_STRUCT);
        return reply(this.bootload(decodeBootloadParams(params), req.hClient));
      case RmControl.VGPU_MGR_INTERNAL_SHUTDOWN_GSP_VGPU_PLUGIN_TASK:
        if (!sized(SHUTDOWN_PARAMS.size)) return reply(NvStatus.INVALID_PARAM_STRUCT);
        return reply(this.shutdownTask(SHUTDOWN_PARAMS.decode(params).gfid));
      case RmControl.VGPU_MGR_INTERNAL_VGPU_PLUGIN_CLEANUP:
        if (!sized(PLUGIN_CLEANUP_PARAMS.size)) return reply(NvStatus.INVALID_PARAM_STRUCT);
        return reply(this.cleanupTask(PLUGIN_CLEANUP_PARAMS.decode(params).gfid));
      default:
        return reply(NvStatus.NOT_SUPPORTED);
    }
  }

  private addTypes(params: Uint8Array): number {
    let decoded;
    try {
      decoded = decodeAddVgpuTypeParams(params);
    } catch (e) {
      this.gspLog(`vGPU type upload rejected: ${(e as Error).message}`);
      return NvStatus.INVALID_ARGUMENT;
    }
    const foreign = decoded.infos.filter((t) => t.pdevId !== 0 && t.pdevId !== this.opts.board.deviceId);
    if (foreign.length > 0) {
      this.gspLog(`vGPU type upload rejected: ${foreign.length} type(s) are for PCI device ` +
        `0x${foreign[0]!.pdevId.toString(16)}, this GPU is 0x${this.opts.board.deviceId.toString(16)}`);
      return NvStatus.INVALID_ARGUMENT;
    }
    this.types = decoded.discardVgpuTypes ? [...decoded.infos] : [...this.types, ...decoded.infos];
    this.gspLog(`vGPU types uploaded: ${decoded.infos.length} (${decoded.discardVgpuTypes ? 'replacing' : 'adding to'} the table; ${this.types.length} now)`);
    return NvStatus.OK;
  }

  private bootload(p: BootloadParams, hClient: number): number {
    const fail = (status: number, why: string): number => {
      this.gspLog(`bootload gfid ${p.gfid} refused: ${why}`);
      return status;
    };
    if (this.registry.get(REG_SRIOV_MODE) !== 1) {
      return fail(NvStatus.NOT_SUPPORTED, `SR-IOV mode is off (registry ${REG_SRIOV_MODE} != 1)`);
    }
    if (p.gfid < 1 || p.gfid > this.opts.numVfs) return fail(NvStatus.INVALID_ARGUMENT, `gfid must be 1..${this.opts.numVfs}`);
    const existing = this.tasks.get(p.gfid);
    if (existing !== undefined) {
      return fail(NvStatus.IN_USE, `a plugin task for this gfid is ${existing.task.state}${existing.task.state === 'shutdown' ? ' (cleanup pending)' : ''}`);
    }
    if (p.numChannels === 0) return fail(NvStatus.INVALID_ARGUMENT, 'numChannels is 0');
    if (p.vgpuType !== 0 && !this.types.some((t) => t.id === p.vgpuType)) {
      return fail(NvStatus.INVALID_ARGUMENT, `vgpuType ${p.vgpuType} was never uploaded`);
    }
    const seg = this.opts.board.vmmuSegmentSize;
    const fb = this.opts.fbBytes;
    if (p.numGuestFbSegments < 1 || p.numGuestFbSegments > p.guestFbPhysAddrList.length) {
      return fail(NvStatus.INVALID_ARGUMENT, `numGuestFbSegments ${p.numGuestFbSegments} out of range`);
    }
    const guest: Array<[bigint, bigint]> = [];
    for (let i = 0; i < p.numGuestFbSegments; i++) {
      const a = p.guestFbPhysAddrList[i] ?? 0n;
      const l = p.guestFbLengthList[i] ?? 0n;
      if (l === 0n) return fail(NvStatus.INVALID_ARGUMENT, `guest FB segment ${i} has length 0`);
      if (a % seg !== 0n) return fail(NvStatus.INVALID_ADDRESS, `guest FB segment ${i} at 0x${a.toString(16)} is not aligned to the VMMU segment 0x${seg.toString(16)}`);
      if (a + l > fb) return fail(NvStatus.INVALID_ADDRESS, `guest FB segment ${i} [0x${a.toString(16)}, +0x${l.toString(16)}) ends past the FB (0x${fb.toString(16)})`);
      guest.push([a, a + l]);
    }
    const ha = p.pluginHeapMemoryPhysAddr;
    const hl = p.pluginHeapMemoryLength;
    if (hl === 0n || ha + hl > fb) return fail(NvStatus.INVALID_ADDRESS, `plugin heap [0x${ha.toString(16)}, +0x${hl.toString(16)}) is not inside the FB`);
    const overlaps = (a: [bigint, bigint], b: [bigint, bigint]): boolean => a[0] < b[1] && b[0] < a[1];
    if (guest.some((g) => overlaps(g, [ha, ha + hl]))) return fail(NvStatus.INVALID_ADDRESS, 'plugin heap overlaps the guest FB');
    for (const [other, rec] of this.tasks) {
      const theirs: Array<[bigint, bigint]> = [[rec.params.pluginHeapMemoryPhysAddr, rec.params.pluginHeapMemoryPhysAddr + rec.params.pluginHeapMemoryLength]];
      for (let i = 0; i < rec.params.numGuestFbSegments; i++) {
        const a = rec.params.guestFbPhysAddrList[i] ?? 0n;
        theirs.push([a, a + (rec.params.guestFbLengthList[i] ?? 0n)]);
      }
      if ([...guest, [ha, ha + hl] as [bigint, bigint]].some((m) => theirs.some((t) => overlaps(m, t)))) {
        return fail(NvStatus.INVALID_ADDRESS, `its FB overlaps the FB of gfid ${other}`);
      }
    }
    const logs: Array<[string, bigint, bigint]> = [
      ['init-task', p.initTaskLogBuffOffset, p.initTaskLogBuffSize],
      ['vgpu-task', p.vgpuTaskLogBuffOffset, p.vgpuTaskLogBuffSize],
      ['kernel', p.kernelLogBuffOffset, p.kernelLogBuffSize],
    ];
    for (const [name, off, size] of logs) {
      // The upstream series passes heap ADDRESS + offset (docs/reference/create-order.md): a log area must sit inside
      // the heap.
      if (size === 0n || off < ha || off + size > ha + hl) {
        return fail(NvStatus.INVALID_ADDRESS, `${name} log [0x${off.toString(16)}, +0x${size.toString(16)}) is not inside the plugin heap`);
      }
    }
    this.writeLogDirectory(p.gfid, logs.map(([, o, s]) => [o, s] as [bigint, bigint]));
    const [init, vgpu, kernel] = logs.map(([, off, size]) => this.fbWindow(off, Number(size))) as [Buffer, Buffer, Buffer];
    for (const ring of [init, vgpu, kernel]) initLogRing(ring, { reset: true });
    const task = new PluginTask(p.gfid, p, hClient, { log: (area, line) => this.taskLog(p.gfid, area, line) });
    this.tasks.set(p.gfid, { task, params: p, logs: { 'init-task': init, 'vgpu-task': vgpu, kernel } });
    // The plugin task is GSP-RM's own task: BOOTLOAD returns once it is loaded, and the host waits for the task's
    // BOOTLOADED magic separately (docs/reference/host-rpc-mailbox.md). So it starts after the reply is out — not
    // in the middle of it, where its set-up (mailbox, guest side, logs) held back every create's BOOTLOAD — and
    // before any later command, so a SHUTDOWN still finds it started.
    // GSP-RM's own line about it goes in after the task has started (and answered a header already there with the
    // magic the host waits for): a log line is nothing the host waits on. It still comes before a start failure's.
    const bootloaded = (): void => this.gspLog(`bootloaded plugin task gfid ${p.gfid} (dbdf 0x${p.dbdf.toString(16)}, ${p.numChannels} channels, vmPid ${p.vmPid})`);
    const start = (): void => {
      try {
        task.start();
      } catch (e) {
        // No reply to carry it any more: the GSP log says why the BOOTLOADED magic never comes (the host's wait
        // times out pointing there).
        bootloaded();
        this.gspLog(`plugin task gfid ${p.gfid} failed to start: ${(e as Error).message}`);
        return;
      }
      bootloaded();
    };
    if (this.io.afterReply !== undefined) this.io.afterReply(start);
    else start();
    return NvStatus.OK;
  }

  private shutdownTask(gfid: number): number {
    const rec = this.tasks.get(gfid);
    if (rec === undefined) {
      this.gspLog(`shutdown gfid ${gfid}: no plugin task`);
      return NvStatus.OBJECT_NOT_FOUND;
    }
    if (rec.task.state === 'shutdown') {
      this.gspLog(`shutdown gfid ${gfid}: already shut down`);
      return NvStatus.INVALID_STATE;
    }
    rec.task.stop();
    this.gspLog(`plugin task gfid ${gfid} shut down`);
    return NvStatus.OK;
  }

  private cleanupTask(gfid: number): number {
    const rec = this.tasks.get(gfid);
    if (rec === undefined) {
      this.gspLog(`cleanup gfid ${gfid}: nothing to clean`);
      return NvStatus.OBJECT_NOT_FOUND;
    }
    if (rec.task.state !== 'shutdown') {
      // Cleaning up under a running task would pull its memory away; shut it down first.
      this.gspLog(`cleanup gfid ${gfid} refused: plugin task still running`);
      return NvStatus.INVALID_STATE;
    }
    this.tasks.delete(gfid);
    this.writeLogDirectory(gfid, null);
    clearVfTaskRecord(this.io.arena, gfid - 1);
    this.gspLog(`plugin task gfid ${gfid} resources cleaned up`);
    return NvStatus.OK;
  }

  // ---- events (test controls) -------------------------------------------------------------------------------

  raiseEvent(ev: SimEventRequest): void {
    switch (ev.kind) {
      case 'rc':
        this.gspLog(`RC on gfid ${ev.gfid} chid ${ev.chid ?? 0}`);
        this.io.postEvent(GspEvent.RC_TRIGGERED, RC_TRIGGERED.encode({
          nv2080EngineType: ev.engineType ?? 1, chid: ev.chid ?? 0, gfid: ev.gfid, exceptLevel: 0,
          exceptType: ev.exceptType ?? 31, scope: 0, partitionAttributionId: 0,
        }), ev.gfid);
        if (this.tasks.has(ev.gfid)) this.taskLog(ev.gfid, 'kernel', `robust channel error on chid ${ev.chid ?? 0}`);
        this.tasks.get(ev.gfid)?.task.guestException(GspEvent.RC_TRIGGERED);
        return;
      case 'mmu-fault':
        this.gspLog(`MMU fault on gfid ${ev.gfid} at 0x${(ev.faultAddress ?? 0n).toString(16)}`);
        this.io.postEvent(GspEvent.MMU_FAULT_QUEUED, MMU_FAULT_QUEUED.encode({
          gfid: ev.gfid, engine: ev.engine ?? 1, faultType: ev.faultType ?? 0, faultAddress: ev.faultAddress ?? 0n,
        }), ev.gfid);
        this.tasks.get(ev.gfid)?.task.guestException(GspEvent.MMU_FAULT_QUEUED);
        return;
      case 'error-log':
        this.gspLog(`error log: ${ev.message}`);
        this.io.postEvent(GspEvent.OS_ERROR_LOG, encodeOsErrorLog({ message: ev.message, exceptType: ev.exceptType ?? 0, chid: ev.chid ?? 0 }), ev.gfid ?? 0);
        return;
      case 'post-event':
        this.io.postEvent(GspEvent.POST_EVENT, POST_EVENT.encode({
          hClient: ev.hClient ?? 0, hEvent: ev.hEvent ?? 0, notifyIndex: ev.notifyIndex ?? 0, data: ev.data ?? 0,
          info16: 0, status: 0, eventDataSize: 0,
        }), ev.gfid ?? 0);
        return;
    }
  }

  // ---- memory helpers ---------------------------------------------------------------------------------------

  private arenaWindow(off: number, len: number): Buffer {
    return this.io.arena.window(BigInt(off), len);
  }
  private arenaStore(off: number, v: number): void {
    this.io.arena.store32(BigInt(off), v >>> 0);
  }
  private fbWindow(fbOff: bigint, len: number): Buffer {
    return this.io.arena.window(this.opts.fbOffset + fbOff, len);
  }

  private writeLogDirectory(gfid: number, areas: Array<[bigint, bigint]> | null): void {
    const w = this.arenaWindow(logDirEntryOffset(gfid), LOG_DIR_ENTRY_BYTES);
    w.fill(0);
    if (areas === null) return;
    areas.forEach(([off, size], i) => {
      w.writeBigUInt64LE(off, i * 16);
      w.writeBigUInt64LE(size, i * 16 + 8);
    });
  }

  gspLog(line: string): void {
    appendLogRing(this.gspLogRing ??= this.arenaWindow(Region.GSP_LOG, Region.GSP_LOG_SIZE), logLine(line));
  }

  private taskLog(gfid: number, area: 'init-task' | 'vgpu-task' | 'kernel', line: string): void {
    const rec = this.tasks.get(gfid);
    if (rec === undefined) return;
    appendLogRing(rec.logs[area], logLine(line));
    this.io.logWritten?.(gfid);
  }
}

/** Header offset the device mirrors the firmware state into (kept here so the GSP thread can update it). */
export const FIRMWARE_STATE_WORD = Header.FIRMWARE_STATE;
