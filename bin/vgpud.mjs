#!/usr/bin/env node
// Launcher: registers tsx's ESM loader so the TypeScript sources run without a build step.
import { setFlagsFromString } from 'node:v8';

// Keep V8's young generation small (1 MiB semi-spaces instead of up to 16): the daemon allocates little once it is
// up, and the default lets a burst (a start, 256 creates) leave tens of MiB resident for good (bench:scale). Set
// before anything else is loaded; `node --max-semi-space-size=1 bin/vgpud.mjs` (the systemd unit) does it for sure.
setFlagsFromString('--max-semi-space-size=1');
const { register } = await import('tsx/esm/api');

register();
await import('./vgpud.ts');
