/**
 * Every operation the mock performs, in order: what a test asserts on ("the scrub submitted one pushbuf", "the
 * create path freed the client after the control failed"). Bounded, so a soak test does not grow without end.
 */
import { isVgpuError } from '../../core/contracts/exceptions.js';

export interface MockCallRecord {
  /** 1-based sequence number across the whole mock. */
  seq: number;
  op: string;
  /** BDF of the GPU the call went to (absent for bus-level calls). */
  gpu?: string;
  /** Summary of the arguments (bigints as strings, buffers as their length). */
  args: Record<string, unknown>;
  /** Start time (ms, the mock's clock). */
  at: number;
  /** 'pending' until an async call settles. */
  outcome: 'pending' | 'ok' | 'error';
  result?: unknown;
  error?: { code: string; message: string };
  /** Set when a fault injection acted on this call. */
  injected?: 'fail' | 'delay' | 'hang';
}

/** Plain-data summary of a value for the log of calls: nothing big, nothing live. */
export function summarize(v: unknown, depth = 0): unknown {
  if (typeof v === 'bigint') return `0x${v.toString(16)}`;
  if (v instanceof Uint8Array) return `<${v.length} bytes>`;
  if (v === null || typeof v !== 'object') return typeof v === 'function' ? '<fn>' : v;
  if (v instanceof AbortSignal) return '<signal>';
  if (depth > 2) return '<…>';
  if (Array.isArray(v)) return v.slice(0, 16).map((x) => summarize(x, depth + 1));
  const proto: unknown = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) return `<${(v as object).constructor?.name ?? 'object'}>`;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k] = summarize(x, depth + 1);
  return out;
}

export class CallRecorder {
  /** The last `limit` calls, plus up to `slack` older ones not dropped yet (see begin). */
  private readonly records: MockCallRecord[] = [];
  private seq = 0;
  private readonly slack: number;

  constructor(private readonly now: () => number, private readonly limit = 10_000) {
    this.slack = Math.max(1, limit >> 3);
  }

  begin(op: string, gpu: string | undefined, args: Record<string, unknown>): MockCallRecord {
    const rec: MockCallRecord = { seq: ++this.seq, op, args: summarize(args) as Record<string, unknown>, at: this.now(), outcome: 'pending' };
    if (gpu !== undefined) rec.gpu = gpu;
    this.records.push(rec);
    // Drop the oldest in batches: dropping one per call past the limit shifted 10 000 entries on every mock call
    // (a fifth of the lifecycle bench's mock half). Readers see only the last `limit` either way.
    if (this.records.length >= this.limit + this.slack) this.records.splice(0, this.records.length - this.limit);
    return rec;
  }

  /** The recorded calls readers may see: the last `limit`. */
  private kept(): MockCallRecord[] {
    return this.records.length > this.limit ? this.records.slice(-this.limit) : this.records;
  }

  ok(rec: MockCallRecord, result?: unknown): void {
    rec.outcome = 'ok';
    if (result !== undefined) rec.result = summarize(result);
  }

  fail(rec: MockCallRecord, err: unknown): void {
    rec.outcome = 'error';
    rec.error = isVgpuError(err) ? { code: err.code, message: err.message } : { code: 'unknown', message: String(err) };
  }

  /** Calls so far (a copy), optionally only those of one op. */
  list(op?: string): MockCallRecord[] {
    const kept = this.kept();
    return op === undefined ? [...kept] : kept.filter((r) => r.op === op);
  }

  count(op: string): number {
    let n = 0;
    for (let i = Math.max(0, this.records.length - this.limit); i < this.records.length; i++) if (this.records[i]!.op === op) n++;
    return n;
  }

  clear(): void {
    this.records.length = 0;
  }
}
