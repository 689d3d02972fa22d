// Declarations shared by the fd-passing part of the addon (fd-socket.cc, fd-misc.cc, fd-map.cc, fd-watch.cc).
#pragma once
#include <napi.h>

namespace vgpu {

bool SetNonBlocking(int fd);

void InitFdSocket(Napi::Env env, Napi::Object exports);
void InitFdMisc(Napi::Env env, Napi::Object exports);
Napi::Function DefineFdMap(Napi::Env env);
Napi::Function DefineFdWatcher(Napi::Env env);

}  // namespace vgpu
