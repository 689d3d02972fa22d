/**
 * The per-vGPU "GSP plugin" task that BOOTLOAD_GSP_VGPU_PLUGIN_TASK starts inside GSP-RM for one gfid
 * (docs/reference/create-order.md C6–C7, docs/reference/host-rpc-mailbox.md). It runs on the device's GSP thread and
 * serves the host RPC mailbox at the start of the vGPU's mgmt heap in FB:
 *
 *  1. start: clear the response and error buffers (the FB may hold a previous vGPU's), log to the init-task log.
 *  2. wait for the host's control-buffer header (version 1 and the four buffer offsets at their places in
 *     docs/reference/host-rpc-mailbox.md), then write GSP_PLUGIN_BOOTLOADED (0x4E654A6F) into ctrl.message_seq_num.
 *  3. serve calls: on each doorbell scan (plugin-task-runtime.ts) a new ctrl.message_seq_num is a call; write
 *     response.message_seq_num_received, do the work, write result_code, then message_seq_num_processed last.
 *
 * Messages: VERSION_NEGOTIATION, SETUP_CONFIG_PARAMS_AND_INIT (decoded and checked against the bootload params),
 * RESET, UPDATE_BME_STATE, GET_GUEST_INFO and MIGRATION_* 4–10 (the migration-buffer protocol below). Anything
 * else gets a non-zero result. Every failure also becomes an error-buffer record and a kernel-log line.
 *
 * Migration buffer (mgmt heap 0x3000, 2 MiB): the protocol of docs/migration.md "Mailbox protocol" — a ring with
 * free-running u32 byte counters (position = counter mod 2 MiB):
 *  - SAVE_STATE (device stopped by STOP_WORK; the host has zeroed its GET ctrl.migration_buf_cpu_access_offset):
 *    the task produces the context image (plugin-task-context.ts) at its PUT response.migration_buf_gsp_access_offset
 *    (from 0), advancing PUT after the bytes, then sets migration_state_save_complete = 1. The image is a few KiB,
 *    far below the ring, so it is produced in one go inside the call — a valid case of "produce asynchronously".
 *  - CANCEL_SAVE: PUT and save_complete back to 0, device stays stopped.
 *  - RESTORE_STATE {u64 total_bytes}: GET := 0 and reply; then the task consumes [GET, host PUT) on every scan
 *    (the runtime scans every 2 ms while a restore runs) until GET == total.
 *  - RESTORE_DEFERRED_STATE: verify the received image (magic, CRC, blob vs seed, type and channel count of this
 *    vGPU) and adopt its guest-visible state; non-zero if incomplete or invalid. RESUME_WORK runs the vGPU again
 *    (after a stop, a save or a restore); CANCEL_STOP undoes a STOP_WORK.
 */
import type { BootloadParams } from '../../../core/firmware-abi/rm-controls.js';
import {
  CONFIG_PARAMS_PAYLOAD, CTRL_BUFFER, CTRL_BUFF_VERSION, GSP_PLUGIN_BOOTLOADED, MgmtHeap, RESPONSE_BUFFER,
  UPDATE_BME_STATE_PAYLOAD, VERSION_NEGOTIATION_PAYLOAD, VgpuRpcMsg, decodeBmeState, decodeConfigParams, vgpuRpcMsgName,
} from '../../../core/firmware-abi/vgpu-mailbox.js';
import { NvStatus } from '../../gsp/gsp-boot-params.js';
import { blobSeed, decodeContextImage, encodeContextImage, newContext, type FirmwareContext } from './plugin-task-context.js';
import { ERROR_PUT_OFFSET, writeErrorRecord } from './plugin-task-error-buffer.js';
import { currentPluginTaskRuntime } from './plugin-task-runtime.js';
import { GuestRpcService } from './vf/guest-rpc-service.js';

export type PluginTaskState = 'running' | 'shutdown';
export type PluginLogArea = 'init-task' | 'vgpu-task' | 'kernel';

export interface PluginTaskEnv {
  /** Append a line to one of this gfid's log areas (FB-resident rings). */
  log(area: PluginLogArea, line: string): void;
}

