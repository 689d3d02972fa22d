/**
 * The journal's file formats: names, zod schemas and the JSON encoding (bigints as decimal strings). A record that
 * fails its schema is described by field names and issue kinds only: the bytes of a bad file never reach a log
 * (a planted or corrupted file may hold anything, e.g. another file's secrets).
 */
import { z } from 'zod';

export const JOURNAL_VERSION = 2;

/** A record is a few hundred bytes; anything bigger is not one of ours. */
export const MAX_RECORD_BYTES = 64 * 1024;

const u64 = z.string().regex(/^\d+$/).transform((s) => BigInt(s));
const span = z.object({ offset: u64, size: u64 });
const handle = z.number().int().min(1).max(0xffffffff);
const rmClient = z.object({ hClient: handle, hDevice: handle, hSubdevice: handle });
const chidRun = z.object({ offset: z.number().int().nonnegative(), count: z.number().int().positive() });

export const vgpuSchema = z.object({
  version: z.literal(JOURNAL_VERSION),
  id: z.string().min(1),
  gpu: z.string().min(1),
  vf: z.number().int().nonnegative(),
  typeId: z.number().int().nonnegative(),
  typeName: z.string(),
  state: z.enum(['creating', 'ready', 'stopping']),
  placementId: z.number().int().nonnegative(),
  mixedPlacementId: z.number().int().nonnegative().optional(),
  autoSelected: z.boolean(),
  uuid: z.string().regex(/^[0-9a-f]{32}$/),
  chids: chidRun.optional(),
  guestFb: span.optional(),
  heap: span.optional(),
  clientHandle: handle.optional(),
  client: rmClient.optional(),
  pluginTask: z.boolean().optional(),
  requestId: z.string().min(1).max(64).optional(),
  createdAt: z.number(),
  updatedAt: z.number(),
});

const sequenceValues = z.record(z.string(), z.number().int().nonnegative());

export const gpuSchema = z.object({
  version: z.literal(JOURNAL_VERSION),
  bdf: z.string().min(1),
  managerClients: z.array(handle),
  selections: z.array(z.object({ vf: z.number().int().nonnegative(), typeId: z.number().int().positive(), placementId: z.number().int().nonnegative() })),
  updatedAt: z.number(),
  /** The sequences' high-water marks when the record was written: a second copy to rebuild a damaged seq file. */
  seqs: sequenceValues.optional(),
});

export const seqSchema = z.object({ version: z.literal(JOURNAL_VERSION), next: z.number().int().nonnegative() });

export const quarantineSchema = z.object({
  version: z.literal(JOURNAL_VERSION),
  gpu: z.string().min(1),
  vf: z.number().int().nonnegative(),
  vgpuId: z.string().min(1).optional(),
  reason: z.string(),
  since: z.number(),
  typeId: z.number().int().nonnegative().optional(),
  placementId: z.number().int().nonnegative().optional(),
  autoSelected: z.boolean().optional(),
  chids: chidRun.optional(),
  guestFb: span.optional(),
  heap: span.optional(),
  clientHandle: handle.optional(),
  client: rmClient.optional(),
  unknown: z.array(z.enum(['type', 'guest-fb', 'heap', 'chids', 'rm-client'])),
});

export const VGPU_RE = /^vgpu-([A-Za-z0-9._:-]+)\.json$/;
export const GPU_RE = /^gpu-([0-9a-fA-F:.]+)\.json$/;
export const SEQ_RE = /^seq-([a-z-]+)\.json$/;
export const QUARANTINE_RE = /^quarantine-([0-9a-fA-F:.]+)-vf(\d{1,3})\.json$/;

export const quarantineFile = (gpu: string, vf: number): string => `quarantine-${gpu}-vf${vf}.json`;

export function toJson(v: unknown): string {
  return `${JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x), 2)}\n`;
}

export function stripUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

export type ParseResult<T> = { ok: true; value: T } | { ok: false; reason: string };

/** Parse a record's text with `schema`; a failure says what is wrong in field names only. */
export function parseRecord<S extends z.ZodType>(schema: S, text: string): ParseResult<z.output<S>> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    // JSON.parse's message quotes the text around the error: not for the log.
    return { ok: false, reason: text.trim() === '' ? 'it is empty' : 'it is not valid JSON (truncated or overwritten?)' };
  }
  const r = schema.safeParse(raw);
  if (r.success) return { ok: true, value: r.data };
  const fields = [...new Set(r.error.issues.map((i) => (i.path.length > 0 ? i.path.map(String).join('.') : '(record)')))];
  const version = (raw as { version?: unknown } | null)?.version;
  if (typeof version === 'number' && version !== JOURNAL_VERSION) return { ok: false, reason: `it has journal version ${version}, this daemon writes ${JOURNAL_VERSION}` };
  return { ok: false, reason: `bad or missing field(s): ${fields.slice(0, 6).join(', ')}${fields.length > 6 ? ', …' : ''}` };
}
