// Fill and verify jobs (AsyncWorker → Promise; the range is split over hardware threads inside Execute), and the
// single-threaded memset floor the scrub benchmark compares against.
#include <fcntl.h>
#include <immintrin.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "common.h"

namespace vgpu {
namespace {

constexpr uint64_t kNtThreshold = uint64_t(1) << 20;  // below this, regular stores (data likely re-read soon)

bool SameBytes(uint32_t p) { return ((p >> 8) & 0xffffff) == (p & 0xffffff); }

void FillWords(uint8_t* p, uint64_t len, uint32_t pat) {
  uint64_t pat64 = (uint64_t(pat) << 32) | pat;
  uint64_t i = 0;
  if ((reinterpret_cast<uintptr_t>(p) & 7) && len >= 4) {
    std::memcpy(p, &pat, 4);
    i = 4;
  }
  for (; i + 8 <= len; i += 8) std::memcpy(p + i, &pat64, 8);
  for (; i + 4 <= len; i += 4) std::memcpy(p + i, &pat, 4);
}

// Non-temporal 32-byte stores: the pattern bypasses the cache, which is what a multi-GiB scrub wants (it will not
// be read back soon). The target attribute lets this compile without -mavx2; it only runs when the CPU has AVX2.
__attribute__((target("avx2"))) void FillAvx2Stream(uint8_t* p, uint64_t len, uint32_t pat) {
  uint64_t head = (32 - (reinterpret_cast<uintptr_t>(p) & 31)) & 31;
  if (head > len) head = len & ~uint64_t(3);
  FillWords(p, head, pat);  // p is 4-aligned, so head is a multiple of 4 and the phase is kept
  p += head;
  len -= head;
  __m256i v = _mm256_set1_epi32(static_cast<int>(pat));
  uint64_t i = 0;
  for (; i + 128 <= len; i += 128) {
    _mm256_stream_si256(reinterpret_cast<__m256i*>(p + i), v);
    _mm256_stream_si256(reinterpret_cast<__m256i*>(p + i + 32), v);
    _mm256_stream_si256(reinterpret_cast<__m256i*>(p + i + 64), v);
    _mm256_stream_si256(reinterpret_cast<__m256i*>(p + i + 96), v);
  }
  for (; i + 32 <= len; i += 32) _mm256_stream_si256(reinterpret_cast<__m256i*>(p + i), v);
  _mm_sfence();  // streaming stores are weakly ordered: make them visible before the job reports completion
  FillWords(p + i, len - i, pat);
}

bool HasAvx2() {
  static const bool has = __builtin_cpu_supports("avx2");
  return has;
}

// Fastest store loop for a 4-aligned range: glibc memset when the 4 bytes are equal (it picks non-temporal stores
// for large sizes by itself), AVX2 streaming stores otherwise, plain 8-byte stores on older CPUs.
void FillRange(uint8_t* p, uint64_t len, uint32_t pat) {
  if (SameBytes(pat)) {
    std::memset(p, pat & 0xff, len);
  } else if (len >= kNtThreshold && HasAvx2()) {
    FillAvx2Stream(p, len, pat);
  } else {
    FillWords(p, len, pat);
  }
}

void ParallelFill(uint8_t* base, uint64_t len, uint32_t pat) {
  ParallelRanges(len, 4096, [&](uint64_t b, uint64_t e) { FillRange(base + b, e - b, pat); });
}

class FillWorker : public Napi::AsyncWorker {
 public:
  FillWorker(Napi::Env env, MappingPtr map, uint64_t off, uint64_t len, uint32_t pat, bool release)
      : Napi::AsyncWorker(env, "vgpud:fill"), deferred_(Napi::Promise::Deferred::New(env)), map_(std::move(map)),
        off_(off), len_(len), pat_(pat), release_(release) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    if (len_ == 0) return;
    uint8_t* base = map_->base;
    if (pat_ == 0 && release_) {
      ZeroRelease(base);
      return;
    }
    // Reserve for zero fills too: allocating the blocks up front is also ~3x faster than faulting shmem pages in.
    if (!Reserve()) return;
    ParallelFill(base + off_, len_, pat_);
  }

  void OnOK() override { deferred_.Resolve(Env().Undefined()); }
  void OnError(const Napi::Error& e) override {
    Napi::Error err = MakeError(Env(), code_, e.Message());
    deferred_.Reject(err.Value());
  }

 private:
  // Whole pages go back to the kernel (hole punched in the tmpfs file: reads see zeros, memory is freed); the
  // partial pages at the edges are written with zeros.
  void ZeroRelease(uint8_t* base) {
    const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
    uint64_t first = (off_ + page - 1) / page * page;
    uint64_t last = (off_ + len_) / page * page;
    if (first >= last) {
      std::memset(base + off_, 0, len_);
      return;
    }
    std::memset(base + off_, 0, first - off_);
    std::memset(base + last, 0, off_ + len_ - last);
    if (fallocate(map_->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(first),
                  static_cast<off_t>(last - first)) == 0) {
      return;
    }
    if (madvise(base + first, last - first, MADV_REMOVE) == 0) return;
    // The filesystem supports neither: write the zeros (correct, just not sparse).
    ParallelFill(base + first, last - first, 0);
  }

