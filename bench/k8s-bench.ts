// vgpud as the Kubernetes node agent, measured the way a kubelet and an operator see it: the daemon's real plugins
// (built-in list, in this process) on 8 process-mode simulated RTX 6000 Ada GPUs (sparse FB files in a private
// /dev/shm dir), a kubelet stand-in on the device-plugin API (its own gRPC wiring, real Unix sockets) and an
// API-server stand-in (HTTP, through @kubernetes/client-node).
//
//  1. create → ListAndWatch: 32 × RTX6000-Ada-1Q created one by one on each GPU (256 vGPUs, one resource); from the
//     vGPU's 'ready' event to the kubelet stand-in holding a list with its VF. The first vGPU of the type (the
//     resource registers, the kubelet connects) is reported apart. Floor: the same list pushed on a bare gRPC
//     server stream over a Unix socket at the same 'ready' event, write → client 'data'.
//  2. Allocate: round trip of one-device Allocates from the stand-in. Floor: a bare gRPC unary echo of the same
//     request over a Unix socket.
//  3. relabel → success: `nvidia.com/vgpu.config` flipped between c31 (31 × 1Q per GPU) and c32 (32 per GPU), from
//     the label patch to the stand-in receiving state=success (8 vGPUs destroyed or created each time). Floor: the
//     same transition done directly through the RequestService (what `vgpuctl apply` runs), interleaved.
// Env: K8S_BENCH_GPUS (8), K8S_BENCH_VGPUS (32 per GPU), K8S_BENCH_ALLOCS (300), K8S_BENCH_RELABELS (3 pairs).
// Last line: k8s: law_p50_ms=… law_p99_ms=… ratio_law=… allocate_p50_ms=… allocate_p99_ms=… ratio_allocate=…
//            relabel_ms=… ratio_relabel=…
import 'reflect-metadata';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { builtinPlugins } from '../bin/builtin-plugins.js';
import { createContainer } from '../core/container.js';
import type { EventBus } from '../core/contracts/events.js';
import type { RequestService } from '../core/contracts/requests.js';
import type { VgpuService } from '../core/contracts/vgpu-service.js';
import { parseLayoutText } from '../core/layout/layout-file.js';
import { MemoryLogger } from '../core/logging/memory-logger.js';
import { TOKENS } from '../core/tokens.js';
import { startSimDevice, type SimDeviceHandle } from '../hal/ada-lovelace/sim/start-sim-device.js';
import { ApiServerStandIn } from '../test/helpers/k8s/api-server-stand-in.js';
import { KubeletStandIn } from '../test/helpers/k8s/kubelet-stand-in.js';
import { fmt } from './lib/timing.js';

const GPUS = Number(process.env['K8S_BENCH_GPUS'] ?? 8);
const PER_GPU = Number(process.env['K8S_BENCH_VGPUS'] ?? 32);
const ALLOCS = Number(process.env['K8S_BENCH_ALLOCS'] ?? 300);
const RELABELS = Number(process.env['K8S_BENCH_RELABELS'] ?? 3);
const RESOURCE = 'nvidia.com/NVIDIA_RTX6000-Ada-1Q';
const NODE = 'bench-node';
const now = (): number => performance.now();
const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))] ?? NaN;
};
const load = (): string => loadavg().map((x) => x.toFixed(2)).join(' ');
const layouts = (n: number): string => `    - devices: all\n      vgpu-devices: {RTX6000-Ada-1Q: ${n}}\n`;

