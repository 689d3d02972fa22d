// Fill and verify jobs (AsyncWorker → Promise; Execute hands the range to ParallelSlices' low-priority helper
// threads in bounded slices, see parallel.h), and the single-threaded C-library floors the scrub benchmark compares
// against. The store loop a fill uses is chosen at run time (kernels.h). Verify reads no holes (extents.h).
#include <fcntl.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <cwchar>
#include <system_error>
#include <thread>
#include <vector>

#include "common.h"
#include "extents.h"
#include "kernels.h"

namespace vgpu {
namespace {

static_assert(sizeof(wchar_t) == 4, "wmemset must store 32-bit units (Linux/glibc wchar_t)");

bool SameBytes(uint32_t p) { return ((p >> 8) & 0xffffff) == (p & 0xffffff); }

// Heads and tails of the streaming kernels, and the reference pattern of verify: a few bytes, plain stores.
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

// The C library's own fill: memset when the four pattern bytes are equal (zero included), wmemset otherwise. glibc
// dispatches both on the CPU itself (rep stosb with ERMS/FSRM, AVX2/EVEX vector stores) and keeps the bytes in cache
// — right for a fill smaller than the cache, and the floor bench:scrub compares the addon against.
void FillLibc(uint8_t* p, uint64_t len, uint32_t pat) {
  if (SameBytes(pat)) {
    std::memset(p, static_cast<int>(pat & 0xff), len);
  } else {
    // p and len are 4-aligned (offsets and lengths are checked to 4 bytes; the mapping is page-aligned).
    std::wmemset(reinterpret_cast<wchar_t*>(p), static_cast<wchar_t>(pat), len / 4);
  }
}

#if defined(__x86_64__)
// Non-temporal stores: each line is written whole without first being read (no read-for-ownership) and goes to
// memory around the cache — what a fill much larger than the cache wants. Weakly ordered, hence the sfence before
// the job reports completion. The target attributes let these compile without -mavx2; they run only when the CPU
// has the feature (kernels.cc checks).
__attribute__((target("avx2"))) void FillStreamAvx2(uint8_t* p, uint64_t len, uint32_t pat) {
  uint64_t head = (32 - (reinterpret_cast<uintptr_t>(p) & 31)) & 31;
  if (head > len) head = len & ~uint64_t(3);
  FillWords(p, head, pat);  // p is 4-aligned, so head is a multiple of 4 and the pattern's phase is kept
  p += head;
  len -= head;
  const __m256i v = _mm256_set1_epi32(static_cast<int>(pat));
  uint64_t i = 0;
  for (; i + 128 <= len; i += 128) {
    _mm256_stream_si256(reinterpret_cast<__m256i*>(p + i), v);
    _mm256_stream_si256(reinterpret_cast<__m256i*>(p + i + 32), v);
    _mm256_stream_si256(reinterpret_cast<__m256i*>(p + i + 64), v);
    _mm256_stream_si256(reinterpret_cast<__m256i*>(p + i + 96), v);
  }
  for (; i + 32 <= len; i += 32) _mm256_stream_si256(reinterpret_cast<__m256i*>(p + i), v);
  _mm_sfence();
  FillWords(p + i, len - i, pat);
}

// Same with 16-byte stores: SSE2 is part of x86-64, so every x86 host streams.
void FillStreamSse2(uint8_t* p, uint64_t len, uint32_t pat) {
  uint64_t head = (16 - (reinterpret_cast<uintptr_t>(p) & 15)) & 15;
  if (head > len) head = len & ~uint64_t(3);
  FillWords(p, head, pat);
  p += head;
  len -= head;
  const __m128i v = _mm_set1_epi32(static_cast<int>(pat));
  uint64_t i = 0;
  for (; i + 64 <= len; i += 64) {
    _mm_stream_si128(reinterpret_cast<__m128i*>(p + i), v);
    _mm_stream_si128(reinterpret_cast<__m128i*>(p + i + 16), v);
    _mm_stream_si128(reinterpret_cast<__m128i*>(p + i + 32), v);
    _mm_stream_si128(reinterpret_cast<__m128i*>(p + i + 48), v);
  }
  for (; i + 16 <= len; i += 16) _mm_stream_si128(reinterpret_cast<__m128i*>(p + i), v);
  _mm_sfence();
  FillWords(p + i, len - i, pat);
}
#endif

// How one fill job stores, fixed when the job starts: by the JOB's length (a slice is always small).
struct FillPlan {
  BigFill kernel;
  static FillPlan For(uint64_t jobBytes) {
    Kernels k = CurrentKernels();
    return FillPlan{jobBytes >= k.streamBytes ? k.bigFill : BigFill::kLibc};
  }
  void Run(uint8_t* p, uint64_t len, uint32_t pat) const {
    switch (kernel) {
#if defined(__x86_64__)
      case BigFill::kStreamAvx2: FillStreamAvx2(p, len, pat); return;
      case BigFill::kStreamSse2: FillStreamSse2(p, len, pat); return;
#endif
      default: FillLibc(p, len, pat); return;
    }
  }
};

void ParallelFill(uint8_t* base, uint64_t len, uint32_t pat) {
  const FillPlan plan = FillPlan::For(len);
  ParallelSlices(len, 4096, kSliceBytes, [&](uint64_t b, uint64_t e) { plan.Run(base + b, e - b, pat); });
}

// Records the first errno any slice hit; slices check it to stop early.
struct FirstError {
  std::atomic<int> err{0};
  void Set(int e) {
    int zero = 0;
    err.compare_exchange_strong(zero, e);
  }
  bool Any() const { return err.load(std::memory_order_relaxed) != 0; }
};

class FillWorker : public Napi::AsyncWorker {
 public:
  FillWorker(Napi::Env env, MappingPtr map, uint64_t off, uint64_t len, uint32_t pat, bool release)
      : Napi::AsyncWorker(env, "vgpud:fill"), deferred_(Napi::Promise::Deferred::New(env)), map_(std::move(map)),
        off_(off), len_(len), pat_(pat), release_(release) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  // Runs on a libuv pool thread, which only coordinates: the work happens on ParallelSlices' low-priority helpers.
  void Execute() override {
    if (len_ == 0) return;
    uint8_t* base = map_->base;
    if (pat_ == 0 && release_) {
      ZeroRelease(base);
      return;
    }
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
  // partial pages at the edges are written with zeros. Punched in slices: one 4 GiB punch holds the inode lock and
  // a core for ~250 ms in a single syscall.
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
    const int fd = map_->fd;
    const FillPlan plan = FillPlan::For(last - first);
    ParallelSlices(last - first, page, kSliceBytes * 4, [&](uint64_t b, uint64_t e) {
      off_t o = static_cast<off_t>(first + b), n = static_cast<off_t>(e - b);
      if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, o, n) == 0) return;
      if (madvise(base + first + b, e - b, MADV_REMOVE) == 0) return;
      // The filesystem supports neither: write the zeros (correct, just not sparse).
      plan.Run(base + first + b, e - b, 0);
    });
  }