  // A non-zero fill of a sparse tmpfs range allocates its pages. If memory runs out while *storing*, the kernel
  // kills the process with SIGBUS — no error to catch. Allocating the range first with fallocate turns that into
  // a clean ENOSPC. Skipped when the file is already fully allocated (the common re-scrub case: it costs a walk).
  bool Reserve() {
    struct stat st;
    if (fstat(map_->fd, &st) == 0 && static_cast<uint64_t>(st.st_blocks) * 512 >= map_->size) return true;
    // In 64 MiB steps: one multi-GiB fallocate call was measured stalling the event loop's thread for ~50 ms.
    const uint64_t step = uint64_t(64) << 20;
    int err = 0;
    for (uint64_t o = off_; o < off_ + len_ && err == 0; o += step) {
      uint64_t n = std::min(step, off_ + len_ - o);
      if (fallocate(map_->fd, 0, static_cast<off_t>(o), static_cast<off_t>(n)) != 0) err = errno;
    }
    if (err == 0) return true;
    if (err == EOPNOTSUPP || err == ENOSYS) return true;  // filesystem cannot tell us; go ahead
    code_ = CodeForErrno(err);
    SetError(std::string("fill: cannot allocate the range (") + std::strerror(err) +
             "); free memory or scrub with pattern 0");
    return false;
  }

  Napi::Promise::Deferred deferred_;
  MappingPtr map_;
  uint64_t off_, len_;
  uint32_t pat_;
  bool release_;
  const char* code_ = kEInternal;
};

// First word (offset relative to `p`) that differs from the pattern, or UINT64_MAX.
uint64_t FirstMismatch(const uint8_t* p, uint64_t len, uint32_t pat, const std::vector<uint8_t>& ref) {
  const uint64_t block = ref.size();
  for (uint64_t b = 0; b < len; b += block) {
    uint64_t n = std::min(block, len - b);
    if (std::memcmp(p + b, ref.data(), n) == 0) continue;
    for (uint64_t i = b; i + 4 <= b + n; i += 4) {
      uint32_t w;
      std::memcpy(&w, p + i, 4);
      if (w != pat) return i;
    }
  }
  return UINT64_MAX;
}

class VerifyWorker : public Napi::AsyncWorker {
 public:
  VerifyWorker(Napi::Env env, MappingPtr map, uint64_t off, uint64_t len, uint32_t pat)
      : Napi::AsyncWorker(env, "vgpud:verify"), deferred_(Napi::Promise::Deferred::New(env)), map_(std::move(map)),
        off_(off), len_(len), pat_(pat) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    std::vector<uint8_t> ref(64 * 1024);
    FillWords(ref.data(), ref.size(), pat_);
    const uint8_t* base = map_->base + off_;
    std::atomic<uint64_t> best{UINT64_MAX};
    ParallelRanges(len_, 4096, [&](uint64_t b, uint64_t e) {
      uint64_t r = FirstMismatch(base + b, e - b, pat_, ref);
      if (r == UINT64_MAX) return;
      uint64_t at = b + r, cur = best.load();
      while (at < cur && !best.compare_exchange_weak(cur, at)) {
      }
    });
    result_ = best.load();
  }

  void OnOK() override {
    Napi::Env env = Env();
    deferred_.Resolve(result_ == UINT64_MAX ? Napi::Number::New(env, -1)
                                            : Napi::Number::New(env, static_cast<double>(off_ + result_)));
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(MakeError(Env(), kEInternal, e.Message()).Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  MappingPtr map_;
  uint64_t off_, len_;
  uint32_t pat_;
  uint64_t result_ = UINT64_MAX;
};

}  // namespace

Napi::Value StartFill(Napi::Env env, MappingPtr map, uint64_t off, uint64_t len, uint32_t pattern, bool release) {
  auto* w = new FillWorker(env, std::move(map), off, len, pattern, release);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

Napi::Value StartVerify(Napi::Env env, MappingPtr map, uint64_t off, uint64_t len, uint32_t pattern) {
  auto* w = new VerifyWorker(env, std::move(map), off, len, pattern);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// memsetFloor(buf, byte): one plain memset on the caller's thread — the physical floor, deliberately naive.
Napi::Value MemsetFloor(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsBuffer()) ThrowCode(env, kEInval, "memsetFloor: first argument must be a Buffer");
  uint32_t byte = ArgU32(info, 1, "memsetFloor", "byte");
  auto buf = info[0].As<Napi::Buffer<uint8_t>>();
  std::memset(buf.Data(), static_cast<int>(byte & 0xff), buf.Length());
  return env.Undefined();
}

}  // namespace vgpu
