// Data extents of an arena's backing file, found with lseek(SEEK_DATA/SEEK_HOLE). On tmpfs/memfd a hole is a page
// the kernel never allocated: it reads as zeros, and merely READING it through a shared mapping makes shmem allocate
// it — so verify/hashPages over a sparse arena used to commit the whole range (and spend ~16 s on 4 GiB). Jobs
// consult the extents instead and treat holes arithmetically.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

namespace vgpu {

struct Extent {
  uint64_t begin, end;  // relative to the queried offset; begin < end
};

// Data extents inside [off, off+len) of `fd`, ascending, relative to `off`. When the filesystem cannot answer, the
// whole range is reported as one data extent (correct, just not faster).
std::vector<Extent> DataExtents(int fd, uint64_t off, uint64_t len);

// Sum of extent lengths.
uint64_t ExtentBytes(const std::vector<Extent>& ext);

// The extents laid end to end ("data space"), so a job can cut the data — not the holes — into equal slices.
class ExtentSpace {
 public:
  explicit ExtentSpace(std::vector<Extent> ext) : ext_(std::move(ext)) {
    uint64_t sum = 0;
    for (const Extent& e : ext_) {
      prefix_.push_back(sum);
      sum += e.end - e.begin;
    }
    total_ = sum;
  }
  uint64_t total() const { return total_; }
  const std::vector<Extent>& extents() const { return ext_; }

  // f(b, e) for each piece of data-space [cb, ce), in range coordinates (relative to the queried offset), ascending.
  template <class F>
  void ForEach(uint64_t cb, uint64_t ce, F&& f) const {
    size_t i = static_cast<size_t>(std::upper_bound(prefix_.begin(), prefix_.end(), cb) - prefix_.begin()) - 1;
    for (; i < ext_.size() && prefix_[i] < ce; i++) {
      uint64_t lo = std::max(cb, prefix_[i]) - prefix_[i];
      uint64_t hi = std::min(ce, prefix_[i] + (ext_[i].end - ext_[i].begin)) - prefix_[i];
      if (lo < hi) f(ext_[i].begin + lo, ext_[i].begin + hi);
    }
  }

 private:
  std::vector<Extent> ext_;
  std::vector<uint64_t> prefix_;
  uint64_t total_ = 0;
};

}  // namespace vgpu
