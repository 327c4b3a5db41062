// The TAP driver's native half: open a Linux TAP device and move frames
// between its fd and JS. libuv polls the fd on the main loop (no thread-pool
// hop per frame); each wake-up reads a bounded batch and calls JS once.
// Everything else (counters, MAC choice, validation) lives in ../tap.ts.
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <node_api.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

// Frames per JS call: bounds the time spent away from other I/O; the poll is
// level-triggered, so what is left is read on the next loop turn.
#define BATCH_MAX 64
// Largest read: a TAP's MTU can be raised to 65535, plus Ethernet and VLAN
// headers. A smaller read would silently truncate the frame (tun.c).
#define FRAME_MAX (65535 + 18)
#define SLAB_SIZE (4 * FRAME_MAX)

#define NEED_ROOT "opening a TAP device needs root or CAP_NET_ADMIN"

typedef struct {
  uv_poll_t poll;
  napi_env env;
  napi_ref callback;
  napi_async_context async;
  int fd;
  int poll_open;  // between uv_poll_init and the uv_close callback
  int finalized;  // the JS handle is gone; free once the poll handle is too
  unsigned char slab[SLAB_SIZE];
} tap_t;

#define CHECK(call)                                         \
  do {                                                      \
    if ((call) != napi_ok) {                                \
      napi_throw_error(env, NULL, "tap addon: " #call);     \
      return NULL;                                          \
    }                                                       \
  } while (0)

// Throws an Error whose .code is `code` (an errno name JS can test for).
static napi_value fail(napi_env env, const char* code, const char* fmt, ...) {
  char msg[320];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  napi_throw_error(env, code, msg);
  return NULL;
}

static void on_closed(uv_handle_t* h) {
  tap_t* t = h->data;
  napi_handle_scope scope;
  t->poll_open = 0;
  napi_open_handle_scope(t->env, &scope);
  napi_delete_reference(t->env, t->callback);
  napi_async_destroy(t->env, t->async);
  napi_close_handle_scope(t->env, scope);
  if (t->finalized) free(t);
}

static void cleanup(void* arg);

// Idempotent. The callback reference and async context are released in
// on_closed, not here, because close() may run inside that very callback.
static void tap_close(tap_t* t) {
  if (t->fd < 0) return;
  if (t->poll_open) {
    uv_poll_stop(&t->poll);  // libuv: stop polling before the fd is closed
    napi_remove_env_cleanup_hook(t->env, cleanup, t);
  }
  close(t->fd);
  t->fd = -1;
  if (t->poll_open) uv_close((uv_handle_t*)&t->poll, on_closed);
}

// A worker thread or the process is shutting down with the device still open.
static void cleanup(void* arg) { tap_close(arg); }

static void finalize(napi_env env, void* data, void* hint) {
  tap_t* t = data;
  tap_close(t);
  t->finalized = 1;
  if (!t->poll_open) free(t);
}

static tap_t* unwrap(napi_env env, napi_value v) {
  void* t = NULL;
  if (napi_get_value_external(env, v, &t) != napi_ok || t == NULL)
    napi_throw_type_error(env, NULL, "tap addon: expected a TAP handle");
  return t;
}

// Calls JS with (batch, lengths, error): the batch's bytes in one ArrayBuffer
// and each frame's length in a Uint32Array. tap.ts cuts the views, which in
// JS is cheaper than the two N-API calls per frame it took to do it here.
// A throw from the handler surfaces as an uncaught exception, as Node does
// for its own I/O callbacks.
static void deliver(tap_t* t, size_t n, const uint32_t* lens, size_t used, const char* error) {
  napi_env env = t->env;
  napi_handle_scope scope;
  napi_value ab, lengths_ab, args[3], cb, recv, exc;
  void* data;
  napi_open_handle_scope(env, &scope);
  napi_create_arraybuffer(env, used, &data, &ab);
  memcpy(data, t->slab, used);
  napi_create_arraybuffer(env, n * sizeof(uint32_t), &data, &lengths_ab);
  memcpy(data, lens, n * sizeof(uint32_t));
  args[0] = ab;
  napi_create_typedarray(env, napi_uint32_array, n, lengths_ab, 0, &args[1]);
  if (error) napi_create_string_utf8(env, error, NAPI_AUTO_LENGTH, &args[2]);
  else napi_get_undefined(env, &args[2]);
  napi_get_reference_value(env, t->callback, &cb);
  napi_get_global(env, &recv);  // make_callback wants an object as `this`
  if (napi_make_callback(env, t->async, recv, cb, 3, args, NULL) == napi_pending_exception &&
      napi_get_and_clear_last_exception(env, &exc) == napi_ok)
    napi_fatal_exception(env, exc);
  napi_close_handle_scope(env, scope);
}

static void on_readable(uv_poll_t* p, int status, int events) {
  tap_t* t = p->data;
  uint32_t lens[BATCH_MAX];
  size_t n = 0, used = 0;
  const char* error = status < 0 ? uv_strerror(status) : NULL;
  while (!error && n < BATCH_MAX && SLAB_SIZE - used >= FRAME_MAX) {
    ssize_t r = read(t->fd, t->slab + used, FRAME_MAX);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) error = strerror(errno);
      break;
    }
    lens[n++] = (uint32_t)r;
    used += (size_t)r;
  }
  // A read error is permanent (EBADFD: the device was deleted); stop, or a
  // level-triggered poll would spin on it.
  if (error) uv_poll_stop(&t->poll);
  if (n > 0 || error) deliver(t, n, lens, used, error);
}

