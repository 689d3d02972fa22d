// hashPages job. The hash is "vgpu-page-hash-v1", defined in native/page-hash.ts; this is the same function:
//   words w[] = the page as u32 little-endian; lo = 0x811C9DC5, hi = 0x9E3779B9
//   per word: lo = (lo ^ w) * 0x01000193; hi = (rotl32(hi, 5) ^ w) * 0x9E3779B1   (all mod 2^32)
//   L = fmix32(lo); H = fmix32(hi ^ L); hash = H << 32 | L     (fmix32 = murmur3's finaliser)
// Two 32-bit lanes so the JS fallback can compute it with Math.imul at GB/s; change both files together.
// The definition is a serial chain per page, so speed comes from hashing many pages side by side (4 scalar, 2 × 8 with
// AVX2; the kernel is chosen at run time, kernels.h), from the helper threads, and from not reading holes at all (a
// hole page has a constant hash).
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cstring>
#include <vector>

#include "common.h"
#include "hash-mix.h"
#include "extents.h"
#include "kernels.h"

namespace vgpu {
namespace {

inline uint64_t Finish(uint32_t lo, uint32_t hi) {
  uint32_t l = Fmix32(lo);
  return (uint64_t(Fmix32(hi ^ l)) << 32) | l;
}

// Streaming form of one page's hash, so a page can be fed from memory and from known-zero (hole) parts in turn.
struct PageHasher {
  uint32_t lo = kLo0, hi = kHi0;
  void Words(const uint8_t* p, uint64_t bytes) {
    for (uint64_t i = 0; i < bytes; i += 4) {
      uint32_t w;
      std::memcpy(&w, p + i, 4);  // little-endian host (x86-64 / arm64 Linux)
      lo = (lo ^ w) * kMulLo;
      hi = (((hi << 5) | (hi >> 27)) ^ w) * kMulHi;
    }
  }
  void Zeros(uint64_t bytes) {
    for (uint64_t i = 0; i < bytes; i += 4) {
      lo *= kMulLo;
      hi = ((hi << 5) | (hi >> 27)) * kMulHi;
    }
  }
  uint64_t Final() const { return Finish(lo, hi); }
};

// Four pages at once, scalar: the per-page hash is one long dependency chain (xor → multiply, 4+ cycles a word),
// so a single page cannot go faster than ~1 byte/cycle; interleaving independent pages fills the multiplier.
void Hash4(const uint8_t* p, uint64_t ps, uint64_t* out) {
  uint32_t lo[4] = {kLo0, kLo0, kLo0, kLo0}, hi[4] = {kHi0, kHi0, kHi0, kHi0};
  for (uint64_t i = 0; i < ps; i += 4) {
    for (int j = 0; j < 4; j++) {
      uint32_t w;
      std::memcpy(&w, p + j * ps + i, 4);
      lo[j] = (lo[j] ^ w) * kMulLo;
      hi[j] = (((hi[j] << 5) | (hi[j] >> 27)) ^ w) * kMulHi;
    }
  }
  for (int j = 0; j < 4; j++) out[j] = Finish(lo[j], hi[j]);
}

#if defined(__x86_64__)
// AVX2, one page per 32-bit lane: a vector holds word k of 8 pages, so each lane runs PageHasher's arithmetic for
// its own page and the values are identical. What limits it is not the multiplier but the memory access pattern:
//  * 8 pages at the same offset are 8 lines in ONE L1 set (the offset within a 4 KiB page picks the set), and an
//    L1 set has 8 ways. The old kernel ran 16 pages side by side — 16 lines fighting for 8 ways, each line fetched
//    from L2 twice — and ran at ~9 GB/s from memory on a Zen 3 EPYC. Here a second group of 8 pages runs half a page
//    behind the first (group g−1's second half beside group g's first half), so the two groups' lines sit in
//    different sets, and the multiplier still gets two independent chains: ~15–16 GB/s there (17–18 with the
//    next-page prefetch below), against a ~19 GB/s plain read of the same memory.
//  * The 8×8 word transpose is done as two 4×4 in-lane transposes of vectors assembled from 16-byte halves (a plain
//    load for pages 0–3, a broadcast load + blend for pages 4–7), which keeps the cross-lane shuffle unit free.
//  * The rotate is split so only one operation waits on the previous multiply: rotl5(h) ^ w = (h << 5) ^ ((h >> 27) ^
//    w) — the two shifted halves never overlap, so OR and XOR agree.
//  * Software prefetch inside a page (128–512 B ahead, T0/T1/NTA) was slower every time on that CPU; one prefetch of
//    the first line of each page of the next group is faster (below).
#define VGPU_AVX2 __attribute__((target("avx2"), always_inline)) inline

VGPU_AVX2 __m256i HalfPair(const uint8_t* lo, const uint8_t* hi) {
  return _mm256_blend_epi32(_mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(lo))),
                            _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(hi))), 0xF0);
}

