import { simRig } from '../test/integration/lifecycle/sim-rig.js';
const r = await simRig({ bdf: '0000:81:00.0', mode: 'worker', logLevel: 'warn' });
const now = () => performance.now();
const xs: number[] = [], ys: number[] = [], zs: number[] = [];
for (let i = 0; i < 300; i++) {
  const t0 = now();
  const c = await r.gpu.firmware.allocClient();
  const t1 = now();
  await r.gpu.firmware.freeClient(c);
  const t2 = now();
  xs.push(t1 - t0); ys.push(t2 - t1);
}
const p = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1]!.toFixed(3);
console.log('alloc', p(xs), 'free', p(ys));
await r.stop();