/** What the task touches of its mgmt heap: the host-mapped comm region, offsets from the heap start. */
export interface PluginTaskMemory {
  /** View of [heap, heap + COMM_BUFF_SIZE). */
  comm: Buffer;
  load32(off: number): number;
  store32(off: number, v: number): void;
  /**
   * store32, then wake a host sleeping on the word (HostMapping.waitWord32). For the words a host waits on — the
   * BOOTLOADED magic and message_seq_num_processed — so the host sees an answer when it is written, as upstream's
   * 1–2 µs busy-poll does, without polling on a timer. A host that polls instead sees the same bytes.
   */
  publish32(off: number, v: number): void;
}

/**
 * RPC protocol version this GSP plugin speaks (docs/reference/host-rpc-mailbox.md: values unspecified; simulator
 * choice).
 */
export const PLUGIN_RPC_VERSION = 0x0001_0000;

/** Device phase as the migration messages move it. */
export type WorkState = 'running' | 'stopped' | 'saved' | 'restoring' | 'restored';

/**
 * How long a task scans fast for its host header or the next restore bytes: upstream's own bootload wait (the host
 * gives the BOOTLOADED magic 10 s, docs/reference/host-rpc-mailbox.md), after which a host has given up anyway.
 */
const FAST_SCAN_LIMIT_MS = 10_000;

/** Largest restore the task accepts: far above its image, far below the 2 MiB ring × a few laps. */
const MAX_RESTORE_BYTES = 1024 * 1024;

const SEQ = MgmtHeap.CTRL_OFFSET + CTRL_BUFFER.offsetOf('message_seq_num');
const TYPE = MgmtHeap.CTRL_OFFSET + CTRL_BUFFER.offsetOf('message_type');
const VERSION = MgmtHeap.CTRL_OFFSET + CTRL_BUFFER.offsetOf('version');
const CPU_MIG = MgmtHeap.CTRL_OFFSET + CTRL_BUFFER.offsetOf('migration_buf_cpu_access_offset');
const R = (f: Parameters<typeof RESPONSE_BUFFER.offsetOf>[0]): number => MgmtHeap.RESPONSE_OFFSET + RESPONSE_BUFFER.offsetOf(f);
const RECEIVED = R('message_seq_num_received');
const PROCESSED = R('message_seq_num_processed');
const RESULT = R('result_code');
const GSP_MIG = R('migration_buf_gsp_access_offset');
const SAVE_COMPLETE = R('migration_state_save_complete');

/**
 * Expected header offsets (docs/reference/host-rpc-mailbox.md, control buffer): the host writes these next to version
 * 1.
 */
const HEADER_OFFSETS: Array<[string, number, number]> = [
  ['response_buff_offset', CTRL_BUFFER.offsetOf('response_buff_offset'), MgmtHeap.RESPONSE_OFFSET],
  ['message_buff_offset', CTRL_BUFFER.offsetOf('message_buff_offset'), MgmtHeap.MESSAGE_OFFSET],
  ['migration_buff_offset', CTRL_BUFFER.offsetOf('migration_buff_offset'), MgmtHeap.MIGRATION_OFFSET],
  ['error_buff_offset', CTRL_BUFFER.offsetOf('error_buff_offset'), MgmtHeap.ERROR_OFFSET],
];

class CallError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export class PluginTask {
  state: PluginTaskState = 'running';
  readonly startedAt = Date.now();
  stoppedAt: number | null = null;
  /** 'await-header' until the host's control-buffer header is seen and the magic written. */
  phase: 'await-header' | 'serving' = 'await-header';
  private workState: WorkState = 'running';
  /** The guest's side of the task (VF doorbell, guest RPC): present once the task runs on a device's GSP thread. */
  private guest: GuestRpcService | null = null;
  /** Last ctrl.message_seq_num this task has seen (the magic once it wrote it). */
  private lastSeq = 0;
  private mem: PluginTaskMemory | null = null;
  private ctx: FirmwareContext;
  private negotiated = 0;
  private restore: { total: number; get: number; bytes: Buffer; progressAt: number } | null = null;
  /** A STOP_WORK whose answer waits for the guest call in flight (serve()). */
  private stopping: Promise<void> | null = null;
  private headerComplaint: string | null = null;

  constructor(
    readonly gfid: number,
    readonly params: Readonly<BootloadParams>,
    /** RM client the bootload came in on (the per-vGPU client). */
    readonly hClient: number,
    private readonly env: PluginTaskEnv,
  ) {
    this.ctx = newContext(gfid, params.vgpuType);
  }

  get work(): WorkState {
    return this.workState;
  }

  /** Every change of the work state is published for the guest side: it answers the guest only while running. */
  set work(w: WorkState) {
    this.workState = w;
    this.guest?.setWork(w === 'running');
  }

