// How the long jobs (fill, verify, hashPages) use the CPU without hurting the event loop. Kept in a header
// (templates).
//
// Measured on the 2-vCPU test VMs (per-thread /proc schedstat sampled around every late timer tick): the loop
// stalls of 27–117 ms seen during a 4 GiB scrub were almost all RUNQUEUE waits of the main thread — it had woken up
// but no core was free — not main-thread work. The old code ran the job at normal priority on the libuv pool thread
// plus (cores − 1) more threads, so on 2 cores the job competed as an equal with the main thread and with the other
// test process. The remedy, in order of effect:
//   1. the job runs on its own helper threads at the LOWEST priority (SCHED_IDLE, see below): a normal thread
//      waking up preempts them at once, while an otherwise idle core still runs them at full speed;
//   2. max(1, cores − 1) helpers, so one core is left for the event loop even when nothing else runs;
//   3. the range is cut into bounded slices (a few MiB, ≤ ~2 ms of work each) claimed from a shared cursor, with a
//      sched_yield() between slices, so kernel work done on our behalf (page allocation, zeroing, hole punching)
//      comes in short syscalls rather than one multi-hundred-millisecond call;
//   4. unmapping a big arena (munmap + the memfd's last close free every page: ~270 ms for 4 GiB) happens on a
//      background thread, not inside close() on the event loop (see Mapping::~Mapping).
#pragma once
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <system_error>
#include <thread>
#include <vector>

namespace vgpu {

// Job threads run as SCHED_IDLE: any normal thread that wakes up preempts them at once, whatever the nice values,
// and the kernel steers waking threads to a core that runs only SCHED_IDLE work. Compared under the same foreign
// load (4 GiB cold fill, worst loop delay per run): nice 0 gave 65–322 ms, nice 10 and SCHED_IDLE both 2–150 ms
// but SCHED_IDLE with far fewer late ticks. The priority only orders threads that compete inside one scheduling
// group (autogroup/cgroup: this session, e.g. the test runner's parallel files); between groups the kernel still
// shares the cores fairly, so the scrub keeps its group's share on a busy host and a fully idle core when nothing
// else runs. What no setting of ours can fix: other sessions saturating both cores delay the loop thread too (seen
// 20–60 ms with no job running at all). Falls back to nice 19 where SCHED_IDLE is refused.
// Slice size: ~2 ms at first-touch speed (~2.3 GB/s), ~0.1 ms on warm memory.
constexpr uint64_t kSliceBytes = uint64_t(4) << 20;
// Below this a job runs inline on the libuv pool thread: starting a thread (~50 µs) would cost more than it saves.
constexpr uint64_t kInlineBytes = uint64_t(8) << 20;

inline unsigned JobThreads() {
  unsigned hc = std::thread::hardware_concurrency();
  return hc > 1 ? hc - 1 : 1;
}

// Per-thread on Linux (policy and nice apply to the calling thread only). Only ever called on threads we created,
// which end with the job: lowering is always allowed, raising it back would need CAP_SYS_NICE.
inline void LowerThisThreadPriority() {
  struct sched_param sp {};
  sp.sched_priority = 0;
  if (sched_setscheduler(0, SCHED_IDLE, &sp) == 0) return;
  setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), 19);
}

// Run f(begin, end) over [0, len) in slices (multiples of `grain`, about `slice` bytes), in ascending order of
// claim, on JobThreads() low-priority helper threads; the calling thread only waits. `stop()` is checked before each
// slice is claimed (verify stops early once it has an answer that no later slice can beat).
template <class F, class S>
void ParallelSlices(uint64_t len, uint64_t grain, uint64_t slice, F&& f, S&& stop) {
  if (len == 0) return;
  slice = std::max(grain, slice / grain * grain);
  if (len <= std::min(slice, kInlineBytes)) {
    f(uint64_t(0), len);
    return;
  }
  std::atomic<uint64_t> cursor{0};
  auto run = [&]() {
    LowerThisThreadPriority();
    for (bool first = true;; first = false) {
      if (stop()) return;
      uint64_t b = cursor.fetch_add(slice);
      if (b >= len) return;
      if (!first) sched_yield();  // a cheap hint; the low priority does the real work of letting the loop in
      f(b, std::min(len, b + slice));
    }
  };
  unsigned n = JobThreads();
  std::vector<std::thread> threads;
  for (unsigned i = 0; i < n; i++) {
    try {
      threads.emplace_back(run);
    } catch (const std::system_error&) {
      break;
    }
  }
  if (threads.empty()) {
    // No thread available: do the work here (normal priority, but still sliced) rather than fail the job.
    for (uint64_t b = 0; b < len && !stop(); b += slice) f(b, std::min(len, b + slice));
    return;
  }
  for (auto& t : threads) t.join();
}

template <class F>
void ParallelSlices(uint64_t len, uint64_t grain, uint64_t slice, F&& f) {
  ParallelSlices(len, grain, slice, std::forward<F>(f), [] { return false; });
}

}  // namespace vgpu
