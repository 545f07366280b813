{
  "targets": [
    {
      "target_name": "vmm_native",
      "sources": ["src/addon.cc", "src/lock.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Werror=return-type",
                    "-fstack-protector-strong", "-D_FORTIFY_SOURCE=2", "-fexceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "ldflags": ["-Wl,-z,relro,-z,now"],
      "conditions": [
        ["OS=='linux'", {
          "sources": ["src/linux/tap.cc", "src/linux/neigh.cc", "src/linux/sched.cc"],
          "libraries": ["-lpthread"]
        }],
        ["OS=='mac'", {
          "sources": ["src/darwin/vmnet.cc"],
          "libraries": ["-framework vmnet"],
          "xcode_settings": {
            "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
            "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
            "MACOSX_DEPLOYMENT_TARGET": "26.0"
          }
        }]
      ]
    }
  ],
  "conditions": [
    ["OS=='linux'", {
      # vmm-relayd is a static PIE: no dynamic loader and only the libc code
      # it calls, so each relay process holds ~0.5 MB less (it runs one
      # process per CPU). A glibc fix reaches it with the next native build
      # (scripts/build-native.sh), not with the system's libc package. The
      # hook stays dynamic: it resolves VMM_URL's host with getaddrinfo,
      # which a static glibc can only do by loading the system's NSS modules.
      "targets": [
        {
          "target_name": "vmm-relayd",
          "type": "executable",
          "sources": ["relayd/main.cc", "relayd/master.cc", "relayd/worker.cc", "relayd/control.cc",
                      "relayd/engine.cc", "relayd/tcp.cc", "relayd/udp.cc", "relayd/steer.cc",
                      "relayd/slots.cc", "relayd/addr.cc", "relayd/util.cc", "relayd/proxy.cc"],
          "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Werror=return-type",
                        "-fstack-protector-strong", "-D_FORTIFY_SOURCE=2", "-fno-exceptions",
                        "-ffunction-sections", "-fdata-sections"],
          "ldflags": ["-Wl,-z,relro,-z,now", "-static-pie", "-Wl,--gc-sections", "-Wl,-T,../relayd/hot.ld"],
          "ldflags!": ["-rdynamic"]
        },
        {
          "target_name": "vmm-dhcp-hook",
          "type": "executable",
          "sources": ["dhcp-hook/main.cc"],
          "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Werror=return-type",
                        "-fstack-protector-strong", "-D_FORTIFY_SOURCE=2", "-fno-exceptions"],
          "ldflags": ["-Wl,-z,relro,-z,now", "-pie", "-static-libstdc++", "-static-libgcc"]
        }
      ]
    }]
  ]
}