  /** The guest's firmware-exception record and interrupt (RC, MMU fault on this gfid). */
  guestException(eventId: number): void {
    this.guest?.exception(eventId);
  }

  /** Guest RPC calls answered (tests). */
  get guestCallsAnswered(): number {
    return this.guest?.answered ?? 0;
  }

  /** The vGPU's firmware context (tests and the device's own controls read it). */
  get context(): Readonly<FirmwareContext> {
    return this.ctx;
  }

  start(): void {
    this.state = 'running';
    const bootloaded = (): void => this.env.log('init-task', `plugin task for gfid ${this.gfid} bootloaded: ${this.params.numChannels} channels, ` +
      `guest FB 0x${(this.params.guestFbPhysAddrList[0] ?? 0n).toString(16)}+0x${(this.params.guestFbLengthList[0] ?? 0n).toString(16)}, ` +
      `mgmt heap 0x${this.params.pluginHeapMemoryPhysAddr.toString(16)}+0x${this.params.pluginHeapMemoryLength.toString(16)}`);
    const rt = currentPluginTaskRuntime();
    if (rt === null) {
      // SimGspRm used without the device's GSP thread (unit tests of the firmware alone): no FB to serve.
      bootloaded();
      this.env.log('vgpu-task', `vgpu task gfid ${this.gfid}: no mailbox runtime on this thread; not serving the host`);
      return;
    }
    this.mem = rt.memoryFor(this.params.pluginHeapMemoryPhysAddr);
    // FB is not cleared between tenants of a heap: a stale "processed" from the last vGPU would answer the host's
    // first call before we saw it. The control buffer is the host's; it is left alone.
    this.mem.comm.fill(0, MgmtHeap.RESPONSE_OFFSET, MgmtHeap.RESPONSE_OFFSET + MgmtHeap.RESPONSE_SIZE);
    this.mem.comm.fill(0, MgmtHeap.ERROR_OFFSET, MgmtHeap.ERROR_OFFSET + MgmtHeap.ERROR_SIZE);
    // The host's side first: the BOOTLOADED magic, if its header is there (the host is waiting for it), before the
    // task joins the doorbell scan — a task that found its header does not wake the scanner (one cross-thread wake-up
    // less on every create whose host wrote the header first). This thread scans nothing before register() returns,
    // and a doorbell the host rings meanwhile stays in the register for the scanner's next look. The task's start-up
    // lines follow in their order (bootloaded, waiting, found): they are for the log, not for the host.
    const found = this.takeHeader(this.mem);
    rt.register(this, !found);
    bootloaded();
    this.env.log('init-task', `gfid ${this.gfid}: waiting for the host's control-buffer header (version ${CTRL_BUFF_VERSION})`);
    if (found) this.logHeaderFound();
    // Then the guest's side, which nobody uses before the create is over.
    this.guest = new GuestRpcService({
      arena: rt.arena, gfid: this.gfid, typeId: this.params.vgpuType, fbBase: rt.fbBase,
      slice: { offset: this.params.guestFbPhysAddrList[0] ?? 0n, size: this.params.guestFbLengthList[0] ?? 0n },
      log: (line) => this.env.log('vgpu-task', line),
    });
    this.guest.poll(this.workState === 'running');
  }

  stop(): void {
    if (this.state === 'shutdown') return;
    this.state = 'shutdown';
    this.stoppedAt = Date.now();
    this.guest?.stop();
    this.env.log('init-task', `plugin task for gfid ${this.gfid} shut down`);
  }

  /**
   * True while the task waits for the host header or consumes a restore (the runtime then scans every 2 ms: both
   * are FB writes, which ring no doorbell). Bounded: a host that went away half-way would otherwise leave the GSP
   * thread scanning at 500 Hz for good. Past FAST_SCAN_LIMIT_MS without progress the task waits for doorbells only
   * (the host's next doorbell makes it look again).
   */
  get needsFastScan(): boolean {
    if (this.state !== 'running' || this.mem === null) return false;
    const now = Date.now();
    if (this.phase === 'await-header') return now - this.startedAt < FAST_SCAN_LIMIT_MS;
    const r = this.restore;
    return r !== null && r.get < r.total && now - r.progressAt < FAST_SCAN_LIMIT_MS;
  }

