// Constants and the finaliser shared by the page hash (hash.cc) and the buffer hash (buffer-hash.cc): both are
// FNV-style lane hashes finished with murmur3's fmix32. Their TS twins are native/page-hash.ts and
// native/buffer-hash.ts (which imports fmix32 from page-hash.ts).
#pragma once

#include <cstdint>

namespace vgpu {

constexpr uint32_t kLo0 = 0x811c9dc5u, kHi0 = 0x9e3779b9u, kMulLo = 0x01000193u, kMulHi = 0x9e3779b1u;

inline uint32_t Fmix32(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

}  // namespace vgpu
