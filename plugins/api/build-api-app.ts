/**
 * The control API as a fastify app, without a socket: the plugin listens on it, unit tests call `inject()`.
 * Routes are thin: validate (zod), call the VgpuService contract, serialize (bigints as strings). Everything the
 * daemon knows about vGPUs comes from the service, so the API can never disagree with it.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import type { BusEventName, EventBus } from '../../core/contracts/events.js';
import type { Logger } from '../../core/contracts/logger.js';
import type { RequestRecord } from '../../core/contracts/request-journal.js';
import type { RequestService } from '../../core/contracts/requests.js';
import type { VgpuHolders } from '../../core/contracts/vgpu-holders.js';
import type { VgpuInfo, VgpuService } from '../../core/contracts/vgpu-service.js';
import { validateLayout, type LayoutFile } from '../../core/layout/layout-file.js';
import { planLayoutRequest } from '../../core/layout/plan-layout-request.js';
import { RequestServiceImpl } from '../../core/requests/request-service.js';
import { checkValueBounds } from '../../core/validation/bounded-value.js';
import { frameworkErrorHandler, makeErrorHandler, parseOr, unsupportedMediaType } from './http-errors.js';
import { addHostRoutes } from './host-routes.js';
import { LayoutParser } from './layout-parser.js';
import {
  BODY_LIMITS, BODY_LIMIT_BYTES, MAX_PARAM_LENGTH, assertBody, createBody, destroyQuery, eventsQuery, gpuParams, idParams, layoutBody,
  listQuery, logsQuery, policyBody, requestParams, requestsQuery, typesQuery, vfBdfParams, vfParams,
} from './request-schemas.js';
import { StreamSet } from './event-stream.js';
import { toJsonValue } from './to-json.js';

/** A route contribution from another plugin (bound under TOKENS.HttpRoutes), mounted before the server listens. */
export type HttpRouteContribution = (app: FastifyInstance) => void | Promise<void>;

export interface ApiAppOptions {
  service: VgpuService;
  bus: EventBus;
  logger: Logger;
  /** Extra fields for GET /v1/status (plugins, socket, journal…). */
  status?: () => Record<string, unknown>;
  routes?: readonly HttpRouteContribution[];
  /** Journalled all-or-none requests (TOKENS.Requests); an in-memory one over `service` when absent. */
  requests?: RequestService;
  /** Who holds each vGPU (TOKENS.VgpuHolders, e.g. the pod on a Kubernetes node): shown as `holder`. */
  holders?: VgpuHolders;
}

/** Bus events GET /v1/events streams when the client names none (the high-rate ones must be asked for). */
export const DEFAULT_STREAM_EVENTS: readonly BusEventName[] = [
  'vgpu:state', 'vgpu:step', 'scrub:progress', 'gpu:probed', 'gpu:ready', 'gpu:lost', 'gpu:reset', 'host:event', 'exception', 'log:line',
  'layout:begin', 'layout:end', 'device:allocated',
];
const ALL_EVENTS: readonly BusEventName[] = [...DEFAULT_STREAM_EVENTS, 'firmware:event', 'channel:nonstall', 'rpc:latency'];

export interface ApiApp {
  app: FastifyInstance;
  streams: StreamSet;
  /** Parses layout text off the event loop (closed with the app). */
  layouts: LayoutParser;
}

/** A request as the API shows it in replies (the full record is at GET /v1/requests/:id). */
const requestRef = (r: RequestRecord | undefined) => (r === undefined ? undefined : { id: r.id, state: r.state });

