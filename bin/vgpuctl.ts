/** vgpuctl entry point (bin/vgpuctl.mjs registers tsx and imports this). */
import { exitQuietlyOnClosedPipe } from './cli/closed-pipe.js';
import { runVgpuctl } from './cli/vgpuctl-program.js';

exitQuietlyOnClosedPipe();
process.exitCode = await runVgpuctl(process.argv.slice(2));