  /**
   * One scan (after a doorbell, or the runtime's periodic look): pick up the header, or serve a new call. Several
   * gfids share the doorbell register, so the sequence number in our own control buffer decides, not the value.
   */
  poll(): void {
    this.pollHost();
    if (this.state === 'running') this.guest?.poll(this.workState === 'running');
  }

  private pollHost(): void {
    const m = this.mem;
    if (m === null) return;
    if (this.state !== 'running') {
      const seq = m.load32(SEQ);
      if (seq !== this.lastSeq && this.phase === 'serving') {
        this.lastSeq = seq;
        this.env.log('vgpu-task', `doorbell for seq ${seq} ignored: plugin task of gfid ${this.gfid} is shut down`);
      }
      return;
    }
    if (this.phase === 'await-header') {
      if (this.takeHeader(m)) this.logHeaderFound();
      return;
    }
    this.consumeRestore(m);
    // A STOP_WORK still waiting for the guest's call: the host's next call comes after it is answered.
    if (this.stopping !== null) return;
    const seq = m.load32(SEQ);
    if (seq === this.lastSeq || seq === GSP_PLUGIN_BOOTLOADED) return;
    this.lastSeq = seq;
    this.serve(m, seq);
  }

  /** While awaiting the header: if the host's is there, answer with the BOOTLOADED magic and start serving. */
  private takeHeader(m: PluginTaskMemory): boolean {
    if (this.phase !== 'await-header' || !this.headerReady(m)) return false;
    m.publish32(SEQ, GSP_PLUGIN_BOOTLOADED);
    this.lastSeq = GSP_PLUGIN_BOOTLOADED;
    this.phase = 'serving';
    return true;
  }

  private logHeaderFound(): void {
    this.env.log('init-task', `gfid ${this.gfid}: control buffer v${CTRL_BUFF_VERSION} found; GSP_PLUGIN_BOOTLOADED written`);
  }

  /** Take what the host has put into the migration ring since the last scan. */
  private consumeRestore(m: PluginTaskMemory): void {
    const r = this.restore;
    if (r === null || r.get >= r.total) return;
    const put = m.load32(CPU_MIG);
    let avail = Math.min((put - r.get) >>> 0, r.total - r.get);
    if (avail > MgmtHeap.MIGRATION_SIZE) return; // a PUT more than a ring ahead is garbage: wait for a sane one
    const before = r.get;
    while (avail > 0) {
      const pos = r.get % MgmtHeap.MIGRATION_SIZE;
      const n = Math.min(avail, MgmtHeap.MIGRATION_SIZE - pos);
      m.comm.copy(r.bytes, r.get, MgmtHeap.MIGRATION_OFFSET + pos, MgmtHeap.MIGRATION_OFFSET + pos + n);
      r.get += n;
      avail -= n;
    }
    if (r.get !== before) r.progressAt = Date.now();
    m.publish32(GSP_MIG, r.get); // GET advances after the bytes are copied out: the host may reuse that space
    if (r.get === r.total) this.env.log('vgpu-task', `gfid ${this.gfid}: ${r.total} bytes of migration state received`);
  }

  private headerReady(m: PluginTaskMemory): boolean {
    const version = m.load32(VERSION);
    if (version === 0) return false;
    let why: string | null = null;
    if (version !== CTRL_BUFF_VERSION) why = `control buffer version ${version}, this plugin speaks ${CTRL_BUFF_VERSION}`;
    for (const [name, off, want] of HEADER_OFFSETS) {
      if (why !== null) break;
      const got = m.comm.readBigUInt64LE(MgmtHeap.CTRL_OFFSET + off);
      // The host writes the fields one by one: zero means "not yet", anything else wrong is a bad header.
      if (got === 0n) return false;
      if (got !== BigInt(want)) why = `${name} 0x${got.toString(16)}, expected 0x${want.toString(16)}`;
    }
    if (why === null) return true;
    if (this.headerComplaint !== why) {
      this.headerComplaint = why;
      this.env.log('kernel', `gfid ${this.gfid}: refusing control-buffer header: ${why}`);
    }
    return false;
  }