// open(name, persist: -1 keep | 0 off | 1 on, up) -> { handle, name, mac, mtu, created }
static napi_value tap_open(napi_env env, napi_callback_info info) {
  size_t argc = 3, len;
  napi_value argv[3], result, v;
  char name[64];
  int32_t persist;
  bool up, created;
  struct ifreq ifr;
  int fd, sock = -1, mtu, e;
  tap_t* t;
  void* mac;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CHECK(napi_get_value_string_utf8(env, argv[0], name, sizeof name, &len));
  if (len == 0 || len >= IFNAMSIZ)
    return fail(env, "ENAMETOOLONG", "interface name '%s' must be 1 to %d bytes long", name, IFNAMSIZ - 1);
  CHECK(napi_get_value_int32(env, argv[1], &persist));
  CHECK(napi_get_value_bool(env, argv[2], &up));
  created = if_nametoindex(name) == 0;

  fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    e = errno;
    if (e == EACCES || e == EPERM) return fail(env, "EPERM", NEED_ROOT " (/dev/net/tun: %s)", strerror(e));
    if (e == ENOENT || e == ENXIO || e == ENODEV)
      return fail(env, "ENOENT", "no /dev/net/tun: load the tun module (modprobe tun) (%s)", strerror(e));
    return fail(env, "EIO", "cannot open /dev/net/tun: %s", strerror(e));
  }
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  memcpy(ifr.ifr_name, name, len);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    e = errno;
    close(fd);
    if (e == EPERM || e == EACCES) return fail(env, "EPERM", NEED_ROOT " (TAP device %s: %s)", name, strerror(e));
    if (e == EBUSY) return fail(env, "EBUSY", "TAP device %s is busy: another file descriptor has it open", name);
    if (e == EINVAL)
      return fail(env, "EINVAL", "cannot attach to %s as a TAP device: it exists as another kind of interface, or the name is invalid", name);
    return fail(env, "EIO", "cannot attach to TAP device %s: %s", name, strerror(e));
  }
  // The kernel may have chosen the name (a "%d" template).
  memcpy(name, ifr.ifr_name, IFNAMSIZ);
  name[IFNAMSIZ - 1] = 0;
  if (persist >= 0 && ioctl(fd, TUNSETPERSIST, persist) < 0) {
    e = errno;
    close(fd);
    return fail(env, "EIO", "cannot change persistence of %s: %s", name, strerror(e));
  }
  // MTU, MAC and flags are interface ioctls: any socket in this namespace will do.
  sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0 || ioctl(sock, SIOCGIFMTU, &ifr) < 0) goto ifreq_failed;
  mtu = ifr.ifr_mtu;
  if (ioctl(sock, SIOCGIFHWADDR, &ifr) < 0) goto ifreq_failed;
  CHECK(napi_create_buffer_copy(env, 6, ifr.ifr_hwaddr.sa_data, &mac, &v));
  if (up) {
    if (ioctl(sock, SIOCGIFFLAGS, &ifr) < 0) goto ifreq_failed;
    if (!(ifr.ifr_flags & IFF_UP)) {
      ifr.ifr_flags |= IFF_UP;
      if (ioctl(sock, SIOCSIFFLAGS, &ifr) < 0) goto ifreq_failed;
    }
  }
  close(sock);

  t = calloc(1, sizeof *t);
  if (t == NULL) {
    close(fd);
    napi_throw_error(env, "ENOMEM", "tap addon: out of memory");
    return NULL;
  }
  t->fd = fd;
  t->env = env;
  t->poll.data = t;
  CHECK(napi_create_object(env, &result));
  CHECK(napi_set_named_property(env, result, "mac", v));
  CHECK(napi_create_external(env, t, finalize, NULL, &v));
  CHECK(napi_set_named_property(env, result, "handle", v));
  CHECK(napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &v));
  CHECK(napi_set_named_property(env, result, "name", v));
  CHECK(napi_create_int32(env, mtu, &v));
  CHECK(napi_set_named_property(env, result, "mtu", v));
  CHECK(napi_get_boolean(env, created, &v));
  CHECK(napi_set_named_property(env, result, "created", v));
  return result;

