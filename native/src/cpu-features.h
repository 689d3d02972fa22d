// What the CPU is, read once with cpuid: vendor, family/model, brand string, the instruction-set features the
// kernels can use, and the size of the last-level cache one core sees. kernels.h turns this into the fill/hash
// strategy; the benches print both. On a non-x86 build everything but the cache size stays empty/false and the
// kernels fall back to the C library and portable C++.
#pragma once
#include <cstdint>
#include <string>

namespace vgpu {

struct CpuFeatures {
  std::string arch;    // "x86_64", "aarch64", …
  std::string vendor;  // cpuid leaf 0: "AuthenticAMD", "GenuineIntel", … ("" off x86)
  std::string brand;   // cpuid leaves 0x80000002–4, trimmed ("AMD EPYC 7B13 …"); "" when the CPU has none
  unsigned family = 0, model = 0, stepping = 0;  // display family/model (base + extended), as Linux prints them
  // Usable (CPU and OS: XSAVE state enabled) instruction sets.
  bool sse2 = false, sse41 = false, avx2 = false, avx512f = false, avx512bw = false;
  bool erms = false;  // "enhanced rep movsb/stosb" (cpuid 7.0 EBX bit 9)
  bool fsrm = false;  // "fast short rep mov" (cpuid 7.0 EDX bit 4)
  bool hypervisor = false;  // cpuid 1 ECX bit 31: running in a VM (cache figures may be the host's)
  // Bytes of the largest cache level one core can use (L3 of its core complex, else L2); 0 = unknown.
  uint64_t llcBytes = 0;
  unsigned llcLevel = 0;
};

// Detected on first use (thread-safe static); never changes afterwards.
const CpuFeatures& Cpu();

}  // namespace vgpu
