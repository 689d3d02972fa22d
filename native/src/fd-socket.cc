// Unix stream sockets that carry file descriptors (SCM_RIGHTS), for protocols Node's `net` cannot speak: vfio-user
// moves DMA regions, region mmap fds and eventfds on the messages they belong to. Every socket is non-blocking and
// close-on-exec; readiness comes from an FdWatcher (fd-watch.cc, a libuv poll handle), never from polling.
//
// Every path that fails after opening something closes it first; received descriptors arrive close-on-exec
// (MSG_CMSG_CLOEXEC), and a truncated control message (more fds than asked for) closes what did arrive and says so.
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "common.h"
#include "fd-ops.h"

namespace vgpu {
namespace {

// The largest fd count one message may carry in either direction: the kernel caps SCM_RIGHTS at 253 (SCM_MAX_FD).
constexpr size_t kMaxFdsPerMessage = 253;

int ArgFd(const Napi::CallbackInfo& info, size_t i, const char* what) {
  Napi::Env env = info.Env();
  if (info.Length() <= i || !info[i].IsNumber()) ThrowCode(env, kEInval, std::string(what) + ": fd must be a number");
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (d < 0 || d > 2147483647.0 || static_cast<double>(static_cast<int>(d)) != d) {
    ThrowCode(env, kEInval, std::string(what) + ": fd must be a non-negative integer");
  }
  return static_cast<int>(d);
}

std::string ArgPath(const Napi::CallbackInfo& info, size_t i, const char* what, struct sockaddr_un* addr, socklen_t* len) {
  Napi::Env env = info.Env();
  if (info.Length() <= i || !info[i].IsString()) ThrowCode(env, kEInval, std::string(what) + ": path must be a string");
  std::string path = info[i].As<Napi::String>().Utf8Value();
  std::memset(addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr->sun_path) {
    ThrowCode(env, kEInval, std::string(what) + ": socket path is empty or longer than " +
                                std::to_string(sizeof addr->sun_path - 1) + " bytes: " + path);
  }
  std::memcpy(addr->sun_path, path.data(), path.size());
  *len = static_cast<socklen_t>(offsetof(struct sockaddr_un, sun_path) + path.size() + 1);
  return path;
}

Napi::Value UnixListen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct sockaddr_un addr;
  socklen_t len;
  std::string path = ArgPath(info, 0, "unixListen", &addr, &len);
  int backlog = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : 16;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) ThrowErrno(env, "unixListen(" + path + "): socket", errno);
  if (bind(fd, reinterpret_cast<struct sockaddr*>(&addr), len) != 0 || listen(fd, backlog) != 0) {
    int err = errno;
    close(fd);
    ThrowErrno(env, "unixListen(" + path + ")", err);
  }
  return Napi::Number::New(env, fd);
}

Napi::Value UnixConnect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct sockaddr_un addr;
  socklen_t len;
  std::string path = ArgPath(info, 0, "unixConnect", &addr, &len);
  // Connect blocking (a Unix connect completes at once or fails at once), then switch to non-blocking.
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) ThrowErrno(env, "unixConnect(" + path + "): socket", errno);
  int r;
  do {
    r = connect(fd, reinterpret_cast<struct sockaddr*>(&addr), len);
  } while (r != 0 && errno == EINTR);
  if (r != 0 || !SetNonBlocking(fd)) {
    int err = errno;
    close(fd);
    ThrowErrno(env, "unixConnect(" + path + ")", err);
  }
  return Napi::Number::New(env, fd);
}

// accept4 one pending connection; null when none is pending (EAGAIN).
Napi::Value Accept(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int lfd = ArgFd(info, 0, "accept");
  for (;;) {
    int fd = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) return Napi::Number::New(env, fd);
    int err = errno;
    if (err == EINTR || err == ECONNABORTED) continue;
    if (err == EAGAIN || err == EWOULDBLOCK) return env.Null();
    ThrowErrno(env, "accept", err);
  }
}

Napi::Value SocketPair(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) ThrowErrno(env, "socketPair", errno);
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::Number::New(env, sv[0]));
  out.Set(1u, Napi::Number::New(env, sv[1]));
  return out;
}