ifreq_failed:
  e = errno;
  if (sock >= 0) close(sock);
  close(fd);
  if (e == EPERM || e == EACCES)
    return fail(env, "EPERM", "bringing %s up needs CAP_NET_ADMIN: run `ip link set %s up` beforehand and open it with up: false", name, name);
  return fail(env, "EIO", "cannot read or change the settings of %s: %s", name, strerror(e));
}

// start(handle, callback(batch, lengths, error)): begin polling the fd.
static napi_value tap_start(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], resource_name;
  uv_loop_t* loop;
  tap_t* t;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if ((t = unwrap(env, argv[0])) == NULL) return NULL;
  if (t->fd < 0 || t->poll_open) {
    napi_throw_error(env, NULL, "tap addon: start() on a closed or started TAP");
    return NULL;
  }
  CHECK(napi_get_uv_event_loop(env, &loop));
  if (uv_poll_init(loop, &t->poll, t->fd) != 0) {
    napi_throw_error(env, NULL, "tap addon: uv_poll_init failed");
    return NULL;
  }
  t->poll.data = t;
  t->poll_open = 1;
  CHECK(napi_create_reference(env, argv[1], 1, &t->callback));
  CHECK(napi_create_string_utf8(env, "NaclTap", NAPI_AUTO_LENGTH, &resource_name));
  CHECK(napi_async_init(env, NULL, resource_name, &t->async));
  CHECK(napi_add_env_cleanup_hook(env, cleanup, t));
  uv_poll_start(&t->poll, UV_READABLE, on_readable);
  return NULL;
}

// send(handle, frames, totals: Float64Array[frames, bytes, dropped, errors]):
// adds to totals. A write never blocks: on EAGAIN this frame and the rest of
// the call are dropped (a TAP's write queue practically never fills: the
// kernel takes the frame into its receive path at once).
static napi_value tap_send(napi_env env, napi_callback_info info) {
  size_t argc = 3, n, tlen;
  napi_value argv[3], ab;
  napi_typedarray_type type;
  uint32_t count, i;
  double* totals;
  int full = 0;
  tap_t* t;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if ((t = unwrap(env, argv[0])) == NULL) return NULL;
  CHECK(napi_get_array_length(env, argv[1], &count));
  CHECK(napi_get_typedarray_info(env, argv[2], &type, &tlen, (void**)&totals, &ab, NULL));
  if (type != napi_float64_array || tlen < 4) {
    napi_throw_type_error(env, NULL, "tap addon: totals must be a Float64Array(4)");
    return NULL;
  }
  for (i = 0; i < count; i++) {
    napi_value frame;
    void* data;
    ssize_t w;
    CHECK(napi_get_element(env, argv[1], i, &frame));
    if (napi_get_typedarray_info(env, frame, &type, &n, &data, &ab, NULL) != napi_ok || type != napi_uint8_array) {
      napi_throw_type_error(env, NULL, "send() takes an array of Uint8Array frames");
      return NULL;
    }
    if (full || t->fd < 0) {
      totals[2]++;
      continue;
    }
    do w = write(t->fd, data, n); while (w < 0 && errno == EINTR);
    if (w == (ssize_t)n) {
      totals[0]++;
      totals[1] += (double)n;
    } else if (w < 0 && errno == EAGAIN) {
      full = 1;
      totals[2]++;
    } else {
      totals[3]++;  // EINVAL for a frame shorter than an Ethernet header, EIO, ...
    }
  }
  return NULL;
}

static napi_value tap_close_js(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  tap_t* t;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if ((t = unwrap(env, argv[0])) == NULL) return NULL;
  tap_close(t);
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      {"open", NULL, tap_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"start", NULL, tap_start, NULL, NULL, NULL, napi_enumerable, NULL},
      {"send", NULL, tap_send, NULL, NULL, NULL, napi_enumerable, NULL},
      {"close", NULL, tap_close_js, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}
