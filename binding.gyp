# The TAP driver's native addon (runtime/drivers/tap-native). Built by the
# "install" script (scripts/build-native.mjs) during `npm ci`; Linux only.
{
  "targets": [
    {
      "target_name": "nacl_tap",
      "sources": ["runtime/drivers/tap-native/tap.c"],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
