#!/usr/bin/env node
// The CLI: dist/bin/vgpuctl.js when the build is up to date, else bin/vgpuctl.ts through tsx (bin/runtime/launch.mjs).
import { launch } from './runtime/launch.mjs';

await launch('bin/vgpuctl');
