/**
 * The destination "daemon" of the migrate benchmark, a child process of its own (as another host's vgpud would
 * be): one simulated GPU, a MigrationService listening on a Unix socket (the real incoming-migration path), and a
 * second socket for the benchmark's floor: a JSON hello line naming a vGPU type, a vGPU of that type is created
 * (fresh FB, as a migration's destination is), then raw bytes are written into its FB in order until the sender
 * ends, "done" is answered, and the vGPU is destroyed (scrubbed) so the migration that follows finds the same
 * fresh memory. A hello with `scrub: true` (the fresh-FB case) has the FB zeroed with its pages given back first.
 *
 * argv: <bdf> <sim dir> <migration socket> <floor socket> <fb bytes>. IPC: {op:'ready', simPid} once listening;
 * {op:'hash', vgpu} → {op:'hash', vgpu, hash, base} (FB digest and placement); {op:'stop'} stops everything and exits.
 */
import { createServer, type Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import { rmSync } from 'node:fs';
import { loadNativeOps } from '../../native/index.js';
import { fbLocation, migDevice, startSimDaemon, touchFb, type SimDaemon } from './sim-daemon.js';

const [bdf, dir, migSock, floorSock, fbBytes] = process.argv.slice(2) as [string, string, string, string, string];

async function floorConnection(d: SimDaemon, s: Socket): Promise<void> {
  let id: string | null = null;
  try {
    const hello = await new Promise<{ typeId: number; scrub: boolean; rest: Buffer }>((resolve, reject) => {
      let buf = Buffer.alloc(0);
      const onData = (c: Buffer): void => {
        buf = Buffer.concat([buf, c]);
        const i = buf.indexOf(10);
        if (i < 0) return;
        s.off('data', onData);
        s.pause();
        const h = JSON.parse(buf.subarray(0, i).toString()) as { typeId: number; scrub?: boolean };
        resolve({ typeId: h.typeId, scrub: h.scrub === true, rest: buf.subarray(i + 1) });
      };
      s.on('data', onData);
      s.once('error', reject);
    });
    const info = await d.svc.create({ gpu: d.gpu.bdf, type: hello.typeId });
    id = info.id;
    const region = migDevice(d, id).region();
    // Pre-fault the FB through its mapping (see touchFb). The bench daemons bind no scrubber, so these pages stay
    // backed and mapped after the destroy below, and the migration's destination vGPU (same type, same placement:
    // the benchmark checks) writes warm memory too.
    const loc = fbLocation(d, id);
    touchFb(region, region.size, 0x11111111);
    let off = 0n;
    let view: Buffer | null = null; // current 1 GiB window
    let viewAt = -1n;
    const put = (b: Buffer): void => {
      let i = 0;
      while (i < b.length) {
        const k = off >> 30n;
        if (k !== viewAt) {
          const start = k << 30n;
          const left = region.size - start;
          view = region.window(start, Number(left < 1n << 30n ? left : 1n << 30n));
          viewAt = k;
        }
        const rel = Number(off - (viewAt << 30n));
        const n = Math.min(b.length - i, view!.length - rel);
        b.copy(view!, rel, i, i + n);
        off += BigInt(n);
        i += n;
      }
    };
    s.write(`${JSON.stringify({ op: 'ready', base: loc.base.toString() })}\n`);
    if (hello.rest.length > 0) put(hello.rest);
    // Events, not `for await`: finishing an async iteration destroys the socket, and the answer must still go out.
    // Read through an 8 MiB PassThrough as the migration listener does: the socket is drained eagerly into it.
    const pt = new PassThrough({ highWaterMark: 8 << 20 });
    s.pipe(pt);
    await new Promise<void>((resolve, reject) => {
      pt.on('data', (c: Buffer) => put(c));
      pt.once('end', resolve);
      s.once('error', reject);
    });
    // The fresh-FB case: leave the FB as a scrub leaves it (zero, pages given back), as a real destination vGPU is
    // created; the migration's "the rest is zero" record is then checked over holes, not over backed zero pages.
    // Its time is reported (scrubMs) so the floor does not count it.
    const z0 = performance.now();
    if (hello.scrub) await region.zero(0n, region.size);
    s.end(`${JSON.stringify({ op: 'done', bytes: off.toString(), scrubMs: performance.now() - z0 })}\n`);
  } catch (e) {
    s.destroy(e as Error);
  } finally {
    if (id !== null) {
      d.mig.forget(id);
      await d.svc.destroy(id, { force: true }).catch(() => undefined);
    }
  }
}

/** Per-page hashes of a vGPU's FB folded into one value (the benchmark compares it with the source's). */
async function fbDigest(d: SimDaemon, id: string): Promise<string> {
  const loc = fbLocation(d, id);
  const ops = loadNativeOps();
  const arena = ops.openArena(loc.path);
  try {
    const h = await arena.hashPages(loc.base, loc.size, 4096);
    return ops.hashBuffers([new Uint8Array(h.buffer, h.byteOffset, h.byteLength)]).toString(16);
  } finally {
    arena.close();
  }
}

async function main(): Promise<void> {
  const d = await startSimDaemon({ bdf, dir, fbBytes: BigInt(fbBytes) });
  await d.mig.listen(migSock);
  rmSync(floorSock, { force: true });
  const floor = createServer({ allowHalfOpen: true }, (s) => { void floorConnection(d, s); });
  await new Promise<void>((r) => floor.listen(floorSock, r));
  const stop = async (): Promise<void> => {
    floor.close();
    rmSync(floorSock, { force: true });
    await d.stop();
    process.exit(0);
  };
  process.on('message', (m: { op?: string; vgpu?: string }) => {
    if (m.op === 'stop') void stop();
    if (m.op === 'hash' && m.vgpu !== undefined) {
      void fbDigest(d, m.vgpu).then((hash) => process.send!({ op: 'hash', vgpu: m.vgpu, hash, base: fbLocation(d, m.vgpu!).base.toString() }));
    }
  });
  process.on('disconnect', () => { void stop(); }); // the bench died: take the GPU down with us
  process.send!({ op: 'ready', simPid: d.dev.descriptor.pid });
}

main().catch((e: unknown) => {
  process.send?.({ op: 'fatal', message: String((e as Error).stack ?? e) });
  process.exit(1);
});
