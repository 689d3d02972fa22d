// FdMap: a MAP_SHARED mapping of [offset, offset+size) of a descriptor someone handed us (a vfio-user client's
// guest-RAM region), with bounded Buffer windows over it. The mapping holds no descriptor (mmap keeps its own
// reference to the file), so the caller may close the one it received at once and a window the GC has not collected
// yet never shows up as an open descriptor; windows and the object share one reference-counted mapping, so close()
// never unmaps memory a live window still points at.
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "common.h"
#include "fd-ops.h"

namespace vgpu {
namespace {

constexpr uint64_t kMaxWindow = uint64_t(1) << 30;

struct FdMapping {
  uint8_t* mapBase = nullptr;  // what mmap returned (page aligned)
  size_t mapLen = 0;
  uint8_t* data = nullptr;     // byte `offset` of the descriptor
  uint64_t size = 0;
  ~FdMapping() {
    if (mapBase != nullptr) munmap(mapBase, mapLen);
  }
};
using FdMappingPtr = std::shared_ptr<FdMapping>;

class FdMap : public Napi::ObjectWrap<FdMap> {
 public:
  // new FdMap(fd, offset, size, writable)
  explicit FdMap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<FdMap>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 3 || !info[0].IsNumber()) ThrowCode(env, kEInval, "FdMap: expected (fd, offset, size[, writable])");
    int fd = info[0].As<Napi::Number>().Int32Value();
    uint64_t offset = ArgU64(info, 1, "FdMap", "offset");
    uint64_t size = ArgU64(info, 2, "FdMap", "size");
    bool writable = info.Length() > 3 && info[3].ToBoolean().Value();
    if (fd < 0) ThrowCode(env, kEInval, "FdMap: fd must be non-negative");
    if (size == 0) ThrowCode(env, kEInval, "FdMap: size must be > 0");
    long page = sysconf(_SC_PAGESIZE);
    uint64_t aligned = offset - (offset % static_cast<uint64_t>(page));
    uint64_t lead = offset - aligned;
    if (size > UINT64_MAX - lead) ThrowCode(env, kERange, "FdMap: offset + size overflows");
    auto m = std::make_shared<FdMapping>();
    void* p = mmap(nullptr, lead + size, PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED, fd,
                   static_cast<off_t>(aligned));
    if (p == MAP_FAILED) {
      int err = errno;
      ThrowErrno(env, "FdMap: mmap of " + std::to_string(size) + " bytes at offset " + std::to_string(offset), err);
    }
    m->mapBase = static_cast<uint8_t*>(p);
    m->mapLen = lead + size;
    m->data = m->mapBase + lead;
    m->size = size;
    map_ = m;
  }

  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "FdMap", {
      InstanceAccessor<&FdMap::Size>("size"),
      InstanceMethod<&FdMap::Window>("window"),
      InstanceMethod<&FdMap::Close>("close"),
    });
  }

 private:
  Napi::Value Size(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), map_ ? static_cast<double>(map_->size) : 0.0);
  }

  Napi::Value Window(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!map_) ThrowCode(env, kEState, "FdMap.window: the mapping is closed");
    uint64_t off = ArgU64(info, 0, "FdMap.window", "offset");
    uint64_t len = ArgU64(info, 1, "FdMap.window", "length");
    if (len > kMaxWindow) ThrowCode(env, kERange, "FdMap.window: length exceeds 1 GiB");
    CheckRange(env, "FdMap.window", map_->size, off, len);
    if (len == 0) return Napi::Buffer<uint8_t>::New(env, 0);
    auto* keep = new FdMappingPtr(map_);
    return Napi::Buffer<uint8_t>::New(env, map_->data + off, len, [](Napi::Env, uint8_t*, FdMappingPtr* k) { delete k; }, keep);
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    map_.reset();
    return info.Env().Undefined();
  }

  FdMappingPtr map_;
};

}  // namespace

Napi::Function DefineFdMap(Napi::Env env) { return FdMap::Define(env); }

}  // namespace vgpu
