/**
 * GET /healthz over TCP, for the DaemonSet's liveness probe (the control API listens on a Unix socket only, which a
 * kubelet httpGet probe cannot reach). 200 while the daemon's event loop runs and its vGPU service answers; 503
 * when the service throws. What the node agent knows (Node connection, last config outcome) is in the body, not in
 * the status: a lost API server is no reason for the kubelet to restart the daemon that holds the VMs' vGPUs.
 */
import { createServer, type Server } from 'node:http';
import type { Logger } from '../../core/contracts/logger.js';
import type { VgpuService } from '../../core/contracts/vgpu-service.js';

export class HealthServer {
  private server: Server | undefined;

  constructor(private readonly service: VgpuService, private readonly extra: () => Record<string, unknown>, private readonly log: Logger) {}

  /** Listen; resolves with the bound port (useful when 0 was asked in tests). */
  async start(host: string, port: number): Promise<number> {
    const server = createServer((req, res) => {
      if (req.method !== 'GET' || (req.url !== '/healthz' && req.url !== '/healthz/')) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: GET /healthz\n');
        return;
      }
      let body: Record<string, unknown>;
      let code = 200;
      try {
        const gpus = this.service.gpus();
        body = { status: 'ok', gpus: gpus.length, gpusReady: gpus.filter((g) => g.state === 'ready').length, ...this.extra() };
      } catch (error) {
        code = 503;
        body = { status: 'failing', error: (error as Error).message };
      }
      res.writeHead(code, { 'content-type': 'application/json' }).end(`${JSON.stringify(body)}\n`);
    });
    server.on('clientError', (_e, socket) => socket.destroy());
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => { server.off('error', reject); resolve(); });
    });
    this.server = server;
    const addr = server.address();
    const bound = typeof addr === 'object' && addr !== null ? addr.port : port;
    this.log.info('health endpoint listening', { url: `http://${host}:${bound}/healthz` });
    return bound;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (s === undefined) return;
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
}