// sendMsg(fd, data, fds?) → bytes written, or -1 when the socket buffer is full (EAGAIN). The fds ride on the first
// byte: a partial write still delivered them, so the caller must not send them again with the rest.
Napi::Value SendMsg(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "sendMsg");
  if (info.Length() < 2 || !info[1].IsTypedArray()) ThrowCode(env, kEInval, "sendMsg: data must be a Uint8Array");
  Napi::Uint8Array data = info[1].As<Napi::Uint8Array>();
  std::vector<int> fds;
  if (info.Length() > 2 && !info[2].IsUndefined() && !info[2].IsNull()) {
    if (!info[2].IsArray()) ThrowCode(env, kEInval, "sendMsg: fds must be an array of numbers");
    Napi::Array a = info[2].As<Napi::Array>();
    if (a.Length() > kMaxFdsPerMessage) ThrowCode(env, kEInval, "sendMsg: more than 253 fds in one message");
    for (uint32_t i = 0; i < a.Length(); i++) {
      Napi::Value v = a.Get(i);
      if (!v.IsNumber() || v.As<Napi::Number>().Int32Value() < 0) ThrowCode(env, kEInval, "sendMsg: fds must be non-negative integers");
      fds.push_back(v.As<Napi::Number>().Int32Value());
    }
  }
  struct iovec iov;
  iov.iov_base = data.Data();
  iov.iov_len = data.ByteLength();
  struct msghdr msg;
  std::memset(&msg, 0, sizeof msg);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<char> control;
  if (!fds.empty()) {
    control.assign(CMSG_SPACE(sizeof(int) * fds.size()), 0);
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  for (;;) {
    ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0) return Napi::Number::New(env, static_cast<double>(n));
    int err = errno;
    if (err == EINTR) continue;
    if (err == EAGAIN || err == EWOULDBLOCK) return Napi::Number::New(env, -1);
    ThrowErrno(env, "sendMsg", err);
  }
}

// recvMsg(fd, buf, maxFds) → { bytes, fds, fdsTruncated } or null when nothing is there (EAGAIN). bytes 0 = the peer
// closed. Descriptors beyond maxFds are closed here (the kernel's MSG_CTRUNC) and reported, never leaked.
Napi::Value RecvMsg(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "recvMsg");
  if (info.Length() < 2 || !info[1].IsTypedArray()) ThrowCode(env, kEInval, "recvMsg: buf must be a Uint8Array");
  Napi::Uint8Array buf = info[1].As<Napi::Uint8Array>();
  size_t maxFds = 0;
  if (info.Length() > 2 && info[2].IsNumber()) {
    double m = info[2].As<Napi::Number>().DoubleValue();
    maxFds = m <= 0 ? 0 : (m > kMaxFdsPerMessage ? kMaxFdsPerMessage : static_cast<size_t>(m));
  }
  // Room for one more than asked, so "one fd too many" is seen (and closed) instead of silently cut by the kernel.
  std::vector<char> control(CMSG_SPACE(sizeof(int) * (maxFds + 1)), 0);
  struct iovec iov;
  iov.iov_base = buf.Data();
  iov.iov_len = buf.ByteLength();
  struct msghdr msg;
  std::memset(&msg, 0, sizeof msg);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.data();
  msg.msg_controllen = control.size();
  ssize_t n;
  for (;;) {
    n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (n >= 0) break;
    int err = errno;
    if (err == EINTR) continue;
    if (err == EAGAIN || err == EWOULDBLOCK) return env.Null();
    ThrowErrno(env, "recvMsg", err);
  }
  std::vector<int> got;
  for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    const unsigned char* p = CMSG_DATA(c);
    for (size_t i = 0; i < count; i++) {
      int f;
      std::memcpy(&f, p + i * sizeof(int), sizeof(int));
      got.push_back(f);
    }
  }
  bool truncated = (msg.msg_flags & MSG_CTRUNC) != 0 || got.size() > maxFds;
  Napi::Array fds = Napi::Array::New(env);
  for (size_t i = 0; i < got.size(); i++) {
    if (i < maxFds) {
      fds.Set(static_cast<uint32_t>(i), Napi::Number::New(env, got[i]));
    } else {
      close(got[i]);
    }
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("bytes", Napi::Number::New(env, static_cast<double>(n)));
  out.Set("fds", fds);
  out.Set("fdsTruncated", Napi::Boolean::New(env, truncated));
  return out;
}

Napi::Value PeerCred(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "peerCred");
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) ThrowErrno(env, "peerCred", errno);
  Napi::Object out = Napi::Object::New(env);
  out.Set("pid", Napi::Number::New(env, cred.pid));
  out.Set("uid", Napi::Number::New(env, cred.uid));
  out.Set("gid", Napi::Number::New(env, cred.gid));
  return out;
}

Napi::Value Shutdown(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "shutdown");
  // ENOTCONN: the peer went first; nothing to do.
  if (shutdown(fd, SHUT_RDWR) != 0 && errno != ENOTCONN) ThrowErrno(env, "shutdown", errno);
  return env.Undefined();
}

}  // namespace

bool SetNonBlocking(int fd) {
  int fl = fcntl(fd, F_GETFL);
  return fl >= 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0;
}

void InitFdSocket(Napi::Env env, Napi::Object exports) {
  exports.Set("unixListen", Napi::Function::New(env, UnixListen, "unixListen"));
  exports.Set("unixConnect", Napi::Function::New(env, UnixConnect, "unixConnect"));
  exports.Set("accept", Napi::Function::New(env, Accept, "accept"));
  exports.Set("socketPair", Napi::Function::New(env, SocketPair, "socketPair"));
  exports.Set("sendMsg", Napi::Function::New(env, SendMsg, "sendMsg"));
  exports.Set("recvMsg", Napi::Function::New(env, RecvMsg, "recvMsg"));
  exports.Set("peerCred", Napi::Function::New(env, PeerCred, "peerCred"));
  exports.Set("shutdown", Napi::Function::New(env, Shutdown, "shutdown"));
}

}  // namespace vgpu
