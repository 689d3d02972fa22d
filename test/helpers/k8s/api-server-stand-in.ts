/**
 * A Kubernetes API-server stand-in for tests: one Node over plain HTTP, with what the node agent uses — GET the
 * Node, WATCH it (newline-delimited watch events, from a resourceVersion, 410 Gone when that is too old), PATCH its
 * labels (JSON merge patch only, as the agent sends), POST Events — and the controls a test needs: relabel the Node
 * as `kubectl label` would, record every value the state label took, end every watch (what API servers do every few
 * minutes), fail the next requests. `kubeconfig(dir)` writes a kubeconfig that points @kubernetes/client-node here.
 */
import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface StoredEvent { namespace: string; reason: string; message: string; type: string; involvedObject: { kind: string; name: string; uid?: string } }

interface WatchEntry { rv: number; type: string; object: unknown }

export class ApiServerStandIn extends EventEmitter {
  private server: Server | undefined;
  private rv = 100;
  private readonly uid = 'e3b0c442-98fc-1c14-9afb-f4c8996fb924';
  labels: Record<string, string>;
  /** Values the given label took, in order (only changes). */
  readonly history = new Map<string, string[]>();
  readonly events: StoredEvent[] = [];
  private readonly log: WatchEntry[] = [];
  private readonly watches = new Set<ServerResponse>();
  private failing = 0;
  port = 0;
  /** Requests seen, as "METHOD path". */
  readonly requests: string[] = [];

  constructor(readonly nodeName: string, labels: Record<string, string> = {}) {
    super();
    this.labels = { 'kubernetes.io/hostname': nodeName, ...labels };
  }

  node(): unknown {
    return { apiVersion: 'v1', kind: 'Node', metadata: { name: this.nodeName, uid: this.uid, resourceVersion: String(this.rv), labels: { ...this.labels } } };
  }

  async start(): Promise<void> {
    const server = createServer((req, res) => { void this.handle(req, res); });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    this.server = server;
    const a = server.address();
    this.port = typeof a === 'object' && a !== null ? a.port : 0;
  }

  async stop(): Promise<void> {
    this.closeWatches();
    const s = this.server;
    this.server = undefined;
    if (s) {
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    }
  }

  /** A kubeconfig for this server (no credentials: the stand-in checks none). */
  kubeconfig(dir: string): string {
    const path = join(dir, 'kubeconfig');
    writeFileSync(path, [
      'apiVersion: v1', 'kind: Config', 'current-context: test',
      // client-node refuses plain http unless TLS checks are off (there is no TLS to check here).
      'clusters:', `- name: test`, `  cluster: {server: "http://127.0.0.1:${this.port}", insecure-skip-tls-verify: true}`,
      'users:', '- name: test', '  user: {}',
      'contexts:', '- name: test', '  context: {cluster: test, user: test}', '',
    ].join('\n'));
    return path;
  }

  /** Relabel the Node (null removes the label), as `kubectl label node … key=value --overwrite` does. */
  setLabel(key: string, value: string | null): void {
    this.applyLabels({ [key]: value });
  }

  /** Fail the next `n` requests with 503. */
  failNext(n: number): void {
    this.failing = n;
  }

  /** End every open watch (the client must watch again). */
  closeWatches(): void {
    for (const w of this.watches) w.end();
    this.watches.clear();
  }

  /** How many watches are open now. */
  get openWatches(): number {
    return this.watches.size;
  }

  /** Resolve when `pred` holds (checked now and after every request the server handled). */
  until(pred: () => boolean): Promise<void> {
    if (pred()) return Promise.resolve();
    return new Promise((r) => {
      const check = (): void => {
        if (!pred()) return;
        this.off('changed', check);
        r();
      };
      this.on('changed', check);
    });
  }