  private serve(m: PluginTaskMemory, seq: number): void {
    const type = m.load32(TYPE);
    const name = vgpuRpcMsgName(type);
    m.store32(RECEIVED, seq);
    this.ctx.counters.messages = (this.ctx.counters.messages + 1) >>> 0;
    let status: number = NvStatus.OK;
    let note = '';
    try {
      note = this.dispatch(m, type) ?? '';
    } catch (e) {
      status = e instanceof CallError ? e.status : NvStatus.GENERIC;
      note = (e as Error).message;
      this.recordError(m, seq, type, status, note);
    }
    const answer = (): void => {
      m.store32(RESULT, status);
      m.publish32(PROCESSED, seq); // last: the host polls this word, everything above must be visible first
      this.env.log('vgpu-task', `seq ${seq} ${name}: ${status === NvStatus.OK ? 'ok' : `failed 0x${status.toString(16)}`}${note ? ` (${note})` : ''}`);
    };
    // The work is stopped once STOP_WORK is answered: a guest call being served then must not land afterwards. It
    // settles first (finished, or withdrawn before it wrote anything: vf/guest-rpc-service.ts), bounded by its DMA
    // timeouts.
    const inFlight = status === NvStatus.OK && type === VgpuRpcMsg.MIGRATION_STOP_WORK ? this.guest?.settled() ?? null : null;
    if (inFlight === null) {
      answer();
      return;
    }
    this.env.log('vgpu-task', `seq ${seq} ${name}: waiting for the guest call in flight to settle`);
    this.stopping = inFlight.then(() => {
      this.stopping = null;
      answer();
      this.poll(); // a call the host made meanwhile, a guest ring
    }).catch((e: unknown) => this.env.log('kernel', `gfid ${this.gfid}: ${name} answer failed: ${(e as Error).message}`));
  }

  private recordError(m: PluginTaskMemory, seq: number, type: number, status: number, text: string): void {
    const err = m.comm.subarray(MgmtHeap.ERROR_OFFSET, MgmtHeap.ERROR_OFFSET + MgmtHeap.ERROR_SIZE);
    const put = writeErrorRecord(err, m.load32(ERROR_PUT_OFFSET), { seq, messageType: type, resultCode: status, timeMs: Date.now() >>> 0, text });
    m.store32(ERROR_PUT_OFFSET, put);
    this.env.log('kernel', `gfid ${this.gfid}: ${vgpuRpcMsgName(type)} (seq ${seq}) failed with 0x${status.toString(16)}: ${text}`);
  }

  private message(m: PluginTaskMemory, len: number): Buffer {
    return m.comm.subarray(MgmtHeap.MESSAGE_OFFSET, MgmtHeap.MESSAGE_OFFSET + len);
  }

  private dispatch(m: PluginTaskMemory, type: number): string | void {
    switch (type) {
      case VgpuRpcMsg.VERSION_NEGOTIATION: {
        // v2 sends no payload (version_cpu reads 0 then): answer with ours. A host offering less gets its own.
        const msg = this.message(m, VERSION_NEGOTIATION_PAYLOAD.size);
        const cpu = msg.readUInt32LE(0);
        this.negotiated = cpu !== 0 && cpu < PLUGIN_RPC_VERSION ? cpu : PLUGIN_RPC_VERSION;
        msg.writeUInt32LE(this.negotiated, VERSION_NEGOTIATION_PAYLOAD.offsetOf('version_negotiated'));
        return `version 0x${this.negotiated.toString(16)}`;
      }
      case VgpuRpcMsg.SETUP_CONFIG_PARAMS_AND_INIT:
        return this.setupConfig(m);
      case VgpuRpcMsg.RESET:
        this.needConfigured('RESET');
        this.ctx.counters.resets = (this.ctx.counters.resets + 1) >>> 0;
        // A function-level reset: the guest's state goes, what the host configured stays.
        this.ctx.guest = { osType: 0, licenseState: 0, frlConfig: 0 };
        return `reset #${this.ctx.counters.resets}`;
      case VgpuRpcMsg.UPDATE_BME_STATE: {
        this.needConfigured('UPDATE_BME_STATE');
        const b = decodeBmeState(this.message(m, UPDATE_BME_STATE_PAYLOAD.size));
        this.ctx.bme = { enable: b.enable, allowed: b.allowed };
        this.ctx.counters.bmeChanges = (this.ctx.counters.bmeChanges + 1) >>> 0;
        return `bus master ${b.enable ? 'enabled' : 'disabled'}`;
      }
      case VgpuRpcMsg.GET_GUEST_INFO:
        this.needConfigured('GET_GUEST_INFO');
        m.store32(R('guest_os_type'), this.ctx.guest.osType);
        m.store32(R('grid_license_state'), this.ctx.guest.licenseState);
        m.store32(R('frl_config'), this.ctx.guest.frlConfig);
        return undefined;
      case VgpuRpcMsg.MIGRATION_STOP_WORK:
        this.needConfigured('MIGRATION_STOP_WORK');
        this.move('MIGRATION_STOP_WORK', ['running'], 'stopped');
        return undefined;
      case VgpuRpcMsg.MIGRATION_CANCEL_STOP:
        this.move('MIGRATION_CANCEL_STOP', ['stopped'], 'running');
        return undefined;
      case VgpuRpcMsg.MIGRATION_SAVE_STATE:
        return this.saveState(m);
      case VgpuRpcMsg.MIGRATION_CANCEL_SAVE:
        this.move('MIGRATION_CANCEL_SAVE', ['saved', 'stopped'], 'stopped');
        m.store32(GSP_MIG, 0);
        m.store32(SAVE_COMPLETE, 0);
        return undefined;
      case VgpuRpcMsg.MIGRATION_RESTORE_STATE:
        return this.restoreState(m);
      case VgpuRpcMsg.MIGRATION_RESTORE_DEFERRED_STATE:
        return this.applyRestore(m);
      case VgpuRpcMsg.MIGRATION_RESUME_WORK:
        this.move('MIGRATION_RESUME_WORK', ['stopped', 'saved', 'restored'], 'running');
        m.store32(SAVE_COMPLETE, 0);
        return undefined;
      case VgpuRpcMsg.CONSOLE_VNC_STATE:
      case VgpuRpcMsg.VF_BAR0_REG_ACCESS:
        throw new CallError(NvStatus.NOT_SUPPORTED, `${vgpuRpcMsgName(type)} is not simulated`);
      default:
        throw new CallError(NvStatus.INVALID_ARGUMENT, `unknown message type ${type}`);
    }
  }

