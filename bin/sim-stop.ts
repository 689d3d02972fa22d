/**
 * `npm run sim:stop`: stop the vgpu-sim processes of the default config (or of the directories given), by the pid
 * in their descriptors. SIGTERM, then a bounded wait for each to remove its descriptor; the device files (the FB)
 * are kept. Exit 0 when nothing is left running.
 */
import { DEFAULT_SIM_DIR, listDescriptors, pidAlive } from '../hal/sim/device/sim-descriptor.js';

const dirs = process.argv.slice(2).length > 0 ? process.argv.slice(2) : [DEFAULT_SIM_DIR];
let left = 0;
for (const dir of dirs) {
  const { live } = listDescriptors(dir);
  if (live.length === 0) console.log(`no simulator running in ${dir}`);
  for (const d of live) {
    process.kill(d.pid, 'SIGTERM');
    const deadline = Date.now() + 10_000;
    while (pidAlive(d.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    if (pidAlive(d.pid)) {
      console.error(`vgpu-sim ${d.bdf} (pid ${d.pid}) did not stop within 10 s; kill -9 ${d.pid} if it must go`);
      left++;
    } else {
      console.log(`stopped vgpu-sim ${d.bdf} (pid ${d.pid}); its FB stays in ${d.path}`);
    }
  }
}
process.exitCode = left === 0 ? 0 : 1;
