// Which loop each long job runs, chosen at run time from what the CPU is (cpu-features.h) — not from the machine
// the addon was built on. The reasons and the measurements behind each rule are in docs/reference/cpu-kernels.md.
//
//   fill   jobs below `streamBytes` (about half the last-level cache): the C library — memset when the pattern's
//          four bytes are equal, wmemset otherwise — which picks rep stosb / vector stores for this CPU itself and
//          leaves the data in cache. Jobs at or above it: non-temporal (streaming) vector stores in every slice,
//          AVX2 where usable, SSE2 on any other x86-64. The decision is per JOB, not per slice: glibc only streams
//          once a single call passes its own threshold, and a multi-GiB scrub cut into 4 MiB slices never does —
//          that was the 0.63–0.72 of bench:scrub on a Zen 3 EPYC (temporal stores pay a read-for-ownership per
//          line, ~15 GB/s against ~24 GB/s streaming there).
//   page hash   AVX2 "staggered": 8 pages per vector, two such groups in flight half a page apart (so their 16
//          cache lines fall in different L1 sets); scalar ×4 interleave without AVX2.
//   buffer hash AVX2 when usable, else scalar (same lane layout).
//
// VGPUD_KERNELS (read once, e.g. "fill=stream-sse2,pageHash=scalar-x4,streamThreshold=1048576") and setKernels()
// from JS override the choice, for benchmarks and for tests that run every kernel the CPU has against the
// TypeScript fallback. A job copies the choice when it starts, so a change never affects one in flight.
#pragma once
#include <napi.h>

#include <cstdint>

namespace vgpu {

enum class BigFill : uint8_t { kLibc, kStreamSse2, kStreamAvx2 };
enum class PageHash : uint8_t { kScalar4, kAvx2Staggered };
enum class BufHash : uint8_t { kScalar, kAvx2 };

struct Kernels {
  BigFill bigFill = BigFill::kLibc;
  uint64_t streamBytes = uint64_t(8) << 20;
  PageHash pageHash = PageHash::kScalar4;
  BufHash bufHash = BufHash::kScalar;
};

// The current choice (auto, or as overridden). Cheap: jobs call it once when they start.
Kernels CurrentKernels();

// JS: kernels() → {cpu, fill, pageHash, bufferHash, available, overridden}; setKernels({fill?, pageHash?,
// bufferHash?, streamThreshold?}) — 'auto' (or null) resets a key — returns the same object.
Napi::Value KernelsInfo(const Napi::CallbackInfo& info);
Napi::Value SetKernels(const Napi::CallbackInfo& info);

}  // namespace vgpu
