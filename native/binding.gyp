{
  "targets": [
    {
      "target_name": "vgpud_native",
      "sources": [
        "src/addon.cc",
        "src/args.cc",
        "src/arena.cc",
        "src/cpu-features.cc",
        "src/kernels.cc",
        "src/fill.cc",
        "src/reserve.cc",
        "src/hash.cc",
        "src/buffer-hash.cc",
        "src/extents.cc",
        "src/futex.cc",
        "src/sd-notify.cc",
        "src/release-free-memory.cc",
        "src/fd-socket.cc",
        "src/fd-misc.cc",
        "src/fd-map.cc",
        "src/fd-watch.cc"
      ],
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions", "-O3"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-O3"],
      "cflags": ["-O2", "-pthread", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags_cc": ["-O2", "-std=c++17", "-pthread", "-fexceptions"],
      "ldflags": ["-pthread"]
    }
  ]
}
