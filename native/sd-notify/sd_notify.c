/*
 * The systemd notify protocol is one AF_UNIX datagram per message, sent to the
 * socket named by $NOTIFY_SOCKET (a path, or "@name" for the abstract
 * namespace); systemd documents it as a stable interface that may be
 * implemented without libsystemd. Node's dgram module has no AF_UNIX, so this
 * is the one call we need: send(path, message) -> 0 or -errno. Non-blocking
 * (MSG_DONTWAIT): a full socket queue drops the message rather than stall the
 * event loop. The kernel attaches our credentials (pid) for NotifyAccess=main.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <node_api.h>

#define MAX_MESSAGE 4096

static int notify_fd = -1;

static napi_value throw_error(napi_env env, int range, const char *msg) {
  if (range) napi_throw_range_error(env, NULL, msg);
  else napi_throw_type_error(env, NULL, msg);
  return NULL;
}

static napi_value Send(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_valuetype t0, t1;
  char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
  char message[MAX_MESSAGE + 1];
  size_t plen = 0, mlen = 0;
  struct sockaddr_un sa;
  socklen_t salen;
  ssize_t n;
  int result = 0;
  napi_value out;

  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2) return throw_error(env, 0, "send(socketPath, message): expected 2 arguments");
  napi_typeof(env, argv[0], &t0);
  napi_typeof(env, argv[1], &t1);
  if (t0 != napi_string || t1 != napi_string) return throw_error(env, 0, "send(socketPath, message): both must be strings");
  napi_get_value_string_utf8(env, argv[0], path, sizeof(path), &plen);
  if (plen == 0 || plen >= sizeof(sa.sun_path)) return throw_error(env, 1, "socketPath: must be 1-107 bytes");
  napi_get_value_string_utf8(env, argv[1], message, sizeof(message), &mlen);
  if (mlen == 0 || mlen >= MAX_MESSAGE) return throw_error(env, 1, "message: must be 1-4095 bytes");
  if (path[0] != '/' && path[0] != '@') return throw_error(env, 1, "socketPath: must start with / or @");

  memset(&sa, 0, sizeof(sa));
  sa.sun_family = AF_UNIX;
  memcpy(sa.sun_path, path, plen);
  if (path[0] == '@') sa.sun_path[0] = '\0'; /* abstract namespace: the name is not NUL-terminated */
  salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen + (path[0] == '@' ? 0 : 1));

  if (notify_fd < 0) {
    notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (notify_fd < 0) result = -errno;
  }
  if (result == 0) {
    n = sendto(notify_fd, message, mlen, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
    if (n < 0) result = -errno;
  }
  napi_create_int32(env, result, &out);
  return out;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "send", NAPI_AUTO_LENGTH, Send, NULL, &fn);
  napi_set_named_property(env, exports, "send", fn);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
