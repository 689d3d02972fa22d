// ParallelRanges: split a byte range over the machine's hardware threads. Kept in a header (template).
#pragma once
#include <algorithm>
#include <system_error>
#include <thread>
#include <vector>

namespace vgpu {

template <class F>
void ParallelRanges(uint64_t len, uint64_t grain, F&& f) {
  // One thread less than the machine has: the event loop's thread must keep a core, or a scrub on a 2-core host
  // delays every timer and RPC by a scheduler slice (measured: 33 ms loop stalls with 2 fill threads). Memory-
  // bound fills gain little from a second thread anyway.
  unsigned hc = std::thread::hardware_concurrency();
  unsigned n = hc > 1 ? hc - 1 : 1;
  if (n == 1 || len < (uint64_t(8) << 20)) {
    f(uint64_t(0), len);
    return;
  }
  uint64_t per = (len / n + grain - 1) / grain * grain;
  std::vector<std::thread> threads;
  uint64_t start = per;
  for (unsigned i = 1; i < n && start < len; i++, start += per) {
    uint64_t b = start, e = std::min(len, start + per);
    try {
      threads.emplace_back([&f, b, e] { f(b, e); });
    } catch (const std::system_error&) {
      f(b, e);  // no thread available: do that piece here rather than fail the job
    }
  }
  f(uint64_t(0), std::min(per, len));
  for (auto& t : threads) t.join();
}

}  // namespace vgpu
