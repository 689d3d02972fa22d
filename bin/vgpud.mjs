#!/usr/bin/env node
// The daemon: dist/bin/vgpud.js when the build is up to date, else bin/vgpud.ts through tsx (bin/runtime/launch.mjs).
import { launch } from './runtime/launch.mjs';

await launch('bin/vgpud');
