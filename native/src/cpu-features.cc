// cpuid decoding (docs/reference/cpu-kernels.md lists the leaves and their public sources: the Intel SDM vol. 2A
// "CPUID", the AMD APM vol. 3 appendix E, and glibc's sysdeps/x86/dl-cacheinfo.h, which sizes caches the same way).
#include "cpu-features.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define VGPU_X86 1
#endif

namespace vgpu {
namespace {

#ifdef VGPU_X86
struct Regs {
  unsigned a = 0, b = 0, c = 0, d = 0;
};

Regs Leaf(unsigned leaf, unsigned sub = 0) {
  Regs r;
  __cpuid_count(leaf, sub, r.a, r.b, r.c, r.d);
  return r;
}

// Deterministic cache parameters: Intel leaf 4 and AMD leaf 0x8000001D share one layout (type in EAX[4:0], level in
// EAX[7:5]; ways−1 EBX[31:22], partitions−1 EBX[21:12], line−1 EBX[11:0]; sets−1 in ECX). Returns the largest
// data/unified level found, which on a chiplet CPU is the L3 of one core complex (what one core can use), not the
// socket's sum that glibc's sysconf(_SC_LEVEL3_CACHE_SIZE) reports on some AMD parts (256 MiB on a 32 MiB-per-CCX
// EPYC VM measured here).
void CacheFromLeaf(unsigned leaf, CpuFeatures& f) {
  for (unsigned sub = 0; sub < 16; sub++) {
    Regs r = Leaf(leaf, sub);
    unsigned type = r.a & 0x1f;
    if (type == 0) break;
    if (type == 2) continue;  // instruction cache
    unsigned level = (r.a >> 5) & 7;
    uint64_t bytes = uint64_t((r.b >> 22) + 1) * (((r.b >> 12) & 0x3ff) + 1) * ((r.b & 0xfff) + 1) * (uint64_t(r.c) + 1);
    if (level >= f.llcLevel && bytes > 0) {
      f.llcLevel = level;
      f.llcBytes = bytes;
    }
  }
}

void DetectX86(CpuFeatures& f) {
  f.arch = "x86_64";
  Regs l0 = Leaf(0);
  char vendor[13] = {};
  std::memcpy(vendor, &l0.b, 4);
  std::memcpy(vendor + 4, &l0.d, 4);
  std::memcpy(vendor + 8, &l0.c, 4);
  f.vendor = vendor;
  const unsigned maxLeaf = l0.a;
  if (maxLeaf >= 1) {
    Regs l1 = Leaf(1);
    unsigned base = (l1.a >> 8) & 0xf, model = (l1.a >> 4) & 0xf;
    f.family = base == 0xf ? base + ((l1.a >> 20) & 0xff) : base;
    f.model = (base == 0x6 || base == 0xf) ? model | (((l1.a >> 16) & 0xf) << 4) : model;
    f.stepping = l1.a & 0xf;
    f.hypervisor = (l1.c >> 31) & 1;
  }
  if (maxLeaf >= 7) {
    Regs l7 = Leaf(7, 0);
    f.erms = (l7.b >> 9) & 1;
    f.fsrm = (l7.d >> 4) & 1;
  }
  // libgcc's checks include the OS side (XCR0 has the YMM/ZMM state enabled), which raw cpuid bits do not.
  __builtin_cpu_init();
  f.sse2 = __builtin_cpu_supports("sse2");
  f.sse41 = __builtin_cpu_supports("sse4.1");
  f.avx2 = __builtin_cpu_supports("avx2");
  f.avx512f = __builtin_cpu_supports("avx512f");
  f.avx512bw = __builtin_cpu_supports("avx512bw");

  const unsigned maxExt = Leaf(0x80000000).a;
  if (maxExt >= 0x80000004) {
    char brand[49] = {};
    for (unsigned i = 0; i < 3; i++) {
      Regs r = Leaf(0x80000002 + i);
      std::memcpy(brand + 16 * i, &r.a, 4);
      std::memcpy(brand + 16 * i + 4, &r.b, 4);
      std::memcpy(brand + 16 * i + 8, &r.c, 4);
      std::memcpy(brand + 16 * i + 12, &r.d, 4);
    }
    std::string s = brand;
    s.erase(0, s.find_first_not_of(' '));
    s.erase(s.find_last_not_of(' ') + 1);
    f.brand = s;
  }
  const bool amdLike = f.vendor == "AuthenticAMD" || f.vendor == "HygonGenuine";
  if (amdLike && maxExt >= 0x8000001d && ((Leaf(0x80000001).c >> 22) & 1)) {  // TOPOEXT: leaf 0x8000001D is valid
    CacheFromLeaf(0x8000001d, f);
  } else if (!amdLike && maxLeaf >= 4) {
    CacheFromLeaf(4, f);
  }
  if (f.llcBytes == 0 && maxExt >= 0x80000006) {
    // Older AMD: L3 size in 512 KiB units in EDX[31:18], L2 in KiB in ECX[31:16].
    Regs r = Leaf(0x80000006);
    if ((r.d >> 18) != 0) {
      f.llcBytes = uint64_t(r.d >> 18) * 512 * 1024;
      f.llcLevel = 3;
    } else if ((r.c >> 16) != 0) {
      f.llcBytes = uint64_t(r.c >> 16) * 1024;
      f.llcLevel = 2;
    }
  }
}
#endif

void DetectGeneric(CpuFeatures& f) {
#if defined(__aarch64__)
  f.arch = "aarch64";
#elif !defined(VGPU_X86)
  f.arch = "other";
#endif
#ifdef _SC_LEVEL3_CACHE_SIZE
  if (f.llcBytes == 0) {
    long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE), l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
    if (l3 > 0) {
      f.llcBytes = static_cast<uint64_t>(l3);
      f.llcLevel = 3;
    } else if (l2 > 0) {
      f.llcBytes = static_cast<uint64_t>(l2);
      f.llcLevel = 2;
    }
  }
#endif
}

CpuFeatures Detect() {
  CpuFeatures f;
#ifdef VGPU_X86
  DetectX86(f);
#endif
  DetectGeneric(f);
  return f;
}

}  // namespace

const CpuFeatures& Cpu() {
  static const CpuFeatures f = Detect();
  return f;
}

}  // namespace vgpu
