#!/usr/bin/env node
// The daemon: dist/bin/vgpud.js when the build is up to date, else bin/vgpud.ts through tsx (bin/runtime/launch.mjs).
import { setFlagsFromString } from 'node:v8';
import { launch } from './runtime/launch.mjs';

// Keep V8's young generation small (1 MiB semi-spaces instead of up to 16): the daemon allocates little once it is
// up, and the default lets a burst (a start, 256 creates) leave tens of MiB resident (bench:scale). Set before the
// daemon's modules load; `node --max-semi-space-size=1 bin/vgpud.mjs` (the systemd unit, npm start) does it for sure.
setFlagsFromString('--max-semi-space-size=1');

await launch('bin/vgpud');
