// hashPages job. The hash is "vgpu-page-hash-v1", defined in native/page-hash.ts; this is the same function:
//   words w[] = the page as u32 little-endian; lo = 0x811C9DC5, hi = 0x9E3779B9
//   per word: lo = (lo ^ w) * 0x01000193; hi = (rotl32(hi, 5) ^ w) * 0x9E3779B1   (all mod 2^32)
//   L = fmix32(lo); H = fmix32(hi ^ L); hash = H << 32 | L     (fmix32 = murmur3's finaliser)
// Two 32-bit lanes so the JS fallback can compute it with Math.imul at GB/s; change both files together.
// The definition is a serial chain per page, so speed comes from hashing many pages side by side (4 scalar, 16 with
// AVX2), from the helper threads, and from not reading holes at all (a hole page has a constant hash).
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "common.h"
#include "hash-mix.h"
#include "extents.h"

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

// 16 pages at once with AVX2: two groups of 8 pages, one page per 32-bit lane. Each step loads 8 words of each
// page and transposes the 8×8 block so vector k holds word k of every page; the two groups give the multiplier
// two independent chains. Same arithmetic as PageHasher, lane by lane, so the values are identical.
__attribute__((target("avx2"))) inline void Transpose8(__m256i r[8]) {
  __m256i t[8], u[8];
  for (int k = 0; k < 8; k += 2) {
    t[k] = _mm256_unpacklo_epi32(r[k], r[k + 1]);
    t[k + 1] = _mm256_unpackhi_epi32(r[k], r[k + 1]);
  }
  for (int k = 0; k < 8; k += 4) {
    u[k] = _mm256_unpacklo_epi64(t[k], t[k + 2]);
    u[k + 1] = _mm256_unpackhi_epi64(t[k], t[k + 2]);
    u[k + 2] = _mm256_unpacklo_epi64(t[k + 1], t[k + 3]);
    u[k + 3] = _mm256_unpackhi_epi64(t[k + 1], t[k + 3]);
  }
  for (int k = 0; k < 4; k++) {
    r[k] = _mm256_permute2x128_si256(u[k], u[k + 4], 0x20);
    r[k + 4] = _mm256_permute2x128_si256(u[k], u[k + 4], 0x31);
  }
}

__attribute__((target("avx2"))) void Hash16Avx2(const uint8_t* p, uint64_t ps, uint64_t* out) {
  const __m256i mlo = _mm256_set1_epi32(static_cast<int>(kMulLo)), mhi = _mm256_set1_epi32(static_cast<int>(kMulHi));
  __m256i lo[2], hi[2];
  for (int g = 0; g < 2; g++) {
    lo[g] = _mm256_set1_epi32(static_cast<int>(kLo0));
    hi[g] = _mm256_set1_epi32(static_cast<int>(kHi0));
  }
  for (uint64_t i = 0; i < ps; i += 32) {
    __m256i r[2][8];
    for (int g = 0; g < 2; g++) {
      for (int j = 0; j < 8; j++) {
        r[g][j] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + (g * 8 + j) * ps + i));
      }
      Transpose8(r[g]);
    }
    for (int k = 0; k < 8; k++) {
      for (int g = 0; g < 2; g++) {
        lo[g] = _mm256_mullo_epi32(_mm256_xor_si256(lo[g], r[g][k]), mlo);
        __m256i rot = _mm256_or_si256(_mm256_slli_epi32(hi[g], 5), _mm256_srli_epi32(hi[g], 27));
        hi[g] = _mm256_mullo_epi32(_mm256_xor_si256(rot, r[g][k]), mhi);
      }
    }
  }
  alignas(32) uint32_t l[16], h[16];
  for (int g = 0; g < 2; g++) {
    _mm256_store_si256(reinterpret_cast<__m256i*>(l + 8 * g), lo[g]);
    _mm256_store_si256(reinterpret_cast<__m256i*>(h + 8 * g), hi[g]);
  }
  for (int j = 0; j < 16; j++) out[j] = Finish(l[j], h[j]);
}

bool HasAvx2() {
  static const bool has = __builtin_cpu_supports("avx2");
  return has;
}

// Hash `n` consecutive pages that are all data (no hole inside), fastest way available.
void HashDataPages(const uint8_t* p, uint64_t ps, uint64_t n, uint64_t* out) {
  uint64_t i = 0;
  if (ps >= 32 && HasAvx2()) {
    for (; i + 16 <= n; i += 16) Hash16Avx2(p + i * ps, ps, out + i);
  }
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
        map_(std::move(map)), off_(off), len_(len), ps_(ps) {}

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
          HashDataPages(base + pos, ps, full, out + pos / ps);
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
