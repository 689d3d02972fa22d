// sdNotify(state): the sd_notify protocol without libsystemd — one datagram to $NOTIFY_SOCKET (a path, or an
// abstract socket when it starts with '@'). Returns false when not under systemd or when sending fails.
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "common.h"

namespace vgpu {

Napi::Value SdNotify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) ThrowCode(env, kEInval, "sdNotify: state must be a string");
  std::string state = info[0].As<Napi::String>().Utf8Value();
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (path == nullptr || path[0] == '\0') return Napi::Boolean::New(env, false);
  size_t plen = std::strlen(path);
  struct sockaddr_un addr;
  std::memset(&addr, 0, sizeof addr);
  if ((path[0] != '/' && path[0] != '@') || plen >= sizeof addr.sun_path) return Napi::Boolean::New(env, false);
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path, plen);
  if (path[0] == '@') addr.sun_path[0] = '\0';  // abstract namespace: no terminating NUL counts in the length
  socklen_t alen = static_cast<socklen_t>(offsetof(struct sockaddr_un, sun_path) + plen + (path[0] == '@' ? 0 : 1));
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Napi::Boolean::New(env, false);
  ssize_t n = sendto(fd, state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<struct sockaddr*>(&addr), alen);
  close(fd);
  return Napi::Boolean::New(env, n == static_cast<ssize_t>(state.size()));
}

}  // namespace vgpu
