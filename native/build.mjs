#!/usr/bin/env node
// Placeholder until the addon lands: nothing to build.
process.exit(0);
