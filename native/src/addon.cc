// Module entry: registers the Arena class and the free functions. State lives in InstanceData (one per
// environment), so the addon loads safely in worker threads too.
#include "common.h"
#include "fd-ops.h"
#include "kernels.h"

namespace vgpu {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new InstanceData();
  env.SetInstanceData<InstanceData>(data);
  InitWaits(env, data);
  exports.Set("Arena", DefineArena(env));
  exports.Set("memsetFloor", Napi::Function::New(env, MemsetFloor, "memsetFloor"));
  exports.Set("fillFloor", Napi::Function::New(env, FillFloor, "fillFloor"));
  exports.Set("libcFillJob", Napi::Function::New(env, LibcFillJobStart, "libcFillJob"));
  exports.Set("kernels", Napi::Function::New(env, KernelsInfo, "kernels"));
  exports.Set("setKernels", Napi::Function::New(env, SetKernels, "setKernels"));
  exports.Set("hashBuffers", Napi::Function::New(env, HashBuffers, "hashBuffers"));
  exports.Set("bufferHashName", Napi::String::New(env, "vgpu-buffer-hash-v1"));
  exports.Set("sdNotify", Napi::Function::New(env, SdNotify, "sdNotify"));
  exports.Set("releaseFreeMemory", Napi::Function::New(env, ReleaseFreeMemory, "releaseFreeMemory"));
  exports.Set("pageHashName", Napi::String::New(env, "vgpu-page-hash-v1"));
  // Descriptor passing (vfio-user): sockets with SCM_RIGHTS, eventfds, fd mappings, readiness watchers.
  InitFdSocket(env, exports);
  InitFdMisc(env, exports);
  exports.Set("FdMap", DefineFdMap(env));
  exports.Set("FdWatcher", DefineFdWatcher(env));
  return exports;
}

}  // namespace vgpu

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return vgpu::Init(env, exports); }

NODE_API_MODULE(vgpud_native, InitModule)
