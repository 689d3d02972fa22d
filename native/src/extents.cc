// lseek(SEEK_DATA/SEEK_HOLE) walk; see extents.h.
#include "extents.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace vgpu {

std::vector<Extent> DataExtents(int fd, uint64_t off, uint64_t len) {
  std::vector<Extent> out;
  const uint64_t end = off + len;
  uint64_t pos = off;
  while (pos < end) {
    off_t d = lseek(fd, static_cast<off_t>(pos), SEEK_DATA);
    if (d < 0) {
      if (errno == ENXIO) break;  // no data at or after pos: the rest is a hole
      out.clear();
      out.push_back({0, len});  // unsupported: treat everything as data
      return out;
    }
    uint64_t db = static_cast<uint64_t>(d);
    if (db >= end) break;
    off_t h = lseek(fd, static_cast<off_t>(db), SEEK_HOLE);
    uint64_t he = h < 0 ? end : std::min(end, static_cast<uint64_t>(h));
    if (he <= db) he = end;  // defensive: never loop forever on a confused answer
    out.push_back({db - off, he - off});
    pos = he;
  }
  return out;
}

uint64_t ExtentBytes(const std::vector<Extent>& ext) {
  uint64_t n = 0;
  for (const Extent& e : ext) n += e.end - e.begin;
  return n;
}

}  // namespace vgpu
