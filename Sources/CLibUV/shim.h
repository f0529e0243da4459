#ifndef SLOTWARDEN_CLIBUV_SHIM_H
#define SLOTWARDEN_CLIBUV_SHIM_H
#include <uv.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

/* libuv's handle and request types share a common prefix by design; these casts are the C idiom
 * for it, kept here so that Swift never rebinds memory by hand. */
static inline uv_handle_t *slotwarden_tcp_as_handle(uv_tcp_t *tcp) { return (uv_handle_t *)tcp; }
static inline uv_stream_t *slotwarden_tcp_as_stream(uv_tcp_t *tcp) { return (uv_stream_t *)tcp; }
static inline uv_handle_t *slotwarden_timer_as_handle(uv_timer_t *timer) { return (uv_handle_t *)timer; }
static inline uv_handle_t *slotwarden_async_as_handle(uv_async_t *async) { return (uv_handle_t *)async; }
static inline uv_tcp_t *slotwarden_stream_as_tcp(uv_stream_t *stream) { return (uv_tcp_t *)stream; }

/* Creates a non-blocking, close-on-exec TCP socket bound to `addr` (SO_REUSEADDR always,
 * SO_REUSEPORT when `reuse_port` is non-zero) and stores it in `*out`. Binding here rather than
 * with uv_tcp_bind makes a bind failure (EADDRINUSE) synchronous: libuv defers it to uv_listen.
 * libuv 1.44 has no UV_TCP_REUSEPORT flag. Returns 0 or a negative errno (= a libuv error code). */
static inline int slotwarden_bound_tcp_socket(const struct sockaddr *addr, socklen_t addr_len,
                                              int reuse_port, uv_os_sock_t *out) {
#if defined(SOCK_NONBLOCK) && defined(SOCK_CLOEXEC)
    int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
#else
    int fd = socket(addr->sa_family, SOCK_STREAM, 0);
    if (fd < 0) return -errno;
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) != 0 || fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) goto fail;
#endif
    int on = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0) goto fail;
#ifdef SO_REUSEPORT
    if (reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0) goto fail;
#else
    if (reuse_port) { errno = ENOTSUP; goto fail; }
#endif
    if (addr->sa_family == AF_INET6 &&
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) != 0) goto fail;
    if (bind(fd, addr, addr_len) != 0) goto fail;
    *out = fd;
    return 0;
fail:;
    int err = errno;
    close(fd);
    return -err;
}

/* Closes a socket that never reached a libuv handle. */
static inline void slotwarden_close_socket(uv_os_sock_t fd) { close(fd); }

/* libuv writes with write(2)/writev(2), not send(2) with MSG_NOSIGNAL: a write to a socket whose
 * peer has gone raises SIGPIPE, which kills the process unless it is ignored. */
static inline void slotwarden_ignore_sigpipe(void) { signal(SIGPIPE, SIG_IGN); }

#endif
