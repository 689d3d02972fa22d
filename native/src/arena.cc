// The Arena object: a MAP_SHARED mapping of a file (created sparse, or re-used with its contents) or of a memfd,
// plus the small synchronous operations (windows, committed bytes, atomic words). Long jobs live in their own files.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cmath>
#include <system_error>
#include <thread>

#include "common.h"
#include "extents.h"

namespace vgpu {

// Unmapping a big populated arena is slow kernel work: munmap walks every PTE and the memfd's last close frees
// every page (measured 267–275 ms for 4 GiB, on whatever thread drops the last reference — usually the event loop,
// in close() or in a GC finalizer). Large mappings are therefore released on a detached background thread. The
// address range stays reserved until then, so nothing else can be mapped there while a stale pointer could exist.
Mapping::~Mapping() {
  uint8_t* b = base;
  uint64_t n = size;
  int f = fd;
  auto release = [b, n, f](bool background) {
    if (background) LowerThisThreadPriority();
    if (b != nullptr) munmap(b, n);
    if (f >= 0) close(f);
  };
  if (n >= (uint64_t(64) << 20)) {
    try {
      std::thread(release, true).detach();
      return;
    } catch (const std::system_error&) {
      // no thread: release inline below
    }
  }
  release(false);
}

namespace {

constexpr uint64_t kMaxWindow = uint64_t(1) << 30;

// Map `fd` whole; takes ownership of fd (closed on failure).
MappingPtr MapFd(Napi::Env env, int fd, uint64_t size, const std::string& what) {
  // MAP_NORESERVE: the arena is sparse by design; commit happens page by page as the guest FB is written.
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
  if (p == MAP_FAILED) {
    int err = errno;
    close(fd);
    ThrowErrno(env, what + ": mmap", err);
  }
  auto m = std::make_shared<Mapping>();
  m->base = static_cast<uint8_t*>(p);
  m->size = size;
  m->fd = fd;
  return m;
}

MappingPtr CreateMemfd(Napi::Env env, uint64_t size) {
  int fd = memfd_create("vgpud-arena", MFD_CLOEXEC);
  if (fd < 0) ThrowErrno(env, "createArena(memfd)", errno);
  if (ftruncate(fd, static_cast<off_t>(size)) != 0) {
    int err = errno;
    close(fd);
    ThrowErrno(env, "createArena(memfd): ftruncate", err);
  }
  return MapFd(env, fd, size, "createArena(memfd)");
}

MappingPtr CreateFile(Napi::Env env, uint64_t size, const std::string& path) {
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) ThrowErrno(env, "createArena(" + path + ")", errno);
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int err = errno;
    close(fd);
    ThrowErrno(env, "createArena(" + path + "): fstat", err);
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    ThrowCode(env, kEInval, "createArena(" + path + "): not a regular file");
  }
  uint64_t have = static_cast<uint64_t>(st.st_size);
  if (have == 0) {
    // New (or empty) file: size it sparse; no block is allocated until a page is written.
    if (ftruncate(fd, static_cast<off_t>(size)) != 0) {
      int err = errno;
      close(fd);
      ThrowErrno(env, "createArena(" + path + "): ftruncate", err);
    }
  } else if (have != size) {
    // Never resize an existing arena: it may hold a live vGPU's framebuffer.
    close(fd);
    ThrowCode(env, kEInval, "createArena(" + path + "): existing file has " + std::to_string(have) +
                                " bytes, not the requested " + std::to_string(size));
  }
  return MapFd(env, fd, size, "createArena(" + path + ")");
}

MappingPtr OpenFile(Napi::Env env, const std::string& path) {
  int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) ThrowErrno(env, "openArena(" + path + ")", errno);
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0) {
    close(fd);
    ThrowCode(env, kEInval, "openArena(" + path + "): not a non-empty regular file");
  }
  return MapFd(env, fd, static_cast<uint64_t>(st.st_size), "openArena(" + path + ")");
}

