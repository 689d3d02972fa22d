/**
 * PCI address, domain:bus:device.function ("0000:41:00.0"). In a file of its own, without zod, so vgpuctl can check
 * its arguments without loading the config schema (startup time: bench/startup-bench.ts).
 */
export const BDF_PATTERN = /^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/i;
