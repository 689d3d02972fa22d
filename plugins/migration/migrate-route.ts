/**
 * POST /v1/vgpus/:id/migrate {to, downtimeMs?} — runs the migration and streams its progress as NDJSON lines
 * (`{"progress":{…}}` …, then `{"result":{…}}` or `{"error":{code,message,hint}}`), so `vgpuctl migrate` can show
 * the estimates while it runs. Closing the request cancels the migration (the source keeps running). An unknown
 * vGPU is a 404 and one already migrating a 409, answered before the stream starts.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { ErrorCode, VgpuError, isVgpuError } from '../../core/contracts/exceptions.js';
import { MigState, migStateName } from './fsm.js';
import type { MigrationService } from './migration-service.js';

const body = z.strictObject({ to: z.string().min(1), downtimeMs: z.number().int().positive().optional() });

const json = (v: unknown): string => JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x === Infinity ? null : x));

export function migrateRoute(svc: MigrationService): (app: FastifyInstance) => void {
  return (app) => {
    app.post('/v1/vgpus/:id/migrate', async (req, reply) => {
      const id = (req.params as { id: string }).id;
      const b = body.safeParse(req.body ?? {});
      if (!b.success) throw new VgpuError(ErrorCode.InvalidArgument, `bad migrate request: ${z.prettifyError(b.error)}`, { hint: 'send {"to": "<BDF|socket|host:port>", "downtimeMs": N}' });
      // Refusals that need no work are answered with their own status BEFORE the 200 head: after it, a failure can
      // only be the last line of the body (an unknown vGPU once answered 200 with the error inside).
      const state = svc.getState(id); // VGPU_ENOENT (404) for an unknown vGPU
      if (state !== MigState.RUNNING) {
        throw new VgpuError(ErrorCode.Busy, `vGPU ${id} is in migration state ${migStateName(state)}`, {
          hint: state === MigState.ERROR ? 'reset it first' : 'wait for the running migration to end or cancel it', details: { vgpu: id },
        });
      }
      const ac = new AbortController();
      reply.raw.on('close', () => { if (!reply.raw.writableFinished) ac.abort(); });
      reply.raw.writeHead(200, { 'content-type': 'application/x-ndjson' });
      try {
        const r = await svc.migrateVgpu(id, {
          to: b.data.to, signal: ac.signal,
          ...(b.data.downtimeMs !== undefined ? { downtimeMs: b.data.downtimeMs } : {}),
          onProgress: (p) => reply.raw.write(`${json({ progress: p })}\n`),
        });
        reply.raw.end(`${json({ result: { ...r, passes: r.passes.length } })}\n`);
      } catch (e) {
        const err = isVgpuError(e) ? e : new VgpuError(ErrorCode.Internal, String(e), {});
        reply.raw.end(`${json({ error: err.toJSON() })}\n`);
      }
      return reply;
    });
  };
}