  // A non-zero fill of a sparse tmpfs range allocates its pages. If memory runs out while *storing*, the kernel
  // kills the process with SIGBUS — no error to catch. Allocating the whole range first with fallocate turns that
  // into a clean ENOSPC before a single byte changes. Skipped when the file is already fully allocated (the common
  // re-scrub case). Done in slices on the low-priority helpers like the fill itself.
  bool Reserve() {
    struct stat st;
    if (fstat(map_->fd, &st) == 0 && static_cast<uint64_t>(st.st_blocks) * 512 >= map_->size) return true;
    const int fd = map_->fd;
    FirstError fe;
    ParallelSlices(
        len_, 4096, kSliceBytes,
        [&](uint64_t b, uint64_t e) {
          if (fallocate(fd, 0, static_cast<off_t>(off_ + b), static_cast<off_t>(e - b)) != 0) fe.Set(errno);
        },
        [&] { return fe.Any(); });
    int err = fe.err.load();
    if (err == 0 || err == EOPNOTSUPP || err == ENOSYS) return true;  // filesystem cannot tell us; go ahead
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

// First hole (range-relative) given the ascending data extents of a range of `len` bytes, or UINT64_MAX.
uint64_t FirstHole(const std::vector<Extent>& ext, uint64_t len) {
  uint64_t pos = 0;
  for (const Extent& e : ext) {
    if (e.begin > pos) return pos;
    pos = e.end;
  }
  return pos < len ? pos : UINT64_MAX;
}

class VerifyWorker : public Napi::AsyncWorker {
 public:
  VerifyWorker(Napi::Env env, MappingPtr map, uint64_t off, uint64_t len, uint32_t pat)
      : Napi::AsyncWorker(env, "vgpud:verify"), deferred_(Napi::Promise::Deferred::New(env)), map_(std::move(map)),
        off_(off), len_(len), pat_(pat) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  // Holes are never read (reading one through the shared mapping would allocate it): a hole is zeros, so it
  // matches pattern 0 and, for any other pattern, mismatches at its first word. Only data extents before that
  // point are scanned, sliced over the helpers; the scan stops once a mismatch is known (slices are claimed in
  // ascending order, so every slice that could hold an earlier one is already running and gets to finish).
  void Execute() override {
    if (len_ == 0) return;
    std::vector<Extent> ext = DataExtents(map_->fd, off_, len_);
    uint64_t hole = pat_ == 0 ? UINT64_MAX : FirstHole(ext, len_);
    if (hole != UINT64_MAX) {
      // Only data before the hole can hold an earlier mismatch.
      std::vector<Extent> before;
      for (const Extent& e : ext) {
        if (e.begin >= hole) break;
        before.push_back({e.begin, std::min(e.end, hole)});
      }
      ext.swap(before);
    }
    ExtentSpace space(std::move(ext));
    std::vector<uint8_t> ref(64 * 1024);
    FillWords(ref.data(), ref.size(), pat_);
    const uint8_t* base = map_->base + off_;
    std::atomic<uint64_t> best{hole};
    auto record = [&](uint64_t at) {
      uint64_t cur = best.load();
      while (at < cur && !best.compare_exchange_weak(cur, at)) {
      }
    };
    ParallelSlices(
        space.total(), 4, kSliceBytes,
        [&](uint64_t cb, uint64_t ce) {
          space.ForEach(cb, ce, [&](uint64_t b, uint64_t e) {
            uint64_t r = FirstMismatch(base + b, e - b, pat_, ref);
            if (r != UINT64_MAX) record(b + r);
          });
        },
        [&] { return best.load(std::memory_order_relaxed) != hole; });
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

// fillFloor(buf, pattern): the C library's own fill of a 32-bit pattern in one call on the caller's thread —
// memset when the four bytes are equal, wmemset otherwise (what FillLibc does for a small job, but over the whole
// buffer at once, so glibc applies its own large-size strategy). The floor for patterns memset cannot express.
Napi::Value FillFloor(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsBuffer()) ThrowCode(env, kEInval, "fillFloor: first argument must be a Buffer");
  uint32_t pat = ArgU32(info, 1, "fillFloor", "pattern");
  auto buf = info[0].As<Napi::Buffer<uint8_t>>();
  uint8_t* p = buf.Data();
  const uint64_t len = buf.Length();
  if ((reinterpret_cast<uintptr_t>(p) & 3) != 0 || (len & 3) != 0) {
    ThrowCode(env, kEAlign, "fillFloor: the buffer must start and end on a 4-byte boundary");
  }
  FillLibc(p, len, pat);
  return env.Undefined();
}

// libcFillJob(buf, pattern) → Promise: the same C-library call as fillFloor, but on ONE helper thread with the
// priority the job threads take (parallel.h). bench:scrub times its floor this way, so on a busy host the floor and
// the addon are scheduled alike and the ratio compares store loops, not scheduling classes.
class LibcFillJob : public Napi::AsyncWorker {
 public:
  LibcFillJob(Napi::Env env, Napi::Buffer<uint8_t> buf, uint32_t pat)
      : Napi::AsyncWorker(env, "vgpud:libcFillJob"), deferred_(Napi::Promise::Deferred::New(env)),
        ref_(Napi::Persistent(buf)), p_(buf.Data()), len_(buf.Length()), pat_(pat) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    auto run = [this] {
      LowerThisThreadPriority();
      FillLibc(p_, len_, pat_);
    };
    try {
      std::thread(run).join();
    } catch (const std::system_error&) {
      SetError("libcFillJob: cannot start a thread");
    }
  }
  void OnOK() override { deferred_.Resolve(Env().Undefined()); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(MakeError(Env(), kEInternal, e.Message()).Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  Napi::Reference<Napi::Buffer<uint8_t>> ref_;  // keeps the memory alive while the thread writes it
  uint8_t* p_;
  uint64_t len_;
  uint32_t pat_;
};

Napi::Value LibcFillJobStart(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsBuffer()) ThrowCode(env, kEInval, "libcFillJob: first argument must be a Buffer");
  uint32_t pat = ArgU32(info, 1, "libcFillJob", "pattern");
  auto buf = info[0].As<Napi::Buffer<uint8_t>>();
  if ((reinterpret_cast<uintptr_t>(buf.Data()) & 3) != 0 || (buf.Length() & 3) != 0) {
    ThrowCode(env, kEAlign, "libcFillJob: the buffer must start and end on a 4-byte boundary");
  }
  auto* w = new LibcFillJob(env, buf, pat);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

}  // namespace vgpu
