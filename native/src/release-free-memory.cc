// releaseFreeMemory(): collect V8's garbage now, then hand the C library's free heap pages back to the kernel (glibc
// malloc_trim(0)).
//
// V8 first: an idle daemon allocates next to nothing, so after a burst V8 may not run a full GC for a long time,
// and what the burst left in its heap stays resident (~8 MiB with 256 vGPUs); collecting it also frees the
// ArrayBuffer backing stores and compiler memory it holds in the C heap, which the trim then gives back.
// Node has no API for either without --expose-gc; the isolate's memory-pressure notification is V8's own way for an
// embedder to ask for it (v8-isolate.h: kCritical = free memory now, with a full, blocking GC — tens of ms here).
//
// Then the C heap. Node and V8
// allocate their own bookkeeping (parsers, compiler zones, libuv requests) with malloc; after a burst — a start, 256
// creates — glibc keeps the freed chunks in its arenas, and only the top of the main heap is ever trimmed on its
// own, so tens of MiB freed in the middle stay resident for good (bench:scale: ~10 MiB with 8 GPUs × 32 vGPUs).
// malloc_trim(0) madvises every whole free page of every arena away (glibc ≥ 2.8; man 3 malloc_trim). Other C
// libraries have no such call: false there, and nothing done.
#include <stdlib.h>  // defines __GLIBC__ on glibc

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <v8.h>

#include "common.h"

namespace vgpu {

Napi::Value ReleaseFreeMemory(const Napi::CallbackInfo& info) {
  v8::Isolate* isolate = v8::Isolate::GetCurrent();
  if (isolate != nullptr) isolate->MemoryPressureNotification(v8::MemoryPressureLevel::kCritical);
#if defined(__GLIBC__)
  return Napi::Boolean::New(info.Env(), malloc_trim(0) == 1);
#else
  return Napi::Boolean::New(info.Env(), false);
#endif
}

}  // namespace vgpu
