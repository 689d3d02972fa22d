/**
 * RequestJournal contract: the durable record of each multi-step control request (`create --count N`, a layout
 * apply) as a whole, so a request is all-or-none also across a crash.
 *
 * The per-vGPU journal (vgpu-journal.ts) makes each vGPU whole after a restart, but not a request: a kill -9
 * during `create --count 8` left the 2–4 vGPUs already made (adopted after the restart, ids the client never saw),
 * and one during an apply from 4×4Q to 4×8Q left 1×8Q, neither layout. So the request's intent, with its steps, is
 * written durably BEFORE its first step, each step as it completes, and the outcome at the end; every vGPU the
 * request creates carries its id in the vGPU journal from that vGPU's first step. After a restart the requests
 * service (core/requests) finishes or rolls back whatever was still running, and the client can ask what became
 * of its request by id (GET /v1/requests/:id, `vgpuctl request ID`).
 *
 * Bound to TOKENS.RequestJournal by the 'state' plugin; without it requests are tracked in memory only.
 */

export type RequestKind = 'create' | 'apply';

/**
 * running: steps are being taken (or a crash interrupted them: a restart finishes or rolls back);
 * rolling-back: the request failed and its steps are being undone (a restart completes the undo);
 * done: every step succeeded; rolled-back: nothing of it remains; failed: the undo itself failed (see error).
 */
export type RequestState = 'running' | 'rolling-back' | 'done' | 'rolled-back' | 'failed';

export interface RequestStep {
  kind: 'create' | 'destroy';
  gpu: string;
  typeId?: number;
  /** The vGPU this step destroyed, or created once known. */
  vgpu?: string;
  vf?: number;
  done: boolean;
}

/** `create --count N`: what was asked. */
export interface CreateIntent {
  kind: 'create';
  gpu: string;
  type: string | number;
  count: number;
  vf?: number;
}

/** A layout apply: the resolved layout (GPU → type id → count), enough to finish it without the file. */
export interface ApplyIntent {
  kind: 'apply';
  config: string;
  force: boolean;
  desired: { gpu: string; counts: { typeId: number; count: number }[] }[];
}

export interface RequestRecord {
  id: string;
  state: RequestState;
  intent: CreateIntent | ApplyIntent;
  steps: RequestStep[];
  createdAt: number;
  updatedAt: number;
  /** When it ended: the vGPUs it left created / destroyed. */
  result?: { created: string[]; destroyed: string[] };
  error?: { code: string; message: string; hint?: string };
  /** Set when a daemon restart, not the request itself, ended it. */
  recovered?: { at: number; action: 'finished' | 'rolled-back' | 'failed'; note: string };
}

export interface RequestJournal {
  get(id: string): RequestRecord | undefined;
  /** Every kept record, newest first. */
  list(): RequestRecord[];
  /** Write (create or replace) a record durably; resolves once it is on disk. Old finished records are pruned. */
  put(record: RequestRecord): Promise<void>;
}

/** Request ids: chosen by the client (so it can ask after a lost connection) or by the daemon. */
export const REQUEST_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
