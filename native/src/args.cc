// Argument validation and error construction. Every entry point checks its inputs here and throws a JS Error with a
// stable `code`; nothing reaches a pointer computation unchecked, so bad input never crashes the process.
#include <cerrno>
#include <cmath>
#include <cstring>

#include "common.h"

namespace vgpu {

Napi::Error MakeError(Napi::Env env, const char* code, const std::string& msg) {
  Napi::Error err = Napi::Error::New(env, msg);
  err.Set("code", Napi::String::New(env, code));
  return err;
}

void ThrowCode(Napi::Env env, const char* code, const std::string& msg) { throw MakeError(env, code, msg); }

const char* CodeForErrno(int err) {
  switch (err) {
    case ENOENT: return "VGPU_ENOENT";
    case ENOSPC: return "VGPU_ENOSPC";
    case ENOMEM: return "VGPU_ENOMEM";
    case EINVAL: case EISDIR: case ENOTDIR: case EACCES: case EPERM: case EROFS: return kEInval;
    default: return kEInternal;
  }
}

void ThrowErrno(Napi::Env env, const std::string& what, int err) {
  Napi::Error e = MakeError(env, CodeForErrno(err), what + ": " + std::strerror(err));
  e.Set("errno", Napi::Number::New(env, err));
  throw e;
}

uint64_t ArgU64(const Napi::CallbackInfo& info, size_t i, const char* what, const char* name) {
  Napi::Env env = info.Env();
  if (info.Length() <= i || !info[i].IsNumber()) ThrowCode(env, kEInval, std::string(what) + ": " + name + " must be a number");
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || d < 0 || d > 9007199254740991.0 || std::floor(d) != d) {
    ThrowCode(env, kEInval, std::string(what) + ": " + name + " must be an integer in [0, 2^53)");
  }
  return static_cast<uint64_t>(d);
}

uint32_t ArgU32(const Napi::CallbackInfo& info, size_t i, const char* what, const char* name) {
  Napi::Env env = info.Env();
  if (info.Length() <= i || !info[i].IsNumber()) ThrowCode(env, kEInval, std::string(what) + ": " + name + " must be a number");
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || std::floor(d) != d || d < -2147483648.0 || d > 4294967295.0) {
    ThrowCode(env, kEInval, std::string(what) + ": " + name + " must be a 32-bit integer");
  }
  return d < 0 ? static_cast<uint32_t>(static_cast<int32_t>(d)) : static_cast<uint32_t>(d);
}

void CheckRange(Napi::Env env, const char* what, uint64_t size, uint64_t off, uint64_t len) {
  // Written so that off + len cannot overflow.
  if (off > size || len > size - off) {
    ThrowCode(env, kERange, std::string(what) + ": range [" + std::to_string(off) + ", +" + std::to_string(len) +
                                ") is outside the arena of " + std::to_string(size) + " bytes");
  }
}

void CheckAlign(Napi::Env env, const char* what, uint64_t value, uint64_t align, const char* name) {
  if (value % align != 0) {
    ThrowCode(env, kEAlign, std::string(what) + ": " + name + " " + std::to_string(value) + " is not " +
                                std::to_string(align) + "-byte aligned");
  }
}

}  // namespace vgpu
