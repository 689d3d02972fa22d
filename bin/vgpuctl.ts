/** vgpuctl entry point (bin/vgpuctl.mjs registers tsx and imports this). */
import { runVgpuctl } from './cli/vgpuctl-program.js';

process.exitCode = await runVgpuctl(process.argv.slice(2));