  private needConfigured(what: string): void {
    if (this.ctx.config === null) throw new CallError(NvStatus.INVALID_STATE, `${what} before SETUP_CONFIG_PARAMS_AND_INIT`);
  }

  private move(what: string, from: WorkState[], to: WorkState): void {
    if (!from.includes(this.work)) throw new CallError(NvStatus.INVALID_STATE, `${what} while ${this.work} (needs ${from.join('/')})`);
    this.work = to;
  }

  private setupConfig(m: PluginTaskMemory): string {
    if (this.ctx.config !== null) throw new CallError(NvStatus.INVALID_STATE, 'already configured');
    // A copy (the message buffer is the host's): a typed-array copy, ~9× faster than Uint8Array.from's iteration.
    const raw = new Uint8Array(this.message(m, CONFIG_PARAMS_PAYLOAD.size));
    const c = decodeConfigParams(raw);
    const p = this.params;
    const bad = (why: string): never => { throw new CallError(NvStatus.INVALID_ARGUMENT, why); };
    if (c.dbdf !== p.dbdf) bad(`dbdf 0x${c.dbdf.toString(16)} is not the bootloaded 0x${p.dbdf.toString(16)}`);
    // v2 leaves bootload vgpuType 0 (docs/reference/create-order.md): then the config names the type; it may not be 0.
    if (c.vgpu_type === 0) bad('vgpu_type 0');
    if (p.vgpuType !== 0 && c.vgpu_type !== p.vgpuType) bad(`vgpu_type ${c.vgpu_type} is not the bootloaded ${p.vgpuType}`);
    if (c.num_channels === 0 || c.num_channels !== p.numChannels) bad(`num_channels ${c.num_channels} is not the bootloaded ${p.numChannels}`);
    if (c.num_plugin_channels === 0 || c.num_plugin_channels > c.num_channels) bad(`num_plugin_channels ${c.num_plugin_channels} out of 1..${c.num_channels}`);
    if (c.vm_pid !== p.vmPid) bad(`vm_pid ${c.vm_pid} is not the bootloaded ${p.vmPid}`);
    this.ctx.config = raw;
    this.guest?.setType(c.vgpu_type);
    // The type is known now: the opaque part of the context follows it (seed gfid + type). A bootload that named
    // the same type already made this blob: 4 KiB of xorshift not made twice on every create.
    if (blobSeed(this.gfid, c.vgpu_type) !== this.ctx.blobSeed) {
      const fresh = newContext(this.gfid, c.vgpu_type);
      this.ctx.blobSeed = fresh.blobSeed;
      this.ctx.blob = fresh.blob;
    }
    return `type ${c.vgpu_type}, ${c.num_channels} channels, dbdf 0x${c.dbdf.toString(16)}`;
  }

