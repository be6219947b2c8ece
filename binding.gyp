{
  "targets": [
    {
      "target_name": "qarvd",
      "sources": [
        "<!@(node -p \"require('fs').readdirSync('csrc',{recursive:true}).filter(f=>f.endsWith('.cc')&&!f.startsWith('kernels/emulated/')).map(f=>'csrc/'+f).join(' ')\")"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-O3", "-fexceptions", "-fno-math-errno", "-fvisibility=hidden"],
      "conditions": [["OS=='linux'", {"libraries": ["-lpthread"]}]]
    }
  ]
}
