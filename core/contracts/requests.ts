/**
 * RequestService contract: multi-step control requests that are all-or-none, also across a daemon crash (see
 * request-journal.ts). Every face that changes several vGPUs in one request goes through it: the control API
 * (`POST /v1/vgpus` with a count, `POST /v1/apply`) and the Kubernetes node agent.
 *
 * Bound to TOKENS.Requests by the core (core/requests/request-service.ts). `recover()` runs once after the
 * lifecycle reconciled the vGPU journal at start, before any face takes requests.
 */
import type { LayoutFile } from '../layout/layout-file.js';
import type { ApplyResult } from '../layout/apply-layout.js';
import type { LayoutPlan } from '../layout/plan-layout.js';
import type { RequestRecord } from './request-journal.js';
import type { VgpuInfo } from './vgpu-service.js';

export interface CreateRequest {
  /** Client-chosen id (REQUEST_ID_PATTERN); the service picks one when absent. */
  id?: string;
  gpu: string;
  type: string | number;
  count: number;
  /** VF of the first vGPU. */
  vf?: number;
  signal?: AbortSignal;
}

export interface ApplyRequest {
  id?: string;
  layout: LayoutFile;
  config?: string;
  force?: boolean;
  dryRun?: boolean;
  signal?: AbortSignal;
}

export interface ApplyOutcome {
  config: string;
  plan: LayoutPlan;
  applied: boolean;
  dryRun: boolean;
  /** Absent when nothing ran (dry run, nothing to change). */
  request?: RequestRecord;
  result?: ApplyResult;
}

/** What the start-up recovery did with requests a crash interrupted. */
export interface RequestRecovery {
  finished: string[];
  rolledBack: string[];
  failed: string[];
}

export interface RequestService {
  create(req: CreateRequest): Promise<{ request: RequestRecord; vgpus: VgpuInfo[] }>;
  apply(req: ApplyRequest): Promise<ApplyOutcome>;
  /** Throws VGPU_ENOENT for an id the daemon never started (or no longer keeps). */
  get(id: string): RequestRecord;
  list(limit?: number): RequestRecord[];
  /** Finish or roll back every request a crash left running; idempotent (later calls return the first result). */
  recover(): Promise<RequestRecovery>;
  lastRecovery(): RequestRecovery | undefined;
}