// Words k..k+3 (at byte offset `off`) of the 8 pages from p: r0..r3 = word k..k+3 of pages 0..7, lane = page.
VGPU_AVX2 void Quad(const uint8_t* p, uint64_t ps, uint64_t off, __m256i& r0, __m256i& r1, __m256i& r2, __m256i& r3) {
  const uint8_t* q = p + off;
  __m256i a0 = HalfPair(q, q + 4 * ps), a1 = HalfPair(q + ps, q + 5 * ps);
  __m256i a2 = HalfPair(q + 2 * ps, q + 6 * ps), a3 = HalfPair(q + 3 * ps, q + 7 * ps);
  __m256i t0 = _mm256_unpacklo_epi32(a0, a1), t1 = _mm256_unpackhi_epi32(a0, a1);
  __m256i t2 = _mm256_unpacklo_epi32(a2, a3), t3 = _mm256_unpackhi_epi32(a2, a3);
  r0 = _mm256_unpacklo_epi64(t0, t2);
  r1 = _mm256_unpackhi_epi64(t0, t2);
  r2 = _mm256_unpacklo_epi64(t1, t3);
  r3 = _mm256_unpackhi_epi64(t1, t3);
}

struct Lanes8 {
  __m256i lo, hi;
};

VGPU_AVX2 Lanes8 Start8() { return {_mm256_set1_epi32(static_cast<int>(kLo0)), _mm256_set1_epi32(static_cast<int>(kHi0))}; }

VGPU_AVX2 void Step8(Lanes8& s, __m256i w, __m256i ml, __m256i mh) {
  s.lo = _mm256_mullo_epi32(_mm256_xor_si256(s.lo, w), ml);
  s.hi = _mm256_mullo_epi32(_mm256_xor_si256(_mm256_slli_epi32(s.hi, 5), _mm256_xor_si256(_mm256_srli_epi32(s.hi, 27), w)), mh);
}

VGPU_AVX2 void Finish8(const Lanes8& s, uint64_t* out) {
  alignas(32) uint32_t l[8], h[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(l), s.lo);
  _mm256_store_si256(reinterpret_cast<__m256i*>(h), s.hi);
  for (int j = 0; j < 8; j++) out[j] = Finish(l[j], h[j]);
}

// One group alone over bytes [from, to) of its pages (the pipeline's first and last half pages).
VGPU_AVX2 void Run8(Lanes8& s, const uint8_t* p, uint64_t ps, uint64_t from, uint64_t to, __m256i ml, __m256i mh) {
  for (uint64_t i = from; i < to; i += 16) {
    __m256i w0, w1, w2, w3;
    Quad(p, ps, i, w0, w1, w2, w3);
    Step8(s, w0, ml, mh);
    Step8(s, w1, ml, mh);
    Step8(s, w2, ml, mh);
    Step8(s, w3, ml, mh);
  }
}

