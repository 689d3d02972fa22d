// The run-time kernel choice (see kernels.h) and its JS face.
#include "kernels.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

#include "common.h"
#include "cpu-features.h"

namespace vgpu {
namespace {

const char* const kBigFillNames[] = {"libc", "stream-sse2", "stream-avx2"};
const char* const kPageHashNames[] = {"scalar-x4", "avx2-staggered"};
const char* const kBufHashNames[] = {"scalar", "avx2"};

bool Usable(BigFill f) {
  const CpuFeatures& c = Cpu();
  switch (f) {
    case BigFill::kLibc: return true;
    case BigFill::kStreamSse2: return c.sse2;
    case BigFill::kStreamAvx2: return c.avx2;
  }
  return false;
}
bool Usable(PageHash h) { return h == PageHash::kScalar4 || Cpu().avx2; }
bool Usable(BufHash h) { return h == BufHash::kScalar || Cpu().avx2; }

// Below 1 MiB a fill is metadata-sized (semaphores, queues): the cache is where it belongs whatever the LLC says.
constexpr uint64_t kMinStreamBytes = uint64_t(1) << 20;
// No cache figure (some hypervisors hide the cache leaves): assume a small server L3.
constexpr uint64_t kDefaultStreamBytes = uint64_t(8) << 20;

Kernels Auto() {
  const CpuFeatures& c = Cpu();
  Kernels k;
  k.bigFill = c.avx2 ? BigFill::kStreamAvx2 : c.sse2 ? BigFill::kStreamSse2 : BigFill::kLibc;
  // Half the last-level cache: measured on a 32 MiB-L3 Zen 3, repeated temporal fills still win at 16 MiB and lose
  // from 32 MiB on; a scrub's bytes are not read back soon, so streaming from the half-way point costs little.
  k.streamBytes = c.llcBytes > 0 ? std::max(kMinStreamBytes, c.llcBytes / 2) : kDefaultStreamBytes;
  k.pageHash = c.avx2 ? PageHash::kAvx2Staggered : PageHash::kScalar4;
  k.bufHash = c.avx2 ? BufHash::kAvx2 : BufHash::kScalar;
  return k;
}

struct State {
  std::mutex mu;
  bool ready = false;
  Kernels auto_, cur;
  // Which keys are pinned (by VGPUD_KERNELS or setKernels) rather than automatic.
  bool pinFill = false, pinThreshold = false, pinPage = false, pinBuf = false;
};

State& S() {
  static State s;
  return s;
}

// One kernel key: `value` names a kernel of `names` (or "auto"/"" to go back to the automatic choice); the CPU must be
// able to run it. Returns an error message or "".
template <class E, size_t N>
std::string ApplyKernel(const char* key, const std::string& value, const char* const (&names)[N], E autoValue, E& cur,
                        bool& pinned) {
  if (value == "auto" || value.empty()) {
    cur = autoValue;
    pinned = false;
    return "";
  }
  for (size_t i = 0; i < N; i++) {
    if (value != names[i]) continue;
    if (!Usable(static_cast<E>(i))) return std::string(key) + ": this CPU cannot run '" + value + "'";
    cur = static_cast<E>(i);
    pinned = true;
    return "";
  }
  std::string known;
  for (size_t i = 0; i < N; i++) known += std::string(names[i]) + ", ";
  return std::string(key) + ": unknown kernel '" + value + "' (" + known + "auto)";
}

// Applies one key=value; returns an error message or "".
std::string Apply(State& s, const std::string& key, const std::string& value) {
  if (key == "fill") return ApplyKernel("fill", value, kBigFillNames, s.auto_.bigFill, s.cur.bigFill, s.pinFill);
  if (key == "pageHash") return ApplyKernel("pageHash", value, kPageHashNames, s.auto_.pageHash, s.cur.pageHash, s.pinPage);
  if (key == "bufferHash") return ApplyKernel("bufferHash", value, kBufHashNames, s.auto_.bufHash, s.cur.bufHash, s.pinBuf);
  if (key == "streamThreshold") {
    if (value == "auto" || value.empty()) {
      s.cur.streamBytes = s.auto_.streamBytes;
      s.pinThreshold = false;
      return "";
    }
    char* end = nullptr;
    unsigned long long n = std::strtoull(value.c_str(), &end, 10);
    if (end == value.c_str() || *end != '\0' || value[0] == '-') return "streamThreshold: '" + value + "' is not a byte count";
    s.cur.streamBytes = n;
    s.pinThreshold = true;
    return "";
  }
  return "unknown key '" + key + "' (fill, streamThreshold, pageHash, bufferHash)";
}

// Caller holds s.mu.
void EnsureReady(State& s) {
  if (s.ready) return;
  s.ready = true;
  s.auto_ = s.cur = Auto();
  const char* env = std::getenv("VGPUD_KERNELS");
  if (env == nullptr || *env == '\0') return;
  std::string all = env;
  size_t pos = 0;
  while (pos <= all.size()) {
    size_t comma = all.find(',', pos);
    std::string item = all.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    pos = comma == std::string::npos ? all.size() + 1 : comma + 1;
    if (item.empty()) continue;
    size_t eq = item.find('=');
    std::string err = eq == std::string::npos ? "expected key=value" : Apply(s, item.substr(0, eq), item.substr(eq + 1));
    // An operator's override that cannot apply must not stop the daemon: the automatic choice stays for that key.
    if (!err.empty()) std::fprintf(stderr, "vgpud: VGPUD_KERNELS item '%s' ignored: %s\n", item.c_str(), err.c_str());
  }
}

Napi::Object Describe(Napi::Env env, State& s) {
  const CpuFeatures& c = Cpu();
  Napi::Object cpu = Napi::Object::New(env);
  cpu.Set("arch", c.arch);
  cpu.Set("vendor", c.vendor);
  cpu.Set("brand", c.brand);
  cpu.Set("family", c.family);
  cpu.Set("model", c.model);
  cpu.Set("stepping", c.stepping);
  Napi::Array feats = Napi::Array::New(env);
  uint32_t i = 0;
  auto add = [&](bool has, const char* name) {
    if (has) feats.Set(i++, name);
  };
  add(c.sse2, "sse2");
  add(c.sse41, "sse4.1");
  add(c.avx2, "avx2");
  add(c.avx512f, "avx512f");
  add(c.avx512bw, "avx512bw");
  add(c.erms, "erms");
  add(c.fsrm, "fsrm");
  add(c.hypervisor, "hypervisor");
  cpu.Set("features", feats);
  cpu.Set("llcBytes", static_cast<double>(c.llcBytes));
  cpu.Set("llcLevel", c.llcLevel);

  Napi::Object out = Napi::Object::New(env);
  out.Set("cpu", cpu);
  Napi::Object fill = Napi::Object::New(env);
  fill.Set("small", "libc");  // memset / wmemset
  fill.Set("large", kBigFillNames[static_cast<int>(s.cur.bigFill)]);
  fill.Set("streamThreshold", static_cast<double>(s.cur.streamBytes));
  out.Set("fill", fill);
  out.Set("pageHash", kPageHashNames[static_cast<int>(s.cur.pageHash)]);
  out.Set("bufferHash", kBufHashNames[static_cast<int>(s.cur.bufHash)]);

  Napi::Object avail = Napi::Object::New(env);
  Napi::Array af = Napi::Array::New(env), ap = Napi::Array::New(env), ab = Napi::Array::New(env);
  uint32_t n = 0;
  for (int k = 0; k < 3; k++) if (Usable(static_cast<BigFill>(k))) af.Set(n++, kBigFillNames[k]);
  n = 0;
  for (int k = 0; k < 2; k++) if (Usable(static_cast<PageHash>(k))) ap.Set(n++, kPageHashNames[k]);
  n = 0;
  for (int k = 0; k < 2; k++) if (Usable(static_cast<BufHash>(k))) ab.Set(n++, kBufHashNames[k]);
  avail.Set("fill", af);
  avail.Set("pageHash", ap);
  avail.Set("bufferHash", ab);
  out.Set("available", avail);
  out.Set("overridden", s.pinFill || s.pinThreshold || s.pinPage || s.pinBuf);
  return out;
}

}  // namespace

Kernels CurrentKernels() {
  State& s = S();
  std::lock_guard<std::mutex> lock(s.mu);
  EnsureReady(s);
  return s.cur;
}

Napi::Value KernelsInfo(const Napi::CallbackInfo& info) {
  State& s = S();
  std::lock_guard<std::mutex> lock(s.mu);
  EnsureReady(s);
  return Describe(info.Env(), s);
}

Napi::Value SetKernels(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) ThrowCode(env, kEInval, "setKernels: expected an object");
  Napi::Object o = info[0].As<Napi::Object>();
  State& s = S();
  std::lock_guard<std::mutex> lock(s.mu);
  EnsureReady(s);
  // All-or-nothing: validate on a copy, commit only when every key applied.
  State trial;
  trial.ready = true;
  trial.auto_ = s.auto_;
  trial.cur = s.cur;
  trial.pinFill = s.pinFill;
  trial.pinThreshold = s.pinThreshold;
  trial.pinPage = s.pinPage;
  trial.pinBuf = s.pinBuf;
  Napi::Array keys = o.GetPropertyNames();
  for (uint32_t i = 0; i < keys.Length(); i++) {
    std::string key = keys.Get(i).ToString().Utf8Value();
    Napi::Value v = o.Get(key);
    std::string value;
    if (v.IsNumber()) {
      double d = v.As<Napi::Number>().DoubleValue();
      if (!(d >= 0 && d <= 9007199254740991.0) || d != static_cast<double>(static_cast<uint64_t>(d))) {
        ThrowCode(env, kEInval, "setKernels: " + key + " must be a non-negative integer");
      }
      value = std::to_string(static_cast<uint64_t>(d));
    } else if (v.IsString()) {
      value = v.As<Napi::String>().Utf8Value();
    } else if (v.IsNull() || v.IsUndefined()) {
      value = "auto";
    } else {
      ThrowCode(env, kEInval, "setKernels: " + key + " must be a string, a number or null");
    }
    std::string err = Apply(trial, key, value);
    if (!err.empty()) ThrowCode(env, kEInval, "setKernels: " + err);
  }
  s.cur = trial.cur;
  s.pinFill = trial.pinFill;
  s.pinThreshold = trial.pinThreshold;
  s.pinPage = trial.pinPage;
  s.pinBuf = trial.pinBuf;
  return Describe(env, s);
}

}  // namespace vgpu