  private applyLabels(patch: Record<string, string | null>): void {
    for (const [k, v] of Object.entries(patch)) {
      const before = this.labels[k];
      if (v === null) delete this.labels[k];
      else this.labels[k] = v;
      if (v !== null && v !== before) this.history.set(k, [...(this.history.get(k) ?? []), v]);
    }
    this.rv++;
    this.publish('MODIFIED');
  }

  private publish(type: string): void {
    const entry: WatchEntry = { rv: this.rv, type, object: this.node() };
    this.log.push(entry);
    if (this.log.length > 50) this.log.shift();
    for (const w of this.watches) w.write(`${JSON.stringify({ type, object: entry.object })}\n`);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    this.requests.push(`${req.method} ${url.pathname}${url.searchParams.get('watch') === 'true' ? '?watch' : ''}`);
    const body = await new Promise<string>((r) => {
      let b = '';
      req.on('data', (c: Buffer) => { b += c.toString(); });
      req.on('end', () => r(b));
    });
    const send = (code: number, obj: unknown): void => {
      res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(obj));
      this.emit('changed');
    };
    const status = (code: number, reason: string, message: string): void =>
      send(code, { kind: 'Status', apiVersion: 'v1', status: 'Failure', message, reason, code });
    if (this.failing > 0) {
      this.failing--;
      return status(503, 'ServiceUnavailable', 'the stand-in fails this request on purpose');
    }
    const nodePath = `/api/v1/nodes/${this.nodeName}`;
    if (req.method === 'GET' && url.pathname === nodePath) return send(200, this.node());
    if (req.method === 'GET' && url.pathname === '/api/v1/nodes' && url.searchParams.get('watch') === 'true') {
      if (url.searchParams.get('fieldSelector') !== `metadata.name=${this.nodeName}`) return status(400, 'BadRequest', 'this stand-in serves one Node: watch it by metadata.name');
      const from = Number(url.searchParams.get('resourceVersion') ?? '0');
      res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
      const oldest = this.log[0]?.rv ?? this.rv;
      if (from !== 0 && from < oldest - 1) {
        res.write(`${JSON.stringify({ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired', message: `too old resource version: ${from}` } })}\n`);
        res.end();
        this.emit('changed');
        return;
      }
      for (const e of this.log) if (e.rv > from) res.write(`${JSON.stringify({ type: e.type, object: e.object })}\n`);
      this.watches.add(res);
      res.on('close', () => this.watches.delete(res));
      this.emit('changed');
      return;
    }
    if (req.method === 'PATCH' && url.pathname === nodePath) {
      if (req.headers['content-type'] !== 'application/merge-patch+json') return status(415, 'UnsupportedMediaType', `patch type ${req.headers['content-type']} not taken here`);
      let p: { metadata?: { labels?: Record<string, string | null> } };
      try {
        p = JSON.parse(body) as typeof p;
      } catch {
        return status(400, 'BadRequest', 'the patch is not JSON');
      }
      const extra = Object.keys(p).filter((k) => k !== 'metadata');
      if (extra.length > 0 || p.metadata?.labels === undefined) return status(422, 'Invalid', 'this stand-in takes label patches only');
      this.applyLabels(p.metadata.labels);
      return send(200, this.node());
    }
    const ev = /^\/api\/v1\/namespaces\/([^/]+)\/events$/.exec(url.pathname);
    if (req.method === 'POST' && ev) {
      const e = JSON.parse(body) as StoredEvent & { metadata?: { generateName?: string } };
      if (!e.reason || !e.message || !e.involvedObject?.kind) return status(422, 'Invalid', 'an Event needs reason, message and involvedObject');
      this.events.push({ namespace: ev[1]!, reason: e.reason, message: e.message, type: e.type, involvedObject: e.involvedObject });
      return send(201, { ...e, metadata: { ...e.metadata, name: `${e.metadata?.generateName ?? 'ev.'}${this.events.length}`, namespace: ev[1] } });
    }
    return status(404, 'NotFound', `${req.method} ${url.pathname} is not served by the stand-in`);
  }
}