export async function buildApiApp(opts: ApiAppOptions): Promise<ApiApp> {
  const { service, bus } = opts;
  const log = opts.logger;
  const app = Fastify({
    logger: false, forceCloseConnections: true, return503OnClosing: true,
    bodyLimit: BODY_LIMIT_BYTES, routerOptions: { maxParamLength: MAX_PARAM_LENGTH }, frameworkErrors: frameworkErrorHandler,
  });
  const streams = new StreamSet();
  const layouts = new LayoutParser();
  const requests = opts.requests ?? new RequestServiceImpl(service, log);
  const started = Date.now();

  app.setErrorHandler(makeErrorHandler(log));
  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send({ error: toJsonValue(new VgpuError(ErrorCode.NotFound, `no route ${req.method} ${req.url.split('?')[0]}`, {
      hint: 'the API lives under /v1 (see docs/operations.md); is vgpuctl newer than the daemon?',
    }).toJSON()) });
  });
  // The VF ABI is text; accept it however the client labels it.
  app.addContentTypeParser('application/octet-stream', { parseAs: 'string' }, (_req, body, done) => done(null, body));
  app.addHook('preClose', (done) => { streams.endAll(); void layouts.close().finally(() => done()); });
  // Before any schema runs: a body in the wrong media type is a 415, and a JSON body is bounded (keys, depth,
  // string lengths) by one cheap walk, so no request can make the validators or the planner work for long.
  app.addHook('preValidation', async (req) => {
    if (req.body === undefined || req.body === null) return;
    const textRoute = req.routeOptions.url?.startsWith('/v1/vfs/') === true;
    if (typeof req.body === 'string') {
      if (!textRoute) throw unsupportedMediaType(req.headers['content-type']);
      return;
    }
    checkValueBounds(req.body, BODY_LIMITS, 'request body');
  });
  const send = (v: unknown): unknown => toJsonValue(v);

  /** Abort the service call when the client disconnects before the reply is written (e.g. Ctrl-C in vgpuctl). */
  const abortOnDisconnect = (raw: import('node:http').ServerResponse): AbortSignal => {
    const ac = new AbortController();
    raw.on('close', () => {
      if (!raw.writableFinished) ac.abort(new VgpuError(ErrorCode.Cancelled, 'the client went away', { hint: 'nothing to do' }));
    });
    return ac.signal;
  };

  app.get('/v1/status', async () => {
    const gpus = service.gpus();
    const vgpus = service.list();
    const byState: Record<string, number> = {};
    for (const v of vgpus) byState[v.state] = (byState[v.state] ?? 0) + 1;
    const unmanaged = service.unmanaged?.() ?? [];
    // Healthy: every configured GPU is managed and can host vGPUs (suspended counts: the host resumes it).
    const healthy = unmanaged.length === 0 && gpus.every((g) => g.state === 'ready' || g.state === 'suspended');
    return send({
      daemon: 'vgpud', pid: process.pid, uptimeSec: Math.round((Date.now() - started) / 1000), healthy,
      gpus: gpus.map((g) => ({
        bdf: g.bdf, name: g.name, state: g.state, ...(g.reason !== undefined ? { reason: g.reason } : {}), policy: g.policy,
        backend: g.backend, vgpus: g.vgpus, fb: g.fb,
      })),
      unmanaged,
      vgpus: { total: vgpus.length, byState },
      // VFs out of service because the journal lost their state, each with the command that releases it.
      quarantine: service.quarantined?.() ?? [],
      // VFs whose type vgpud did not set, or that changed behind its back: left alone, and shown here. They do not
      // make the daemon unhealthy: a host set up before vgpud ran has them until `vgpuctl adopt`.
      ...(service.unmanagedVfs !== undefined ? { unmanagedVfs: service.unmanagedVfs() } : {}),
      ...(requests.lastRecovery() !== undefined ? { requestRecovery: requests.lastRecovery() } : {}),
      ...(opts.status?.() ?? {}),
    });
  });

  app.get('/v1/gpus', async () => send({ gpus: service.gpus() }));

  app.get('/v1/gpus/:bdf/types', async (req) => {
    const { bdf } = parseOr(gpuParams, req.params, 'GPU address');
    const { all } = parseOr(typesQuery, req.query, 'query');
    return send({ gpu: bdf, types: service.types(bdf, { all }) });
  });

  app.put('/v1/gpus/:bdf/policy', async (req) => {
    const { bdf } = parseOr(gpuParams, req.params, 'GPU address');
    const { policy } = parseOr(policyBody, req.body, 'request body');
    service.setPolicy(bdf, policy);
    return send({ gpu: bdf, policy });
  });

  /** The vGPUs with who holds them, when a holder source is bound (it may ask the kubelet: awaited). */
  const withHolders = async (vgpus: VgpuInfo[]): Promise<(VgpuInfo & { holder?: unknown })[]> => {
    if (opts.holders === undefined) return vgpus;
    const held = await opts.holders.current();
    return vgpus.map((v) => (held.has(v.id) ? { ...v, holder: held.get(v.id) } : v));
  };

  app.get('/v1/vgpus', async (req) => {
    const { gpu } = parseOr(listQuery, req.query, 'query');
    return send({ vgpus: await withHolders(service.list(gpu !== undefined ? { gpu } : undefined)) });
  });

  app.post('/v1/vgpus', async (req, reply) => {
    const body = parseOr(createBody, req.body, 'request body');
    // `--count 3` is one request, all or none, also across a daemon crash (core/requests).
    const { request, vgpus } = await requests.create({
      gpu: body.gpu, type: body.type, count: body.count, signal: abortOnDisconnect(reply.raw),
      ...(body.vf !== undefined ? { vf: body.vf } : {}), ...(body.requestId !== undefined ? { id: body.requestId } : {}),
    });
    return reply.code(201).send(send({ vgpus, request: requestRef(request) }));
  });

  app.get('/v1/vgpus/:id', async (req) => {
    const { id } = parseOr(idParams, req.params, 'vGPU id');
    const [vgpu] = await withHolders([service.get(id)]);
    return send({ vgpu });
  });

  app.delete('/v1/vgpus/:id', async (req, reply) => {
    const { id } = parseOr(idParams, req.params, 'vGPU id');
    const { force } = parseOr(destroyQuery, req.query, 'query');
    await service.destroy(id, { force, signal: abortOnDisconnect(reply.raw) });
    return send({ destroyed: id });
  });

  app.post('/v1/vgpus/:id/reset', async (req) => {
    const { id } = parseOr(idParams, req.params, 'vGPU id');
    const { force } = parseOr(destroyQuery, req.query, 'query');
    if (service.reset === undefined) {
      throw new VgpuError(ErrorCode.IllegalState, 'this vGPU service cannot reset a vGPU', { hint: 'destroy and re-create it instead' });
    }
    await service.reset(id, { force });
    return send({ reset: id, vgpu: service.get(id) });
  });

  app.get('/v1/vgpus/:id/logs', async (req, reply) => {
    const { id } = parseOr(idParams, req.params, 'vGPU id');
    const { lines, follow } = parseOr(logsQuery, req.query, 'query');
    const backlog = service.logs(id, lines);
    if (!follow) return send({ id, lines: backlog });
    streams.start(reply, (write) => {
      for (const line of backlog) write({ line });
      return bus.on('log:line', (e) => { if (e.vgpuId === id) write({ line: e.line, area: e.area }); });
    });
    return reply;
  });

  app.get('/v1/vfs/:bdf/:attr', async (req, reply) => {
    const { bdf, attr } = parseOr(vfParams, req.params, 'VF attribute');
    return reply.type('text/plain; charset=utf-8').send(service.readVfAttribute(bdf, attr));
  });

  app.put('/v1/vfs/:bdf/:attr', async (req, reply) => {
    const { bdf, attr } = parseOr(vfParams, req.params, 'VF attribute');
    if (typeof req.body !== 'string') {
      throw new VgpuError(ErrorCode.InvalidArgument, 'the VF attribute value must be sent as text/plain', {
        hint: 'send the bytes you would write to the sysfs file, e.g. "0\\n" to clear current_vgpu_type',
      });
    }
    await service.writeVfAttribute(bdf, attr, req.body);
    return reply.code(204).send();
  });

  app.post('/v1/vfs/:bdf/release', async (req) => {
    const { bdf } = parseOr(vfBdfParams, req.params, 'VF address');
    if (service.releaseVf === undefined) {
      throw new VgpuError(ErrorCode.IllegalState, 'this vGPU service keeps no quarantine', { hint: 'nothing to release' });
    }
    return send({ released: await service.releaseVf(bdf) });
  });

  /** The layout of a request body: text is parsed off the event loop, an object validated (it is bounded already). */
  const layoutOf = (layout: string | Record<string, unknown>): Promise<LayoutFile> | LayoutFile =>
    (typeof layout === 'string' ? layouts.parse(layout) : validateLayout(layout));

  app.post('/v1/apply', async (req, reply) => {
    const body = parseOr(layoutBody, req.body, 'request body');
    const r = await requests.apply({
      layout: await layoutOf(body.layout), force: body.force, dryRun: body.dryRun, signal: abortOnDisconnect(reply.raw),
      ...(body.config !== undefined ? { config: body.config } : {}), ...(body.requestId !== undefined ? { id: body.requestId } : {}),
    });
    return send({
      config: r.config, plan: r.plan, applied: r.applied, dryRun: r.dryRun, request: requestRef(r.request),
      ...(r.result ?? {}),
    });
  });

  app.post('/v1/assert', async (req) => {
    const body = parseOr(assertBody, req.body, 'request body');
    const { config, plan } = planLayoutRequest(service, await layoutOf(body.layout), body.config);
    return send({ config, ok: plan.changes === 0, plan });
  });

  app.get('/v1/requests', async (req) => {
    const { limit } = parseOr(requestsQuery, req.query, 'query');
    return send({ requests: requests.list(limit) });
  });

  app.get('/v1/requests/:id', async (req) => {
    const { id } = parseOr(requestParams, req.params, 'request id');
    return send({ request: requests.get(id) });
  });

  app.get('/v1/events', async (req, reply) => {
    const { events } = parseOr(eventsQuery, req.query, 'query');
    const names = events === undefined ? DEFAULT_STREAM_EVENTS : events.split(',').map((s) => s.trim()).filter(Boolean);
    for (const n of names) {
      if (!ALL_EVENTS.includes(n as BusEventName)) {
        throw new VgpuError(ErrorCode.InvalidArgument, `unknown event '${n}'`, { hint: `stream any of: ${ALL_EVENTS.join(', ')}` });
      }
    }
    streams.start(reply, (write) => {
      // A first line tells the client the subscription is live, so it can start the action it wants to watch.
      write({ event: 'stream:open', at: Date.now(), data: { events: names } });
      const offs = names.map((n) => bus.on(n as BusEventName, ((data: unknown) => write({ event: n, at: Date.now(), data })) as never));
      return () => { for (const off of offs) off(); };
    });
    return reply;
  });

  addHostRoutes(app, service);
  for (const contribute of opts.routes ?? []) await contribute(app);
  await app.ready();
  return { app, streams, layouts };
}