class Arena : public Napi::ObjectWrap<Arena> {
 public:
  // new Arena('memfd', size) | new Arena('file', size, path) | new Arena('open', 0, path)
  explicit Arena(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Arena>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsString()) ThrowCode(env, kEInval, "Arena: expected (kind, size[, path])");
    std::string kind = info[0].As<Napi::String>().Utf8Value();
    if (kind == "open") {
      if (info.Length() < 3 || !info[2].IsString()) ThrowCode(env, kEInval, "openArena: path must be a string");
      map_ = OpenFile(env, info[2].As<Napi::String>().Utf8Value());
      return;
    }
    uint64_t size = ArgU64(info, 1, "createArena", "size");
    if (size == 0) ThrowCode(env, kEInval, "createArena: size must be > 0");
    if (kind == "memfd") {
      map_ = CreateMemfd(env, size);
    } else if (kind == "file") {
      if (info.Length() < 3 || !info[2].IsString()) ThrowCode(env, kEInval, "createArena: path must be a string");
      map_ = CreateFile(env, size, info[2].As<Napi::String>().Utf8Value());
    } else {
      ThrowCode(env, kEInval, "createArena: unknown backing '" + kind + "'");
    }
  }

  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Arena",
                       {InstanceAccessor<&Arena::Size>("size"),
                        InstanceMethod<&Arena::Window>("window"),
                        InstanceMethod<&Arena::Fill>("fill"),
                        InstanceMethod<&Arena::Verify>("verify"),
                        InstanceMethod<&Arena::Reserve>("reserve"),
                        InstanceMethod<&Arena::Populate>("populate"),
                        InstanceMethod<&Arena::HashPages>("hashPages"),
                        InstanceMethod<&Arena::CommittedBytes>("committedBytes"),
                        InstanceMethod<&Arena::DataExtentList>("dataExtents"),
                        InstanceMethod<&Arena::Load32>("load32"),
                        InstanceMethod<&Arena::Store32>("store32"),
                        InstanceMethod<&Arena::Wait32>("wait32"),
                        InstanceMethod<&Arena::Wake32>("wake32"),
                        InstanceMethod<&Arena::Close>("close")});
  }

 private:
  const MappingPtr& Live(Napi::Env env, const char* what) {
    if (!map_) ThrowCode(env, kEState, std::string(what) + ": the arena is closed");
    return map_;
  }

  Napi::Value Size(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), map_ ? static_cast<double>(map_->size) : 0.0);
  }

  Napi::Value Window(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const MappingPtr& m = Live(env, "window");
    uint64_t off = ArgU64(info, 0, "window", "offset");
    uint64_t len = ArgU64(info, 1, "window", "length");
    if (len > kMaxWindow) ThrowCode(env, kERange, "window: length " + std::to_string(len) + " exceeds 1 GiB");
    CheckRange(env, "window", m->size, off, len);
    if (len == 0) return Napi::Buffer<uint8_t>::New(env, 0);
    // An external Buffer (plain ArrayBuffer: Node-API cannot make a SharedArrayBuffer over foreign memory). The
    // finalizer drops the view's share of the mapping, so the memory stays mapped while any window lives.
    auto* keep = new MappingPtr(m);
    return Napi::Buffer<uint8_t>::New(
        env, m->base + off, len, [](Napi::Env, uint8_t*, MappingPtr* k) { delete k; }, keep);
  }

  void FillArgs(const Napi::CallbackInfo& info, const char* what, uint64_t& off, uint64_t& len, uint32_t& pat) {
    Napi::Env env = info.Env();
    const MappingPtr& m = Live(env, what);
    off = ArgU64(info, 0, what, "offset");
    len = ArgU64(info, 1, what, "length");
    pat = ArgU32(info, 2, what, "pattern");
    CheckRange(env, what, m->size, off, len);
    CheckAlign(env, what, off, 4, "offset");
    CheckAlign(env, what, len, 4, "length");
  }

  Napi::Value Fill(const Napi::CallbackInfo& info) {
    uint64_t off, len;
    uint32_t pat;
    FillArgs(info, "fill", off, len, pat);
    bool release = info.Length() < 4 || info[3].ToBoolean().Value();
    return StartFill(info.Env(), map_, off, len, pat, release);
  }

  // reserve(offset, length, keepFreeBytes): back the pages without writing them (reserve.cc). Page-aligned.
  Napi::Value Reserve(const Napi::CallbackInfo& info) {
    uint64_t off, len;
    PageRangeArgs(info, "reserve", off, len);
    uint64_t keep = info.Length() > 2 ? ArgU64(info, 2, "reserve", "keepFreeBytes") : 0;
    return StartReserve(info.Env(), map_, off, len, keep);
  }

  // offset and length of a whole-page range inside the arena (reserve, populate).
  void PageRangeArgs(const Napi::CallbackInfo& info, const char* what, uint64_t& off, uint64_t& len) {
    Napi::Env env = info.Env();
    const MappingPtr& m = Live(env, what);
    off = ArgU64(info, 0, what, "offset");
    len = ArgU64(info, 1, what, "length");
    CheckRange(env, what, m->size, off, len);
    CheckAlign(env, what, off, 4096, "offset");
    CheckAlign(env, what, len, 4096, "length");
  }

  // populate(offset, length): map the pages for writing now (reserve.cc). Page-aligned.
  Napi::Value Populate(const Napi::CallbackInfo& info) {
    uint64_t off, len;
    PageRangeArgs(info, "populate", off, len);
    return StartPopulate(info.Env(), map_, off, len);
  }

  Napi::Value Verify(const Napi::CallbackInfo& info) {
    uint64_t off, len;
    uint32_t pat;
    FillArgs(info, "verify", off, len, pat);
    return StartVerify(info.Env(), map_, off, len, pat);
  }

  Napi::Value HashPages(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const MappingPtr& m = Live(env, "hashPages");
    uint64_t off = ArgU64(info, 0, "hashPages", "offset");
    uint64_t len = ArgU64(info, 1, "hashPages", "length");
    uint64_t ps = ArgU64(info, 2, "hashPages", "pageSize");
    if (ps < 8 || ps > kMaxWindow || (ps & (ps - 1)) != 0) {
      ThrowCode(env, kEInval, "hashPages: page size must be a power of two in [8, 1 GiB]");
    }
    CheckRange(env, "hashPages", m->size, off, len);
    CheckAlign(env, "hashPages", off, ps, "offset");
    CheckAlign(env, "hashPages", len, ps, "length");
    return StartHashPages(env, map_, off, len, ps);
  }

  Napi::Value CommittedBytes(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const MappingPtr& m = Live(env, "committedBytes");
    struct stat st;
    if (fstat(m->fd, &st) != 0) ThrowErrno(env, "committedBytes: fstat", errno);
    return Napi::Number::New(env, static_cast<double>(st.st_blocks) * 512.0);
  }

  // The data extents of [off, off+len) of the backing file (lseek SEEK_DATA/SEEK_HOLE, extents.h) as absolute
  // [begin, end) pairs. Synchronous: two syscalls per extent, no page is read. A hole is a page nobody wrote since
  // the file was created or the page was released (fill(…, 0, release)): it reads as zero.
  Napi::Value DataExtentList(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const MappingPtr& m = Live(env, "dataExtents");
    uint64_t off = ArgU64(info, 0, "dataExtents", "offset");
    uint64_t len = ArgU64(info, 1, "dataExtents", "length");
    CheckRange(env, "dataExtents", m->size, off, len);
    std::vector<Extent> ext = len == 0 ? std::vector<Extent>{} : vgpu::DataExtents(m->fd, off, len);
    Napi::Float64Array out = Napi::Float64Array::New(env, ext.size() * 2);
    for (size_t i = 0; i < ext.size(); i++) {
      out[2 * i] = static_cast<double>(off + ext[i].begin);
      out[2 * i + 1] = static_cast<double>(off + ext[i].end);
    }
    return out;
  }

  uint32_t* Word(const Napi::CallbackInfo& info, const char* what) {
    Napi::Env env = info.Env();
    const MappingPtr& m = Live(env, what);
    uint64_t off = ArgU64(info, 0, what, "offset");
    CheckRange(env, what, m->size, off, 4);
    CheckAlign(env, what, off, 4, "offset");
    return reinterpret_cast<uint32_t*>(m->base + off);
  }

  Napi::Value Load32(const Napi::CallbackInfo& info) {
    uint32_t* w = Word(info, "load32");
    return Napi::Number::New(info.Env(), __atomic_load_n(w, __ATOMIC_SEQ_CST));
  }

  Napi::Value Store32(const Napi::CallbackInfo& info) {
    uint32_t* w = Word(info, "store32");
    uint32_t v = ArgU32(info, 1, "store32", "value");
    __atomic_store_n(w, v, __ATOMIC_SEQ_CST);
    return info.Env().Undefined();
  }

  Napi::Value Wait32(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Word(info, "wait32");
    uint64_t off = ArgU64(info, 0, "wait32", "offset");
    uint32_t expected = ArgU32(info, 1, "wait32", "expected");
    if (info.Length() < 3 || !info[2].IsNumber()) ThrowCode(env, kEInval, "wait32: timeoutMs must be a number");
    double t = info[2].As<Napi::Number>().DoubleValue();
    if (std::isnan(t) || t < 0) ThrowCode(env, kEInval, "wait32: timeoutMs must be >= 0");
    // wait32(offset, expected, timeoutMs[, wokenOnly]) — see futex.cc for what wokenOnly changes.
    bool wokenOnly = info.Length() > 3 && info[3].ToBoolean().Value();
    return StartWait32(env, map_, off, expected, t, wokenOnly);
  }

  Napi::Value Wake32(const Napi::CallbackInfo& info) {
    Word(info, "wake32");
    uint64_t off = ArgU64(info, 0, "wake32", "offset");
    uint32_t count = INT32_MAX;
    if (info.Length() > 1 && !info[1].IsUndefined()) {
      uint64_t c = ArgU64(info, 1, "wake32", "count");
      count = c > INT32_MAX ? INT32_MAX : static_cast<uint32_t>(c);
    }
    return Napi::Number::New(info.Env(), vgpu::Wake32(map_, off, count));
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    // Drop our share; the mapping goes when the last window and job let go of theirs.
    map_.reset();
    return info.Env().Undefined();
  }

  MappingPtr map_;
};

}  // namespace

Napi::Function DefineArena(Napi::Env env) { return Arena::Define(env); }

}  // namespace vgpu
