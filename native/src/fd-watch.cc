// FdWatcher: readiness of one descriptor from the event loop itself (a libuv poll handle), so sockets carrying
// SCM_RIGHTS, eventfds and pidfds wake JavaScript exactly when they have something — no timer, no busy loop. The
// callback runs through MakeCallback (an async context of its own), so promise jobs it starts run right after it
// and an exception it throws reaches process 'uncaughtException' like any other callback's.
//
// Lifetime: the uv handle lives in a heap block owned by the handle itself until uv_close's callback; the JS object
// may be collected before that. close() is idempotent; the descriptor itself is the caller's to close, after
// close() (libuv must stop polling a descriptor before it is closed).
#include <uv.h>

#include <memory>

#include "common.h"
#include "fd-ops.h"

namespace vgpu {
namespace {

struct WatchBlock {
  uv_poll_t handle;
  Napi::FunctionReference callback;
  std::unique_ptr<Napi::AsyncContext> context;
  napi_env env = nullptr;
  bool closing = false;
};

void OnClosed(uv_handle_t* h) {
  auto* b = static_cast<WatchBlock*>(h->data);
  delete b;
}

void OnPoll(uv_poll_t* h, int status, int events) {
  auto* b = static_cast<WatchBlock*>(h->data);
  if (b->closing || b->callback.IsEmpty()) return;
  Napi::Env env(b->env);
  Napi::HandleScope scope(env);
  int flags = 0;
  if (status < 0) flags |= 4;  // error: the caller reads the socket and sees the errno there
  if (events & UV_READABLE) flags |= 1;
  if (events & UV_WRITABLE) flags |= 2;
  if (events & UV_DISCONNECT) flags |= 1;
  try {
    b->callback.MakeCallback(env.Global(), {Napi::Number::New(env, flags)}, *b->context);
  } catch (const Napi::Error& e) {
    // MakeCallback already routed the exception to process 'uncaughtException'; nothing more to do here.
    (void)e;
  }
}

class FdWatcher : public Napi::ObjectWrap<FdWatcher> {
 public:
  // new FdWatcher(fd, callback(flags)) — flags: 1 readable, 2 writable, 4 error
  explicit FdWatcher(const Napi::CallbackInfo& info) : Napi::ObjectWrap<FdWatcher>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsFunction()) {
      ThrowCode(env, kEInval, "FdWatcher: expected (fd, callback)");
    }
    int fd = info[0].As<Napi::Number>().Int32Value();
    if (fd < 0) ThrowCode(env, kEInval, "FdWatcher: fd must be non-negative");
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) ThrowCode(env, kEInternal, "FdWatcher: no event loop");
    auto* b = new WatchBlock();
    b->env = env;
    int r = uv_poll_init(loop, &b->handle, fd);
    if (r != 0) {
      delete b;
      ThrowCode(env, kEInval, std::string("FdWatcher: uv_poll_init: ") + uv_strerror(r));
    }
    b->handle.data = b;
    b->callback = Napi::Persistent(info[1].As<Napi::Function>());
    b->context = std::make_unique<Napi::AsyncContext>(env, "vgpud:FdWatcher");
    block_ = b;
  }

  ~FdWatcher() override { Release(); }

  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "FdWatcher", {
      InstanceMethod<&FdWatcher::Start>("start"),
      InstanceMethod<&FdWatcher::Stop>("stop"),
      InstanceMethod<&FdWatcher::Ref>("ref"),
      InstanceMethod<&FdWatcher::Unref>("unref"),
      InstanceMethod<&FdWatcher::Close>("close"),
    });
  }

 private:
  // start(readable, writable): (re)arm for the given events.
  Napi::Value Start(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (block_ == nullptr) ThrowCode(env, kEState, "FdWatcher.start: the watcher is closed");
    int events = 0;
    if (info.Length() > 0 && info[0].ToBoolean().Value()) events |= UV_READABLE | UV_DISCONNECT;
    if (info.Length() > 1 && info[1].ToBoolean().Value()) events |= UV_WRITABLE;
    int r = events == 0 ? uv_poll_stop(&block_->handle) : uv_poll_start(&block_->handle, events, OnPoll);
    if (r != 0) ThrowCode(env, kEInval, std::string("FdWatcher.start: ") + uv_strerror(r));
    return env.Undefined();
  }

  Napi::Value Stop(const Napi::CallbackInfo& info) {
    if (block_ != nullptr) uv_poll_stop(&block_->handle);
    return info.Env().Undefined();
  }

  Napi::Value Ref(const Napi::CallbackInfo& info) {
    if (block_ != nullptr) uv_ref(reinterpret_cast<uv_handle_t*>(&block_->handle));
    return info.Env().Undefined();
  }

  Napi::Value Unref(const Napi::CallbackInfo& info) {
    if (block_ != nullptr) uv_unref(reinterpret_cast<uv_handle_t*>(&block_->handle));
    return info.Env().Undefined();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Release();
    return info.Env().Undefined();
  }

  void Release() {
    if (block_ == nullptr) return;
    WatchBlock* b = block_;
    block_ = nullptr;
    b->closing = true;
    uv_poll_stop(&b->handle);
    b->callback.Reset();
    b->context.reset();
    uv_close(reinterpret_cast<uv_handle_t*>(&b->handle), OnClosed);
  }

  WatchBlock* block_ = nullptr;
};

}  // namespace

Napi::Function DefineFdWatcher(Napi::Env env) { return FdWatcher::Define(env); }

}  // namespace vgpu