// `n` pages (a multiple of 8, page size a multiple of 32), all data.
__attribute__((target("avx2"))) void HashStaggeredAvx2(const uint8_t* p, uint64_t ps, uint64_t n, uint64_t* out) {
  const __m256i ml = _mm256_set1_epi32(static_cast<int>(kMulLo)), mh = _mm256_set1_epi32(static_cast<int>(kMulHi));
  const uint64_t half = ps / 2, groups = n / 8, group = 8 * ps;
  Lanes8 a = Start8();
  Run8(a, p, ps, 0, half, ml, mh);
  for (uint64_t g = 1; g < groups; g++) {
    const uint8_t* pa = p + (g - 1) * group + half;  // group g−1, second half
    const uint8_t* pb = p + g * group;               // group g, first half
    const uint8_t* next = g + 1 < groups ? p + (g + 1) * group : nullptr;
    Lanes8 b = Start8();
    for (uint64_t i = 0; i < half; i += 16) {
      // The first line of each page of the NEXT group, one per step early in the phase: a new 4 KiB page is a new
      // TLB entry (a two-level walk under a hypervisor) and an untrained hardware prefetch stream; starting both a
      // phase ahead hides them (+8–12 % from memory on the Zen 3 host; more lines per page, or a farther group, was
      // slower — docs/reference/cpu-kernels.md).
      if (next != nullptr && i < 8 * 16) _mm_prefetch(reinterpret_cast<const char*>(next + (i / 16) * ps), _MM_HINT_T0);
      __m256i a0, a1, a2, a3, b0, b1, b2, b3;
      Quad(pa, ps, i, a0, a1, a2, a3);
      Quad(pb, ps, i, b0, b1, b2, b3);
      Step8(a, a0, ml, mh);
      Step8(b, b0, ml, mh);
      Step8(a, a1, ml, mh);
      Step8(b, b1, ml, mh);
      Step8(a, a2, ml, mh);
      Step8(b, b2, ml, mh);
      Step8(a, a3, ml, mh);
      Step8(b, b3, ml, mh);
    }
    Finish8(a, out + (g - 1) * 8);
    a = b;
  }
  Run8(a, p + (groups - 1) * group, ps, half, ps, ml, mh);
  Finish8(a, out + (groups - 1) * 8);
}
#undef VGPU_AVX2
#endif

// Hash `n` consecutive pages that are all data (no hole inside) with the job's kernel.
void HashDataPages(PageHash kernel, const uint8_t* p, uint64_t ps, uint64_t n, uint64_t* out) {
  uint64_t i = 0;
#if defined(__x86_64__)
  if (kernel == PageHash::kAvx2Staggered && ps >= 32 && n >= 8) {
    i = n / 8 * 8;
    HashStaggeredAvx2(p, ps, i, out);
  }
#endif
  for (; i + 4 <= n; i += 4) Hash4(p + i * ps, ps, out + i);
  for (; i < n; i++) {
    PageHasher h;
    h.Words(p + i * ps, ps);
    out[i] = h.Final();
  }
}

class HashWorker : public Napi::AsyncWorker {
 public:
  HashWorker(Napi::Env env, MappingPtr map, uint64_t off, uint64_t len, uint64_t ps)
      : Napi::AsyncWorker(env, "vgpud:hashPages"), deferred_(Napi::Promise::Deferred::New(env)),
        map_(std::move(map)), off_(off), len_(len), ps_(ps), kernel_(CurrentKernels().pageHash) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  // Pages entirely inside a hole get the zero-page hash without being read (reading would allocate them); pages
  // with data are hashed from memory — pages that are part hole (page sizes above 4 KiB) are fed zeros for the
  // hole parts. The pages with data are cut into slices on the low-priority helpers.
  void Execute() override {
    const uint64_t ps = ps_, pages = len_ / ps;
    out_ = new std::vector<uint64_t>(pages);
    if (pages == 0) return;
    uint64_t* out = out_->data();
    const uint8_t* base = map_->base + off_;
    std::vector<Extent> ext = DataExtents(map_->fd, off_, len_);
    // Page runs touched by data, in page units, merged.
    std::vector<Extent> runs;
    for (const Extent& e : ext) {
      uint64_t b = e.begin / ps, en = (e.end + ps - 1) / ps;
      if (!runs.empty() && runs.back().end >= b) runs.back().end = std::max(runs.back().end, en);
      else runs.push_back({b, en});
    }
    uint64_t dataPages = 0;
    for (const Extent& r : runs) dataPages += r.end - r.begin;
    if (dataPages < pages) {
      PageHasher z;
      z.Zeros(ps);
      const uint64_t zero = z.Final();
      uint64_t pos = 0;
      for (const Extent& r : runs) {
        std::fill(out + pos, out + r.begin, zero);
        pos = r.end;
      }
      std::fill(out + pos, out + pages, zero);
    }
    // Data space in bytes over the page runs: slices are multiples of the page size, so no page straddles two.
    std::vector<Extent> runBytes;
    for (const Extent& r : runs) runBytes.push_back({r.begin * ps, r.end * ps});
    ExtentSpace space(std::move(runBytes));
    ParallelSlices(space.total(), ps, kSliceBytes, [&](uint64_t cb, uint64_t ce) {
      space.ForEach(cb, ce, [&](uint64_t b, uint64_t e) { HashRun(base, ext, b, e, out); });
    });
  }

