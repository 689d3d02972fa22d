// releaseFreeMemory(): hand the C library's free heap pages back to the kernel (glibc malloc_trim(0)). Node and V8
// allocate their own bookkeeping (parsers, compiler zones, libuv requests) with malloc; after a burst — a start, 256
// creates — glibc keeps the freed chunks in its arenas, and only the top of the main heap is ever trimmed on its
// own, so tens of MiB freed in the middle stay resident for good (bench:scale: ~10 MiB with 8 GPUs × 32 vGPUs).
// malloc_trim(0) madvises every whole free page of every arena away (glibc ≥ 2.8; man 3 malloc_trim). Other C
// libraries have no such call: false there, and nothing done.
#include <stdlib.h>  // defines __GLIBC__ on glibc

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "common.h"

namespace vgpu {

Napi::Value ReleaseFreeMemory(const Napi::CallbackInfo& info) {
#if defined(__GLIBC__)
  return Napi::Boolean::New(info.Env(), malloc_trim(0) == 1);
#else
  return Napi::Boolean::New(info.Env(), false);
#endif
}

}  // namespace vgpu