/** A bare gRPC server on a Unix socket: a server stream to push lists on, and a unary echo. */
async function floorServer(dir: string) {
  const proto = join(dir, 'floor.proto');
  writeFileSync(proto, `syntax = "proto3"; package floor;
    message Device { string ID = 1; string health = 2; }
    message List { repeated Device devices = 1; }
    message Req { repeated string ids = 1; }
    message Env { map<string, string> envs = 1; }
    service Floor { rpc Watch(Req) returns (stream List) {} rpc Echo(Req) returns (Env) {} }`);
  const pkg = (grpc.loadPackageDefinition(protoLoader.loadSync(proto, { keepCase: true, defaults: true }))['floor'] as grpc.GrpcObject);
  const Floor = pkg['Floor'] as grpc.ServiceClientConstructor;
  let stream: grpc.ServerWritableStream<unknown, unknown> | undefined;
  const server = new grpc.Server();
  server.addService(Floor.service, {
    Watch: (call: grpc.ServerWritableStream<unknown, unknown>) => { stream = call; },
    Echo: (call: grpc.ServerUnaryCall<{ ids: string[] }, unknown>, cb: grpc.sendUnaryData<unknown>) => cb(null, { envs: { PCI_RESOURCE_X: call.request.ids.join(',') } }),
  });
  const sock = join(dir, 'floor.sock');
  await new Promise<void>((r, j) => server.bindAsync(`unix://${sock}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? j(e) : r())));
  const client = new Floor(`unix://${sock}`, grpc.credentials.createInsecure()) as grpc.Client & Record<string, (...a: unknown[]) => unknown>;
  const watch = (client['Watch'] as (r: unknown) => grpc.ClientReadableStream<unknown>)({});
  // Pushes are told apart by their first device id, so several may be in flight.
  const waiting = new Map<string, () => void>();
  watch.on('data', (m: { devices: { ID: string }[] }) => {
    const key = m.devices[0]?.ID ?? '';
    waiting.get(key)?.();
    waiting.delete(key);
  });
  watch.on('error', () => {});
  while (stream === undefined) await new Promise((r) => setImmediate(r));
  let seq = 0;
  return {
    /** write → client 'data' of one list (its first id replaced by a sequence number). */
    push: (devices: { ID: string; health: string }[]): Promise<number> => new Promise((res) => {
      const key = `seq-${seq++}`;
      const t0 = now();
      waiting.set(key, () => res(now() - t0));
      stream!.write({ devices: [{ ID: key, health: 'Healthy' }, ...devices.slice(1)] });
    }),
    echo: (ids: string[]): Promise<number> => new Promise((res, rej) => {
      const t0 = now();
      (client['Echo'] as (r: unknown, cb: (e: unknown) => void) => void)({ ids }, (e) => (e ? rej(e) : res(now() - t0)));
    }),
    close: () => { watch.cancel(); client.close(); server.forceShutdown(); },
  };
}

async function main(): Promise<void> {
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  console.log(`k8s bench: ${GPUS} simulated RTX 6000 Ada × ${PER_GPU} × 1Q; CPU ${cpu} × ${cpus().length}; load at start ${load()}`);
  const dir = mkdtempSync(join(tmpdir(), 'vgpud-k8s-bench-'));
  const simDir = mkdtempSync('/dev/shm/vgpud-k8s-bench-');
  const sims: SimDeviceHandle[] = [];
  const kubelet = new KubeletStandIn(join(dir, 'device-plugins'));
  const api = new ApiServerStandIn(NODE);
  let stop: (() => Promise<unknown>) | undefined;
  try {
    for (let i = 0; i < GPUS; i++) {
      sims.push(await startSimDevice({ board: 'rtx6000-ada', bdf: `0000:${(0x41 + i).toString(16)}:00.0`, mode: 'process', dir: simDir }));
    }
    await kubelet.start();
    await api.start();
    mkdirSync(join(dir, 'etc'));
    const layoutFile = join(dir, 'etc', 'layouts.yaml');
    const layoutText = `version: v1\nvgpu-configs:\n  c32:\n${layouts(PER_GPU)}  c31:\n${layouts(PER_GPU - 1)}`;
    writeFileSync(layoutFile, layoutText);
    const logger = new MemoryLogger({ level: 'warn' });
    const created = await createContainer({
      logger, plugins: builtinPlugins(),
      config: {
        plugins: {
          'hal-ada-lovelace': { devices: sims.map((s) => ({ board: 'rtx6000-ada', bdf: s.descriptor.bdf, mode: 'process', dir: simDir })) },
          k8s: {
            nodeName: NODE, kubeconfig: api.kubeconfig(dir), layoutFile, defaultConfig: '',
            nfd: { featureFile: join(dir, 'features.d', 'vgpud') }, podResources: { enabled: false },
            devicePlugin: { devicePluginDir: kubelet.dir },
          },
        },
        api: { socket: join(dir, 'vgpud.sock'), stateDir: join(dir, 'state') },
        timeouts: { rpcMs: 30_000, bootloadMs: 30_000, scrubMs: 60_000 },
      },
    });
    await created.host.start();
    stop = () => created.host.stop();
    const c = created.container;
    const service = c.get<VgpuService>(TOKENS.VgpuManager);
    const bus = c.get<EventBus>(TOKENS.EventBus);
    const requests = c.get<RequestService>(TOKENS.Requests);
    const floor = await floorServer(dir);

    // 1. create → ListAndWatch update
    const readyAt = new Map<string, number>();
    const law: number[] = [];
    let first = NaN;
    const seen = new Set<string>();
    // The floor is pushed at the same moment (the same 'ready' event), so it meets the same event-loop contention
    // from the create still running and the simulated GPUs' traffic.
    const floorPush: number[] = [];
    const pushes: Promise<void>[] = [];
    bus.on('vgpu:state', (e) => {
      if (e.to !== 'ready') return;
      readyAt.set(service.get(e.vgpuId).vfBdf, now());
      const list = service.list().map((v) => ({ ID: v.vfBdf, health: 'Healthy' }));
      if (readyAt.size > 1) pushes.push(floor.push(list).then((ms) => { floorPush.push(ms); }));
    });
    kubelet.on('update', (res: string, list: { id: string }[]) => {
      if (res !== RESOURCE) return;
      const t = now();
      for (const d of list) {
        if (seen.has(d.id) || !readyAt.has(d.id)) continue;
        seen.add(d.id);
        if (seen.size === 1) first = t - readyAt.get(d.id)!;
        else law.push(t - readyAt.get(d.id)!);
      }
    });
    const t0 = now();
    for (const g of service.gpus()) {
      for (let i = 0; i < PER_GPU; i++) await service.create({ gpu: g.bdf, type: 'RTX6000-Ada-1Q' });
    }
    await kubelet.until(() => seen.size === GPUS * PER_GPU);
    await Promise.all(pushes);
    console.log(`created ${GPUS * PER_GPU} vGPUs in ${fmt((now() - t0) / 1000)} s; load ${load()}`);
    const devices = kubelet.devices.get(RESOURCE)!.map((d) => ({ ID: d.id, health: d.health }));

    // 2. Allocate
    const ids = devices.map((d) => d.ID);
    const alloc: number[] = [];
    const echo: number[] = [];
    for (let i = 0; i < ALLOCS; i++) {
      const id = ids[(i * 7919) % ids.length]!;
      const a0 = now();
      await kubelet.allocate(RESOURCE, [id]);
      alloc.push(now() - a0);
      echo.push(await floor.echo([id]));
    }

    // 3. relabel → success, interleaved with the same transitions done directly
    const layout = parseLayoutText(layoutText);
    const relabel: number[] = [];
    const direct: number[] = [];
    const successes = (): number => (api.history.get('nvidia.com/vgpu.config.state') ?? []).filter((s) => s === 'success').length;
    for (let r = 0; r < RELABELS; r++) {
      for (const config of ['c31', 'c32']) {
        const d0 = now();
        await requests.apply({ layout, config });
        direct.push(now() - d0);
      }
      for (const config of ['c31', 'c32']) {
        const before = successes();
        const l0 = now();
        api.setLabel('nvidia.com/vgpu.config', config);
        await api.until(() => successes() > before);
        relabel.push(now() - l0);
      }
    }
    floor.close();
    const warn = logger.lines.filter((l) => l.level === 'warn' || l.level === 'error');
    if (warn.length > 0) console.log(`log warnings/errors during the run: ${warn.length} (first: ${warn[0]!.message})`);
    console.log(`first vGPU of the type (register + kubelet connects + first list): ${fmt(first)} ms`);
    console.log(`ListAndWatch update after ready: p50 ${fmt(pct(law, 50))} p99 ${fmt(pct(law, 99))} ms over ${law.length}; floor push p50 ${fmt(pct(floorPush, 50))} p99 ${fmt(pct(floorPush, 99))} ms`);
    console.log(`Allocate: p50 ${fmt(pct(alloc, 50))} p99 ${fmt(pct(alloc, 99))} ms over ${alloc.length}; floor echo p50 ${fmt(pct(echo, 50))} p99 ${fmt(pct(echo, 99))} ms`);
    console.log(`relabel → success: ${relabel.map(fmt).join(' ')} ms; direct apply: ${direct.map(fmt).join(' ')} ms; load at end ${load()}`);
    console.log(`k8s: law_p50_ms=${fmt(pct(law, 50))} law_p99_ms=${fmt(pct(law, 99))} ratio_law=${fmt(pct(law, 50) / pct(floorPush, 50))} `
      + `allocate_p50_ms=${fmt(pct(alloc, 50))} allocate_p99_ms=${fmt(pct(alloc, 99))} ratio_allocate=${fmt(pct(alloc, 50) / pct(echo, 50))} `
      + `relabel_ms=${fmt(pct(relabel, 50))} ratio_relabel=${fmt(pct(relabel, 50) / pct(direct, 50))}`);
  } finally {
    await stop?.();
    await kubelet.stop();
    await api.stop();
    await Promise.allSettled(sims.map((s) => s.stop()));
    rmSync(dir, { recursive: true, force: true });
    rmSync(simDir, { recursive: true, force: true });
  }
}

await main();