  // Hash the pages of [b, e) (page-aligned, range-relative): runs of whole-data pages go to the fast kernels,
  // pages that contain a hole part are fed piece by piece.
  void HashRun(const uint8_t* base, const std::vector<Extent>& ext, uint64_t b, uint64_t e, uint64_t* out) const {
    const uint64_t ps = ps_;
    // First extent that ends after b.
    size_t i = static_cast<size_t>(
        std::upper_bound(ext.begin(), ext.end(), b, [](uint64_t v, const Extent& x) { return v < x.end; }) -
        ext.begin());
    uint64_t pos = b;
    while (pos < e) {
      // Whole pages fully inside extent i, from pos.
      if (i < ext.size() && ext[i].begin <= pos) {
        uint64_t full = (std::min(ext[i].end, e) - pos) / ps;
        if (full > 0) {
          HashDataPages(kernel_, base + pos, ps, full, out + pos / ps);
          pos += full * ps;
          if (pos >= ext[i].end) i++;
          continue;
        }
      }
      // A page that is part hole: walk the extents that overlap it.
      uint64_t pe = pos + ps;
      PageHasher h;
      uint64_t at = pos;
      while (at < pe) {
        while (i < ext.size() && ext[i].end <= at) i++;
        if (i < ext.size() && ext[i].begin <= at) {
          uint64_t to = std::min(ext[i].end, pe);
          h.Words(base + at, to - at);
          at = to;
        } else {
          uint64_t to = i < ext.size() ? std::min(ext[i].begin, pe) : pe;
          h.Zeros(to - at);
          at = to;
        }
      }
      out[pos / ps] = h.Final();
      pos = pe;
      while (i < ext.size() && ext[i].end <= pos) i++;
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    std::vector<uint64_t>* v = out_;
    out_ = nullptr;
    size_t n = v->size();
    Napi::ArrayBuffer ab;
    if (n == 0) {
      delete v;
      ab = Napi::ArrayBuffer::New(env, 0);
    } else {
      // Hand the vector's memory to JS without a copy; freed with the BigUint64Array.
      ab = Napi::ArrayBuffer::New(env, v->data(), n * 8,
                                  [](Napi::Env, void*, std::vector<uint64_t>* vec) { delete vec; }, v);
    }
    deferred_.Resolve(Napi::TypedArrayOf<uint64_t>::New(env, n, ab, 0, napi_biguint64_array));
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(MakeError(Env(), kEInternal, e.Message()).Value()); }

 public:
  ~HashWorker() override { delete out_; }

 private:
  Napi::Promise::Deferred deferred_;
  MappingPtr map_;
  uint64_t off_, len_, ps_;
  PageHash kernel_;  // fixed when the job is made, so setKernels() never changes a job in flight
  std::vector<uint64_t>* out_ = nullptr;
};

}  // namespace

Napi::Value StartHashPages(Napi::Env env, MappingPtr map, uint64_t off, uint64_t len, uint64_t pageSize) {
  auto* w = new HashWorker(env, std::move(map), off, len, pageSize);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

}  // namespace vgpu
