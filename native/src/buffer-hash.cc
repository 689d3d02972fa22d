// hashBuffers(parts): "vgpu-buffer-hash-v1" over the concatenation of the parts (Uint8Arrays), as a BigInt. The
// definition lives in native/buffer-hash.ts (the fallback computes the same values): 32 lanes of the page hash's
// two-chain step, word k of the zero-padded input feeding lane k mod 32, lanes folded in order with the length.
// The lane layout is what makes it fast: a 128-byte block is four 8-lane AVX2 vectors as loaded, no transpose, and
// each vector is an independent chain, so the multiplier stays busy and the loop runs at memory speed (a frame of
// 1 MiB was just copied, so it is still in cache). Synchronous: a 1 MiB frame takes ~0.1 ms, less than the
// round trip of handing it to a thread.
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cstring>

#include "common.h"
#include "hash-mix.h"
#include "kernels.h"

namespace vgpu {
namespace {

constexpr int kLanes = 32;
constexpr uint64_t kBlock = kLanes * 4;

inline uint32_t Rotl5(uint32_t x) { return (x << 5) | (x >> 27); }

struct Lanes {
  alignas(32) uint32_t lo[kLanes];
  alignas(32) uint32_t hi[kLanes];
};

void BlocksScalar(Lanes& s, const uint8_t* p, uint64_t blocks) {
  for (uint64_t b = 0; b < blocks; b++, p += kBlock) {
    for (int j = 0; j < kLanes; j++) {
      uint32_t w;
      std::memcpy(&w, p + 4 * j, 4);  // little-endian host (x86-64 / arm64 Linux)
      s.lo[j] = (s.lo[j] ^ w) * kMulLo;
      s.hi[j] = (Rotl5(s.hi[j]) ^ w) * kMulHi;
    }
  }
}

#if defined(__x86_64__)
__attribute__((target("avx2"))) void BlocksAvx2(Lanes& s, const uint8_t* p, uint64_t blocks) {
  __m256i lo[4], hi[4];
  for (int v = 0; v < 4; v++) {
    lo[v] = _mm256_load_si256(reinterpret_cast<const __m256i*>(s.lo + 8 * v));
    hi[v] = _mm256_load_si256(reinterpret_cast<const __m256i*>(s.hi + 8 * v));
  }
  const __m256i ml = _mm256_set1_epi32(static_cast<int>(kMulLo)), mh = _mm256_set1_epi32(static_cast<int>(kMulHi));
  for (uint64_t b = 0; b < blocks; b++, p += kBlock) {
    for (int v = 0; v < 4; v++) {
      __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32 * v));
      lo[v] = _mm256_mullo_epi32(_mm256_xor_si256(lo[v], w), ml);
      __m256i r = _mm256_or_si256(_mm256_slli_epi32(hi[v], 5), _mm256_srli_epi32(hi[v], 27));
      hi[v] = _mm256_mullo_epi32(_mm256_xor_si256(r, w), mh);
    }
  }
  for (int v = 0; v < 4; v++) {
    _mm256_store_si256(reinterpret_cast<__m256i*>(s.lo + 8 * v), lo[v]);
    _mm256_store_si256(reinterpret_cast<__m256i*>(s.hi + 8 * v), hi[v]);
  }
}

#endif

void Blocks(BufHash kernel, Lanes& s, const uint8_t* p, uint64_t blocks) {
  if (blocks == 0) return;
#if defined(__x86_64__)
  if (kernel == BufHash::kAvx2) {
    BlocksAvx2(s, p, blocks);
    return;
  }
#endif
  BlocksScalar(s, p, blocks);
}

}  // namespace

Napi::Value HashBuffers(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray()) ThrowCode(env, kEInval, "hashBuffers: argument must be an array of Uint8Arrays");
  Napi::Array parts = info[0].As<Napi::Array>();
  const BufHash kernel = CurrentKernels().bufHash;
  Lanes s;
  for (int j = 0; j < kLanes; j++) {
    s.lo[j] = kLo0;
    s.hi[j] = kHi0;
  }
  alignas(32) uint8_t stage[kBlock];
  uint64_t staged = 0, n = 0;
  const uint32_t count = parts.Length();
  for (uint32_t i = 0; i < count; i++) {
    Napi::Value v = parts.Get(i);
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
      ThrowCode(env, kEInval, "hashBuffers: part " + std::to_string(i) + " is not a Uint8Array (or Buffer)");
    }
    auto a = v.As<Napi::Uint8Array>();
    const uint8_t* p = a.Data();
    uint64_t len = a.ByteLength();
    n += len;
    if (staged > 0) {
      uint64_t k = std::min<uint64_t>(kBlock - staged, len);
      std::memcpy(stage + staged, p, k);
      staged += k;
      p += k;
      len -= k;
      if (staged < kBlock) continue;
      Blocks(kernel, s, stage, 1);
      staged = 0;
    }
    uint64_t whole = len / kBlock;
    Blocks(kernel, s, p, whole);
    p += whole * kBlock;
    len -= whole * kBlock;
    if (len > 0) {
      std::memcpy(stage, p, len);
      staged = len;
    }
  }
  if (staged > 0) {
    std::memset(stage + staged, 0, kBlock - staged);
    Blocks(kernel, s, stage, 1);
  }
  uint32_t a = kLo0 ^ static_cast<uint32_t>(n), b = kHi0 ^ static_cast<uint32_t>(n >> 32);
  for (int j = 0; j < kLanes; j++) {
    a = (a ^ s.lo[j]) * kMulLo;
    b = (Rotl5(b) ^ s.hi[j]) * kMulHi;
  }
  uint32_t l = Fmix32(a);
  uint32_t h = Fmix32(b ^ l);
  return Napi::BigInt::New(env, (uint64_t(h) << 32) | l);
}

}  // namespace vgpu
