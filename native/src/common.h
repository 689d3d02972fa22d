// Shared declarations of the vgpud addon: the mapping every arena wraps, argument checks that throw JS errors
// carrying a stable `code`, and the per-environment state (SetInstanceData, so worker threads each get their own).
#pragma once
#include <napi.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>

namespace vgpu {

// One mmap of a file or memfd. Owned through shared_ptr by the Arena object, by every window (Buffer finalizer)
// and by every in-flight job, so close() or GC of the Arena never unmaps memory a view or a thread still uses.
struct Mapping {
  uint8_t* base = nullptr;
  uint64_t size = 0;
  int fd = -1;
  ~Mapping();
};
using MappingPtr = std::shared_ptr<Mapping>;

// The words wokenOnly waiters sleep on, so the environment's teardown can wake them at once (futex.cc).
struct WaitSet {
  std::mutex m;
  std::unordered_multiset<uint32_t*> addrs;
};

struct InstanceData {
  // Completes wait32 promises from the waiter threads (see futex.cc).
  Napi::ThreadSafeFunction waitTsfn;
  int pendingWaits = 0;
  // Set when the environment goes away so waiter threads stop touching the TSFN.
  std::shared_ptr<std::atomic<bool>> closing = std::make_shared<std::atomic<bool>>(false);
  std::shared_ptr<WaitSet> waiting = std::make_shared<WaitSet>();
  // Sets `closing` and wakes every waiter thread (futex.cc).
  ~InstanceData();
};

// Error codes shared with core/contracts/exceptions.ts.
constexpr const char* kERange = "VGPU_ERANGE";
constexpr const char* kEAlign = "VGPU_EALIGN";
constexpr const char* kEInval = "VGPU_EINVAL";
constexpr const char* kEState = "VGPU_ESTATE";
constexpr const char* kEInternal = "VGPU_EINTERNAL";

[[noreturn]] void ThrowCode(Napi::Env env, const char* code, const std::string& msg);
[[noreturn]] void ThrowErrno(Napi::Env env, const std::string& what, int err);
Napi::Error MakeError(Napi::Env env, const char* code, const std::string& msg);
const char* CodeForErrno(int err);

// A non-negative integral Number below 2^53 (offsets and lengths travel as doubles).
uint64_t ArgU64(const Napi::CallbackInfo& info, size_t i, const char* what, const char* name);
// A 32-bit pattern given as an integer in [-2^31, 2^32).
uint32_t ArgU32(const Napi::CallbackInfo& info, size_t i, const char* what, const char* name);
void CheckRange(Napi::Env env, const char* what, uint64_t size, uint64_t off, uint64_t len);
void CheckAlign(Napi::Env env, const char* what, uint64_t value, uint64_t align, const char* name);

// Long jobs run through ParallelSlices (parallel.h, included at the end): low-priority helper threads, bounded slices.

// Job entry points, one file each; `info[0..]` are the JS arguments after validation by the Arena methods.
Napi::Value StartFill(Napi::Env env, MappingPtr map, uint64_t off, uint64_t len, uint32_t pattern, bool release);
Napi::Value StartPopulate(Napi::Env env, MappingPtr map, uint64_t off, uint64_t len);
Napi::Value StartReserve(Napi::Env env, MappingPtr map, uint64_t off, uint64_t len, uint64_t keepFree);
Napi::Value StartVerify(Napi::Env env, MappingPtr map, uint64_t off, uint64_t len, uint32_t pattern);
Napi::Value StartHashPages(Napi::Env env, MappingPtr map, uint64_t off, uint64_t len, uint64_t pageSize);
Napi::Value StartWait32(Napi::Env env, MappingPtr map, uint64_t off, uint32_t expected, double timeoutMs, bool wokenOnly);
uint32_t Wake32(MappingPtr map, uint64_t off, uint32_t count);

Napi::Function DefineArena(Napi::Env env);
Napi::Value MemsetFloor(const Napi::CallbackInfo& info);
Napi::Value FillFloor(const Napi::CallbackInfo& info);
Napi::Value LibcFillJobStart(const Napi::CallbackInfo& info);
Napi::Value HashBuffers(const Napi::CallbackInfo& info);
Napi::Value SdNotify(const Napi::CallbackInfo& info);
Napi::Value ReleaseFreeMemory(const Napi::CallbackInfo& info);
void InitWaits(Napi::Env env, InstanceData* data);

}  // namespace vgpu

#include "parallel.h"
