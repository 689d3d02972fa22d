#!/usr/bin/env node
// The simulated GPU as its own process (docs/vgpu-sim.service; vgpud's ensure-sim starts the same module itself):
// dist/hal/ada-lovelace/sim/vgpu-sim.js when the build is up to date, else the .ts through tsx.
import { launch } from './runtime/launch.mjs';

await launch('hal/ada-lovelace/sim/vgpu-sim');
