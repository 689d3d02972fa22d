// hashPages job. The hash is "vgpu-page-hash-v1", defined in native/page-hash.ts; this is the same function:
//   words w[] = the page as u32 little-endian; lo = 0x811C9DC5, hi = 0x9E3779B9
//   per word: lo = (lo ^ w) * 0x01000193; hi = (rotl32(hi, 5) ^ w) * 0x9E3779B1   (all mod 2^32)
//   L = fmix32(lo); H = fmix32(hi ^ L); hash = H << 32 | L     (fmix32 = murmur3's finaliser)
// Two 32-bit lanes so the JS fallback can compute it with Math.imul at GB/s; change both files together.
#include <cstring>
#include <vector>

#include "common.h"

namespace vgpu {
namespace {

inline uint32_t Fmix32(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

uint64_t HashPage(const uint8_t* p, uint64_t bytes) {
  uint32_t lo = 0x811c9dc5u, hi = 0x9e3779b9u;
  for (uint64_t i = 0; i < bytes; i += 4) {
    uint32_t w;
    std::memcpy(&w, p + i, 4);  // little-endian host (x86-64 / arm64 Linux)
    lo = (lo ^ w) * 0x01000193u;
    hi = (((hi << 5) | (hi >> 27)) ^ w) * 0x9e3779b1u;
  }
  uint32_t l = Fmix32(lo);
  return (uint64_t(Fmix32(hi ^ l)) << 32) | l;
}

class HashWorker : public Napi::AsyncWorker {
 public:
  HashWorker(Napi::Env env, MappingPtr map, uint64_t off, uint64_t len, uint64_t ps)
      : Napi::AsyncWorker(env, "vgpud:hashPages"), deferred_(Napi::Promise::Deferred::New(env)),
        map_(std::move(map)), off_(off), len_(len), ps_(ps) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    uint64_t pages = len_ / ps_;
    out_ = new std::vector<uint64_t>(pages);
    const uint8_t* base = map_->base + off_;
    uint64_t* out = out_->data();
    const uint64_t ps = ps_;
    // Pieces are multiples of the page size, so no page straddles two threads.
    ParallelRanges(len_, ps, [&](uint64_t b, uint64_t e) {
      for (uint64_t i = b; i < e; i += ps) out[i / ps] = HashPage(base + i, ps);
    });
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
