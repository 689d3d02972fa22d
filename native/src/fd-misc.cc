// Small descriptor operations the fd-passing protocols need: close, dup, eventfd (interrupt lines), opening a file
// to hand its descriptor to a peer (the FB backing of a mmap-able region), what kind of file a received descriptor
// is (an "eventfd" that is a regular file is refused), and pidfd_open (noticing a client process's exit without
// polling). Every descriptor made here is close-on-exec.
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "common.h"
#include "fd-ops.h"

namespace vgpu {
namespace {

int Fd(const Napi::CallbackInfo& info, size_t i, const char* what) {
  Napi::Env env = info.Env();
  if (info.Length() <= i || !info[i].IsNumber()) ThrowCode(env, kEInval, std::string(what) + ": fd must be a number");
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (d < 0 || d > 2147483647.0 || static_cast<double>(static_cast<int>(d)) != d) {
    ThrowCode(env, kEInval, std::string(what) + ": fd must be a non-negative integer");
  }
  return static_cast<int>(d);
}

Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = Fd(info, 0, "closeFd");
  // Linux releases the descriptor even when close() reports EINTR/EIO: never retry (it could close a reused number).
  if (close(fd) != 0 && errno == EBADF) ThrowErrno(env, "closeFd", EBADF);
  return env.Undefined();
}

Napi::Value DupFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = Fd(info, 0, "dupFd");
  int d = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (d < 0) ThrowErrno(env, "dupFd", errno);
  return Napi::Number::New(env, d);
}

Napi::Value EventFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  unsigned int initial = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Uint32Value() : 0;
  int fd = eventfd(initial, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) ThrowErrno(env, "eventfd", errno);
  return Napi::Number::New(env, fd);
}

// Add `value` (default 1) to the eventfd counter. Returns false when the counter is full (EAGAIN): the reader has
// 2^64-2 unread events, which for an interrupt line means it is already signalled.
Napi::Value EventFdWrite(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = Fd(info, 0, "eventfdWrite");
  uint64_t v = info.Length() > 1 && info[1].IsNumber() ? static_cast<uint64_t>(info[1].As<Napi::Number>().DoubleValue()) : 1;
  for (;;) {
    ssize_t n = write(fd, &v, sizeof v);
    if (n == sizeof v) return Napi::Boolean::New(env, true);
    int err = errno;
    if (n < 0 && err == EINTR) continue;
    if (n < 0 && (err == EAGAIN || err == EWOULDBLOCK)) return Napi::Boolean::New(env, false);
    ThrowErrno(env, "eventfdWrite", n < 0 ? err : EIO);
  }
}

// Read and reset the counter: a bigint, or null when it is 0 (EAGAIN on a non-blocking eventfd).
Napi::Value EventFdRead(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = Fd(info, 0, "eventfdRead");
  uint64_t v = 0;
  for (;;) {
    ssize_t n = read(fd, &v, sizeof v);
    if (n == sizeof v) return Napi::BigInt::New(env, v);
    int err = errno;
    if (n < 0 && err == EINTR) continue;
    if (n < 0 && (err == EAGAIN || err == EWOULDBLOCK)) return env.Null();
    ThrowErrno(env, "eventfdRead", n < 0 ? err : EIO);
  }
}

Napi::Value OpenFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) ThrowCode(env, kEInval, "openFile: path must be a string");
  std::string path = info[0].As<Napi::String>().Utf8Value();
  bool writable = info.Length() > 1 && info[1].ToBoolean().Value();
  int fd = open(path.c_str(), (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) ThrowErrno(env, "openFile(" + path + ")", errno);
  return Napi::Number::New(env, fd);
}

// { type, size, mode }: type is 'file' | 'socket' | 'fifo' | 'dir' | 'char' | 'block' | 'link' | 'anon' (eventfd,
// memfd lists as 'file': memfds are regular files) — 'anon' is an anon-inode (eventfd, timerfd…): S_IFMT 0.
Napi::Value FdStat(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = Fd(info, 0, "fdStat");
  struct stat st;
  if (fstat(fd, &st) != 0) ThrowErrno(env, "fdStat", errno);
  const char* type = "anon";
  switch (st.st_mode & S_IFMT) {
    case S_IFREG: type = "file"; break;
    case S_IFSOCK: type = "socket"; break;
    case S_IFIFO: type = "fifo"; break;
    case S_IFDIR: type = "dir"; break;
    case S_IFCHR: type = "char"; break;
    case S_IFBLK: type = "block"; break;
    case S_IFLNK: type = "link"; break;
    default: break;
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("type", Napi::String::New(env, type));
  out.Set("size", Napi::Number::New(env, static_cast<double>(st.st_size)));
  out.Set("mode", Napi::Number::New(env, st.st_mode & 07777));
  return out;
}

// The target of /proc/self/fd/N ("anon_inode:[eventfd]", "/dev/shm/…", "socket:[…]"): tells an eventfd apart from
// other anon-inode files, which fstat cannot.
Napi::Value FdTarget(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = Fd(info, 0, "fdTarget");
  char link[64];
  std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  char buf[PATH_MAX];
  ssize_t n = readlink(link, buf, sizeof buf - 1);
  if (n < 0) ThrowErrno(env, "fdTarget", errno);
  buf[n] = '\0';
  return Napi::String::New(env, buf);
}

// pidfd_open(pid): readable once the process exits; watch it with an FdWatcher. Linux ≥ 5.3.
Napi::Value PidfdOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) ThrowCode(env, kEInval, "pidfdOpen: pid must be a number");
  int pid = info[0].As<Napi::Number>().Int32Value();
  if (pid <= 0) ThrowCode(env, kEInval, "pidfdOpen: pid must be positive");
#ifdef SYS_pidfd_open
  long fd = syscall(SYS_pidfd_open, pid, 0);
#else
  long fd = syscall(434, pid, 0);
#endif
  if (fd < 0) ThrowErrno(env, "pidfdOpen(" + std::to_string(pid) + ")", errno);
  // pidfds are always close-on-exec (the kernel sets O_CLOEXEC on them).
  return Napi::Number::New(env, static_cast<double>(fd));
}

}  // namespace

void InitFdMisc(Napi::Env env, Napi::Object exports) {
  exports.Set("closeFd", Napi::Function::New(env, CloseFd, "closeFd"));
  exports.Set("dupFd", Napi::Function::New(env, DupFd, "dupFd"));
  exports.Set("eventfd", Napi::Function::New(env, EventFd, "eventfd"));
  exports.Set("eventfdWrite", Napi::Function::New(env, EventFdWrite, "eventfdWrite"));
  exports.Set("eventfdRead", Napi::Function::New(env, EventFdRead, "eventfdRead"));
  exports.Set("openFile", Napi::Function::New(env, OpenFile, "openFile"));
  exports.Set("fdStat", Napi::Function::New(env, FdStat, "fdStat"));
  exports.Set("fdTarget", Napi::Function::New(env, FdTarget, "fdTarget"));
  exports.Set("pidfdOpen", Napi::Function::New(env, PidfdOpen, "pidfdOpen"));
}

}  // namespace vgpu
