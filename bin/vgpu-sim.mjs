#!/usr/bin/env node
// The simulated GPU as its own process, any built-in generation (docs/vgpu-sim.service; vgpud's ensure-sim starts
// the generation's own entry): dist/bin/vgpu-sim.js when the build is up to date, else the .ts through tsx.
import { launch } from './runtime/launch.mjs';

await launch('bin/vgpu-sim');
