/**
 * VgpuError → HTTP: one JSON shape `{error:{code,message,hint,details}}` for every failure, and a status chosen by
 * the code's family so the CLI can turn it into an exit code without knowing every code:
 * 400 usage/invalid input, 404 not found, 409 busy/state/no space, 503 device lost/timeout, 507 state dir full,
 * 500 anything else.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import type { Logger } from '../../core/contracts/logger.js';
import { toJsonValue } from './to-json.js';

const STATUS: Partial<Record<ErrorCode, number>> = {
  [ErrorCode.InvalidArgument]: 400,
  [ErrorCode.UnknownType]: 400,
  [ErrorCode.Config]: 400,
  [ErrorCode.NotFound]: 404,
  [ErrorCode.Busy]: 409,
  [ErrorCode.IllegalState]: 409,
  [ErrorCode.NoSpace]: 409,
  [ErrorCode.OutOfMemory]: 409,
  [ErrorCode.Cancelled]: 409,
  // RFC 4918 §11.5: the server cannot store what it needs to complete the request.
  [ErrorCode.StateFull]: 507,
  [ErrorCode.GpuLost]: 503,
  [ErrorCode.RpcTimeout]: 503,
};

/**
 * A create or destroy step error takes its cause's family: a create refused for want of FB is a 409 the operator
 * can act on, a firmware that failed the step is the daemon's 500.
 */
export function httpStatusFor(code: string, details?: Record<string, unknown>): number {
  const own = STATUS[code as ErrorCode] ?? 500;
  if ((code === ErrorCode.CreateStep || code === ErrorCode.DestroyStep) && typeof details?.['cause'] === 'string') {
    const inner = STATUS[details['cause'] as ErrorCode];
    // A step that failed because the state dir is full is the operator's to fix too (507, not the daemon's 500).
    if (inner !== undefined && (inner < 500 || inner === 507)) return inner;
  }
  return own;
}

/** A zod failure on a request part, as VGPU_EINVAL naming each bad field. */
export function invalidRequest(where: string, error: z.ZodError): VgpuError {
  const issues = error.issues.map((i) => {
    const path = i.path.map(String).join('.');
    if (i.code === 'unrecognized_keys') return `${path ? `${path}.` : ''}${i.keys.join(', ')}: unknown key`;
    return `${path || '(value)'}: ${i.message}`;
  });
  return new VgpuError(ErrorCode.InvalidArgument, `invalid ${where}: ${issues.join('; ')}`, {
    hint: 'fix the named fields; `vgpuctl <command> --help` shows the accepted values', details: { issues },
  });
}

/** Parse `input` with `schema` or throw VGPU_EINVAL. */
export function parseOr<T extends z.ZodType>(schema: T, input: unknown, where: string): z.output<T> {
  const r = schema.safeParse(input);
  if (!r.success) throw invalidRequest(where, r.error);
  return r.data;
}

/** Turn anything thrown in a route into a VgpuError (fastify's own errors keep their 4xx meaning). */
export function asVgpuError(err: unknown): VgpuError {
  if (err instanceof VgpuError) return err;
  const fe = err as Partial<FastifyError>;
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    const code = fe.statusCode === 404 ? ErrorCode.NotFound : fe.statusCode === 409 ? ErrorCode.Busy : ErrorCode.InvalidArgument;
    return new VgpuError(code, fe.message ?? 'bad request', {
      hint: 'check the request: body must be JSON (text/plain for /v1/vfs) and the URL one of /v1/…',
      details: { fastifyCode: fe.code },
    });
  }
  const message = err instanceof Error ? err.message : String(err);
  return new VgpuError(ErrorCode.Internal, `internal error: ${message}`, {
    hint: 'this is a bug in vgpud; the daemon log has the stack trace', cause: err,
  });
}

export function makeErrorHandler(logger: Logger) {
  return (err: unknown, request: FastifyRequest, reply: FastifyReply): void => {
    const e = asVgpuError(err);
    const status = httpStatusFor(e.code, e.details);
    if (status >= 500) logger.error('request failed', { method: request.method, url: request.url, error: err });
    else logger.debug('request refused', { method: request.method, url: request.url, code: e.code, message: e.message });
    void reply.code(status).type('application/json').send({ error: toJsonValue(e.toJSON()) });
  };
}
