// The reserve and populate jobs, which make pages of an arena's backing file ready before anything stores to them
// (docs/reference/precopy-convergence.md). reserve: back them WITHOUT writing — fallocate(KEEP_SIZE) — so a later store
// finds its page allocated, while the file's record of what was written stays exact (on tmpfs a fallocated page that
// nothing stored to is still a hole to SEEK_DATA). populate: fault them in for writing in this process's mapping —
// MADV_POPULATE_WRITE — so later stores take no fault at all (the pages then count as written). A migration
// destination uses both on its FB, which real VRAM backs from the start. Sliced on the low-priority helpers like
// the fill (parallel.h): they only take idle CPU, and each call holds the inode lock for one slice.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/statvfs.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>

#include "common.h"

namespace vgpu {
namespace {

class ReserveWorker : public Napi::AsyncWorker {
 public:
  ReserveWorker(Napi::Env env, MappingPtr map, uint64_t off, uint64_t len, uint64_t keepFree)
      : Napi::AsyncWorker(env, "vgpud:reserve"), deferred_(Napi::Promise::Deferred::New(env)), map_(std::move(map)),
        off_(off), len_(len), keepFree_(keepFree) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    if (len_ == 0) {
      result_ = "reserved";
      return;
    }
    const int fd = map_->fd;
    // Room first (fstatvfs: for tmpfs what its size limit still allows): a reservation that would not fit is not
    // started, rather than failing half way with the filesystem full for everyone else. A tmpfs without a size
    // limit (a memfd's internal mount) reports no blocks at all: nothing to check here (the caller checks memory).
    struct statvfs sv;
    if (fstatvfs(fd, &sv) == 0 && sv.f_blocks > 0) {
      const double avail = static_cast<double>(sv.f_bavail) * static_cast<double>(sv.f_frsize);
      if (avail < static_cast<double>(len_) + static_cast<double>(keepFree_)) {
        result_ = "no-room";
        return;
      }
    }
    std::atomic<int> err{0};
    ParallelSlices(
        len_, 4096, kSliceBytes * 4,
        [&](uint64_t b, uint64_t e) {
          if (fallocate(fd, FALLOC_FL_KEEP_SIZE, static_cast<off_t>(off_ + b), static_cast<off_t>(e - b)) != 0) {
            int zero = 0;
            err.compare_exchange_strong(zero, errno);
          }
        },
        [&] { return err.load(std::memory_order_relaxed) != 0; });
    const int e = err.load();
    if (e == 0) {
      result_ = "reserved";
      return;
    }
    // A filesystem that cannot reserve: nothing was done.
    if (e == EOPNOTSUPP || e == ENOSYS) return;
    // ENOSPC (another user filled it meanwhile) and the rest: what was reserved before stays reserved — it belongs to
    // the range, reads zero and is given back with it (a scrub punches it) — and the caller is told.
    code_ = CodeForErrno(e);
    SetError(std::string("reserve: cannot back the range (") + std::strerror(e) + ")");
  }

  void OnOK() override { deferred_.Resolve(Napi::String::New(Env(), result_)); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(MakeError(Env(), code_, e.Message()).Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  MappingPtr map_;
  uint64_t off_, len_, keepFree_;
  const char* result_ = "unsupported";
  const char* code_ = kEInternal;
};

// populate: map pages of the arena's own mapping for writing (madvise MADV_POPULATE_WRITE, Linux 5.14): each page is
// allocated if needed, zeroed if never written, and entered in this process's page tables — so a later store through
// the mapping takes no page fault at all. Unlike reserve, the pages become written (SEEK_DATA sees them).
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

class PopulateWorker : public Napi::AsyncWorker {
 public:
  PopulateWorker(Napi::Env env, MappingPtr map, uint64_t off, uint64_t len)
      : Napi::AsyncWorker(env, "vgpud:populate"), deferred_(Napi::Promise::Deferred::New(env)), map_(std::move(map)),
        off_(off), len_(len) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    result_ = "populated";
    if (len_ == 0) return;
    uint8_t* base = map_->base + off_;
    std::atomic<int> err{0};
    ParallelSlices(
        len_, 4096, kSliceBytes,
        [&](uint64_t b, uint64_t e) {
          if (madvise(base + b, e - b, MADV_POPULATE_WRITE) != 0) {
            int zero = 0;
            err.compare_exchange_strong(zero, errno);
          }
        },
        [&] { return err.load(std::memory_order_relaxed) != 0; });
    const int e = err.load();
    if (e == 0) return;
    if (e == EINVAL) {  // a kernel before 5.14: nothing to do but let stores fault
      result_ = "unsupported";
      return;
    }
    code_ = CodeForErrno(e);
    SetError(std::string("populate: cannot map the range (") + std::strerror(e) + ")");
  }

  void OnOK() override { deferred_.Resolve(Napi::String::New(Env(), result_)); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(MakeError(Env(), code_, e.Message()).Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  MappingPtr map_;
  uint64_t off_, len_;
  const char* result_ = "unsupported";
  const char* code_ = kEInternal;
};

}  // namespace

Napi::Value StartPopulate(Napi::Env env, MappingPtr map, uint64_t off, uint64_t len) {
  auto* w = new PopulateWorker(env, std::move(map), off, len);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

Napi::Value StartReserve(Napi::Env env, MappingPtr map, uint64_t off, uint64_t len, uint64_t keepFree) {
  auto* w = new ReserveWorker(env, std::move(map), off, len, keepFree);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

}  // namespace vgpu
