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
import { describeIssues } from '../../core/validation/describe-issues.js';
import { BODY_LIMIT_BYTES, MAX_PARAM_LENGTH } from './request-schemas.js';
import { toJsonValue } from './to-json.js';
import { httpStatusFor } from './http-status.js';

export { httpStatusFor };

/** A zod failure on a request part, as VGPU_EINVAL naming each distinct bad field once (with a count if repeated). */
export function invalidRequest(where: string, error: z.ZodError, input?: unknown): VgpuError {
  const issues = describeIssues(error.issues, input);
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
  switch (fe.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new VgpuError(ErrorCode.TooLarge, `the request body is larger than the ${BODY_LIMIT_BYTES / 1024 / 1024} MiB limit`, {
        hint: 'send less (a layout file with only the configs this host needs)', details: { limitBytes: BODY_LIMIT_BYTES },
      });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return unsupportedMediaType();
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new VgpuError(ErrorCode.InvalidArgument, `the request body is not valid JSON: ${fe.message ?? ''}`, {
        hint: 'send a JSON object with content-type: application/json', details: { fastifyCode: fe.code },
      });
    default:
      break;
  }
  if (err instanceof SyntaxError) {
    // secure-json-parse's refusals (a __proto__ key) and JSON syntax errors.
    return new VgpuError(ErrorCode.InvalidArgument, `the request body is not acceptable JSON: ${err.message}`, {
      hint: 'send a plain JSON object with content-type: application/json',
    });
  }
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    const code = fe.statusCode === 404 ? ErrorCode.NotFound : fe.statusCode === 409 ? ErrorCode.Busy : ErrorCode.InvalidArgument;
    return new VgpuError(code, fe.message ?? 'bad request', {
      hint: 'check the request: the URL one of /v1/… (docs/operations.md), the body JSON (text/plain for /v1/vfs)',
      details: { fastifyCode: fe.code },
    });
  }
  const message = err instanceof Error ? err.message : String(err);
  return new VgpuError(ErrorCode.Internal, `internal error: ${message}`, {
    hint: 'this is a bug in vgpud; the daemon log has the stack trace', cause: err,
  });
}

/** 415: the route takes JSON (or text/plain for the VF ABI). */
export function unsupportedMediaType(got?: string): VgpuError {
  return new VgpuError(ErrorCode.MediaType, `unsupported media type${got ? ` '${got.slice(0, 60)}'` : ''}`, {
    hint: 'send content-type: application/json (text/plain for /v1/vfs/…)', details: got ? { contentType: got.slice(0, 60) } : {},
  });
}

/**
 * fastify's own refusals that bypass the error handler (a URL parameter over maxParamLength, a malformed URL): the
 * API's `{error:{…}}` shape with the status fastify chose.
 */
export function frameworkErrorHandler(err: FastifyError, _req: FastifyRequest, reply: FastifyReply): void {
  const e = err.code === 'FST_ERR_MAX_PARAM_LENGTH'
    ? new VgpuError(ErrorCode.InvalidArgument, `an id in the URL is longer than ${MAX_PARAM_LENGTH} characters`, {
      hint: 'vGPU ids look like vgpu-12, request ids have at most 64 characters', details: { limit: MAX_PARAM_LENGTH },
    })
    : new VgpuError(ErrorCode.InvalidArgument, `bad URL: ${err.message}`, { hint: 'check the URL (the API lives under /v1)' });
  void reply.code(err.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 414 : 400).type('application/json').send({ error: toJsonValue(e.toJSON()) });
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