  private configuredType(): number {
    return this.ctx.config === null ? 0 : decodeConfigParams(this.ctx.config).vgpu_type;
  }

  private saveState(m: PluginTaskMemory): string {
    this.needConfigured('MIGRATION_SAVE_STATE');
    this.move('MIGRATION_SAVE_STATE', ['stopped'], 'saved');
    this.ctx.counters.migrations = (this.ctx.counters.migrations + 1) >>> 0;
    const img = encodeContextImage(this.ctx, this.gfid, this.configuredType(), this.guest?.saveGuestState() ?? null);
    m.store32(SAVE_COMPLETE, 0);
    m.store32(GSP_MIG, 0);
    // The host zeroed its GET before the call and the image is far below the ring: it goes in at position 0, then
    // PUT, then complete — in that order, as the host reads complete before PUT.
    m.comm.set(img, MgmtHeap.MIGRATION_OFFSET);
    m.store32(GSP_MIG, img.byteLength);
    m.store32(SAVE_COMPLETE, 1);
    return `${img.byteLength} bytes of context saved`;
  }

  private restoreState(m: PluginTaskMemory): string {
    this.needConfigured('MIGRATION_RESTORE_STATE');
    // A destination is stopped (STOP_WORK) or still idle after create: both may take a restore.
    this.move('MIGRATION_RESTORE_STATE', ['stopped', 'running'], 'restoring');
    const total = this.message(m, 8).readBigUInt64LE(0);
    if (total === 0n || total > BigInt(MAX_RESTORE_BYTES)) {
      this.work = 'stopped';
      throw new CallError(NvStatus.INVALID_ARGUMENT, `restore of ${total} bytes (expected 1..${MAX_RESTORE_BYTES})`);
    }
    this.restore = { total: Number(total), get: 0, bytes: Buffer.alloc(Number(total)), progressAt: Date.now() };
    m.store32(GSP_MIG, 0);
    // What the host put into the ring before the call (a context that fits it, docs/migration.md) is taken now,
    // inside the call, as the protocol allows: otherwise the host waited for the next periodic scan (2 ms) on the
    // downtime path.
    this.consumeRestore(m);
    return `expecting ${total} bytes`;
  }

  private applyRestore(m: PluginTaskMemory): string {
    this.consumeRestore(m);
    const r = this.restore;
    if (this.work !== 'restoring' || r === null) throw new CallError(NvStatus.INVALID_STATE, `MIGRATION_RESTORE_DEFERRED_STATE while ${this.work} (needs a restore)`);
    if (r.get < r.total) throw new CallError(NvStatus.INVALID_STATE, `restore incomplete: ${r.get} of ${r.total} bytes received`);
    this.restore = null;
    this.work = 'stopped'; // a rejected image leaves the vGPU stopped with its own context
    let img;
    try {
      img = decodeContextImage(r.bytes);
    } catch (e) {
      throw new CallError(NvStatus.INVALID_ARGUMENT, `context image rejected: ${(e as Error).message}`);
    }
    const mine = decodeConfigParams(this.ctx.config!);
    if (img.vgpuType !== mine.vgpu_type) throw new CallError(NvStatus.INVALID_ARGUMENT, `image of type ${img.vgpuType}, this vGPU is type ${mine.vgpu_type}`);
    const theirs = img.ctx.config === null ? null : decodeConfigParams(img.ctx.config);
    // The guest sees its channel IDs: a different channel count cannot be restored (docs/reference/vfio-migration.md).
    if (theirs !== null && theirs.num_channels !== mine.num_channels) {
      throw new CallError(NvStatus.INVALID_ARGUMENT, `image has ${theirs.num_channels} channels, this vGPU ${mine.num_channels}`);
    }
    // Keep what the destination host configured (dbdf, pid, client); take the guest-visible state from the source.
    this.ctx = { ...img.ctx, config: this.ctx.config, counters: { ...img.ctx.counters, messages: this.ctx.counters.messages } };
    // And what the guest set on its VF (registers, RPC channel): a migrated guest carries on where it was.
    if (img.vf !== null) this.guest?.restoreGuestState(img.vf);
    this.work = 'restored';
    return `context of gfid ${img.srcGfid} restored, bus master ${this.ctx.bme.enable ? 'enabled' : 'disabled'}`;
  }
}
