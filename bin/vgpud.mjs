#!/usr/bin/env node
// Launcher: registers tsx's ESM loader so the TypeScript sources run without a build step.
import { register } from 'tsx/esm/api';

register();
await import('./vgpud.ts');
