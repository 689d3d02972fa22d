// wait32/wake32 on a 32-bit word of a shared mapping, with the kernel's futex. Shared (non-PRIVATE) futex ops key
// on the backing file's inode and offset, so a waiter in one process is woken by wake32 in another — which V8's
// Atomics.wait/notify cannot do (they only reach waiters of the same process).
//
// Each wait runs on its own short-lived thread, not on libuv's pool: a pool of 4 threads filled with parked
// waiters would stall every fs call and every fill/hash job — and the job that would wake them. The result comes
// back to JS through one ThreadSafeFunction per environment, ref'd only while waits are pending (so a pending wait
// keeps the process alive, as a timer would, and an idle addon does not).
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <climits>
#include <cmath>
#include <thread>

#include "common.h"

namespace vgpu {
namespace {

// A waiter looks at its word again every kSliceMs even when nobody wakes it: some writers only store (a device
// word a host polls), and their waiters rely on noticing within this bound. A waiter whose word every writer wakes
// (wokenOnly, e.g. the device front's kick word) sleeps in kWokenSliceMs slices instead — its only reason to look is
// the environment's teardown (a worker thread exiting), which wakes every such waiter itself (~InstanceData), so
// the slice just bounds the one case that wake can miss: the teardown between the waiter's last look at `closing`
// and its FUTEX_WAIT. An idle endless wait then costs no wake-ups (200 ms slices were 5 a second, per waiter).
constexpr double kSliceMs = 200.0;
constexpr double kWokenSliceMs = 10000.0;

long Futex(uint32_t* addr, int op, uint32_t val, const struct timespec* ts) {
  return syscall(SYS_futex, addr, op, val, ts, nullptr, 0);
}

struct WaitJob {
  Napi::Promise::Deferred deferred;
  const char* result = "ok";
  explicit WaitJob(Napi::Env env) : deferred(Napi::Promise::Deferred::New(env)) {}
};

const char* DoWait(uint32_t* addr, uint32_t expected, double timeoutMs, bool wokenOnly, const std::atomic<bool>& closing) {
  using Clock = std::chrono::steady_clock;
  const bool forever = !std::isfinite(timeoutMs);
  const auto deadline = Clock::now() + std::chrono::microseconds(forever ? 0 : static_cast<int64_t>(timeoutMs * 1000));
  const double sliceMs = wokenOnly ? kWokenSliceMs : kSliceMs;
  for (;;) {
    if (wokenOnly && closing.load()) return "timed-out";
    double remaining = forever ? sliceMs
                               : std::chrono::duration<double, std::milli>(deadline - Clock::now()).count();
    if (remaining <= 0) return "timed-out";
    double slice = std::min(remaining, sliceMs);
    struct timespec ts;
    ts.tv_sec = static_cast<time_t>(slice / 1000);
    ts.tv_nsec = static_cast<long>(std::fmod(slice, 1000.0) * 1e6);
    long r = Futex(addr, FUTEX_WAIT, expected, &ts);
    if (r == 0) return "ok";  // woken (a spurious wake-up is allowed to report 'ok', as Atomics.wait may)
    int err = errno;
    // StartWait32 already saw the word equal to `expected` on the JS thread before starting this thread, so a
    // different value now means it changed after the wait began: that is the wake-up the caller waits for (the
    // waker may store+wake before this thread reaches FUTEX_WAIT).
    if (err == EAGAIN) return "ok";
    if (err != ETIMEDOUT && err != EINTR) return "ok";  // unexpected: let the caller re-check its condition
    if (closing.load()) return "timed-out";
  }
}

}  // namespace

InstanceData::~InstanceData() {
  closing->store(true);
  std::lock_guard<std::mutex> g(waiting->m);
  for (uint32_t* addr : waiting->addrs) Futex(addr, FUTEX_WAKE, INT_MAX, nullptr);
}

void InitWaits(Napi::Env env, InstanceData* data) {
  data->waitTsfn = Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}),
                                                 "vgpud:wait32", 0, 1);
  data->waitTsfn.Unref(env);
}

Napi::Value StartWait32(Napi::Env env, MappingPtr map, uint64_t off, uint32_t expected, double timeoutMs, bool wokenOnly) {
  auto* data = env.GetInstanceData<InstanceData>();
  auto* job = new WaitJob(env);
  Napi::Promise promise = job->deferred.Promise();
  uint32_t* addr = reinterpret_cast<uint32_t*>(map->base + off);
  // Cheap fast path without a thread: the word already differs.
  if (__atomic_load_n(addr, __ATOMIC_SEQ_CST) != expected) {
    job->deferred.Resolve(Napi::String::New(env, "not-equal"));
    delete job;
    return promise;
  }
  if (timeoutMs == 0) {
    job->deferred.Resolve(Napi::String::New(env, "timed-out"));
    delete job;
    return promise;
  }
  if (data->pendingWaits++ == 0) data->waitTsfn.Ref(env);
  Napi::ThreadSafeFunction tsfn = data->waitTsfn;
  auto closing = data->closing;
  auto waiting = data->waiting;
  try {
    std::thread([tsfn, closing, waiting, map, addr, expected, timeoutMs, wokenOnly, job]() mutable {
      // Only a wokenOnly waiter needs the teardown's wake (the others look every kSliceMs anyway).
      if (wokenOnly) {
        std::lock_guard<std::mutex> g(waiting->m);
        waiting->addrs.insert(addr);
      }
      job->result = DoWait(addr, expected, timeoutMs, wokenOnly, *closing);
      if (wokenOnly) {
        std::lock_guard<std::mutex> g(waiting->m);
        waiting->addrs.erase(waiting->addrs.find(addr));
      }
      if (closing->load()) return;  // environment gone: nobody to resolve; leak the small job deliberately
      napi_status s = tsfn.BlockingCall(job, [](Napi::Env env, Napi::Function, WaitJob* j) {
        auto* d = env.GetInstanceData<InstanceData>();
        j->deferred.Resolve(Napi::String::New(env, j->result));
        delete j;
        if (--d->pendingWaits == 0) d->waitTsfn.Unref(env);
      });
      if (s != napi_ok) delete job;
    }).detach();
  } catch (const std::system_error& e) {
    if (--data->pendingWaits == 0) data->waitTsfn.Unref(env);
    delete job;
    ThrowCode(env, kEInternal, std::string("wait32: cannot start a waiter thread: ") + e.what());
  }
  return promise;
}

uint32_t Wake32(MappingPtr map, uint64_t off, uint32_t count) {
  uint32_t* addr = reinterpret_cast<uint32_t*>(map->base + off);
  long r = Futex(addr, FUTEX_WAKE, count, nullptr);
  return r < 0 ? 0 : static_cast<uint32_t>(r);
}

}  // namespace vgpu
