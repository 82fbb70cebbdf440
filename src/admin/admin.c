/*
 * admin.c - the admin HTTP API (libmicrohttpd) and the CLI's HTTP client.
 *
 * Server. microhttpd runs without threads of its own (MHD_USE_EPOLL,
 * external polling): its epoll fd is watched by the signalling loop, and a
 * loop timer calls MHD_run at least every ADMIN_TICK_MS, or sooner when
 * MHD_get_timeout asks, so idle and slow connections are timed out. Every
 * handler therefore runs on the signalling thread and reads registrations,
 * calls and alarms through the sources' callbacks without any lock: the
 * price is that a slow callback delays SIP, so callbacks must be quick.
 * The tick costs two wakeups a second when idle; we chose that over
 * relying on MHD reporting "no timeout needed" in every state.
 *
 * Abuse limits: at most ADMIN_MAX_CONNECTIONS connections, a
 * ADMIN_CONN_TIMEOUT_S idle timeout, request bodies up to ADMIN_MAX_BODY
 * bytes (413 when announced larger, connection dropped when streamed
 * larger). No endpoint reads a body: parameters are in the query string.
 *
 * Routes (DESIGN.md section 3): GET /api/{registrations,calls,alarms,status}
 * (JSON), GET /api/ladders and GET /api/calls/ladder?call_id=X (the SIP
 * ladders, diag/ladder.h), GET /metrics (Prometheus text),
 * POST /api/loglevel?level=X,
 * POST /api/reload, GET|POST /api/selftest (reachability from outside,
 * nat/selftest.c), and the diagnostics page: GET / plus its CSS and JS
 * (page.h; files compiled in, nothing read from disk). A NULL callback
 * answers 404, a wrong method 405 with Allow, a callback failure 500;
 * errors are JSON {"error": "..."}.
 *
 * Client. admin_client_request is a blocking HTTP/1.0 client (the CLI has
 * nothing else to do while it waits): non-blocking connect + poll so one
 * deadline covers connect, send and the whole read; the server closes the
 * connection after an HTTP/1.0 response, so the body ends at EOF.
 */
#include "admin/admin.h"
#include "admin/page.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "core/loop.h"
#include "log/log.h"

#define ADMIN_TICK_MS 500
#define ADMIN_MAX_CONNECTIONS 32
#define ADMIN_CONN_TIMEOUT_S 10
#define ADMIN_MAX_BODY 4096
#define CLIENT_MAX_RESPONSE (64u << 20)

struct admin {
	struct MHD_Daemon *daemon;
	struct loop *loop;
	struct admin_sources sources;
	struct loop_timer tick;
	int epoll_fd;
	uint16_t port;
	char listen[64];
};

/* Per-request state, from the first handler call to completion. */
struct admin_request {
	size_t body_len;
};

void admin_text_printf(struct admin_text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		size_t room = t->cap - t->len;
		size_t cap;
		char *buf;

		va_start(ap, fmt);
		n = vsnprintf(t->buf ? t->buf + t->len : NULL,
			      t->buf ? room : 0, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if ((size_t)n < room) {
			t->len += (size_t)n;
			return;
		}
		cap = t->cap ? t->cap : 1024;
		while (cap - t->len <= (size_t)n)
			cap *= 2;
		buf = realloc(t->buf, cap);
		if (!buf) {
			/* Keep what we have: a truncated page beats none. */
			log_warn("admin", "out of memory for text output");
			return;
		}
		t->buf = buf;
		t->cap = cap;
	}
}

/*
 * Address parsing shared by server and client: "a.b.c.d:port" or
 * "[v6]:port". Port 0 is allowed only when allow_port0 (bind ephemeral).
 */
static int parse_addr(const char *addr, bool allow_port0,
		      struct sockaddr_storage *ss, socklen_t *sslen)
{
	char host[64];
	const char *colon, *start = addr, *end;
	unsigned long port;
	char *portend;
	size_t hlen;

	if (!addr)
		return EINVAL;
	if (addr[0] == '[') {
		start = addr + 1;
		end = strchr(start, ']');
		if (!end || end[1] != ':')
			return EINVAL;
		colon = end + 1;
	} else {
		colon = strrchr(addr, ':');
		if (!colon)
			return EINVAL;
		end = colon;
	}
	hlen = (size_t)(end - start);
	if (hlen == 0 || hlen >= sizeof(host))
		return EINVAL;
	memcpy(host, start, hlen);
	host[hlen] = '\0';
	if (colon[1] < '0' || colon[1] > '9')
		return EINVAL;
	errno = 0;
	port = strtoul(colon + 1, &portend, 10);
	if (errno || *portend || port > 65535 || (port == 0 && !allow_port0))
		return EINVAL;

	memset(ss, 0, sizeof(*ss));
	if (addr[0] != '[') {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
			return EINVAL;
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		*sslen = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
			return EINVAL;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		*sslen = sizeof(*sin6);
	}
	return 0;
}

/* Server: responses */

static void json_text_free(void *text)
{
	json_free_t free_fn;

	json_get_alloc_funcs(NULL, &free_fn);
	free_fn(text);
}

static enum MHD_Result send_response(struct MHD_Connection *conn,
				     unsigned status,
				     struct MHD_Response *resp,
				     const char *content_type)
{
	enum MHD_Result ret;

	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
				content_type);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
				"no-store");
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* A response holding json's text (reference stolen); NULL on failure. */
static struct MHD_Response *json_response(json_t *json)
{
	struct MHD_Response *resp;
	char *text = json ? json_dumps(json, JSON_INDENT(1)) : NULL;

	json_decref(json);
	if (!text)
		return NULL;
	resp = MHD_create_response_from_buffer_with_free_callback(
		strlen(text), text, json_text_free);
	if (!resp)
		json_text_free(text);
	return resp;
}

static enum MHD_Result send_json(struct MHD_Connection *conn, unsigned status,
				 json_t *json)
{
	static const char fail[] = "{\"error\": \"internal error\"}";
	struct MHD_Response *resp = json_response(json);

	if (!resp) {
		status = MHD_HTTP_INTERNAL_SERVER_ERROR;
		resp = MHD_create_response_from_buffer(sizeof(fail) - 1,
						       (void *)fail,
						       MHD_RESPMEM_PERSISTENT);
	}
	return send_response(conn, status, resp, "application/json");
}

static enum MHD_Result send_error(struct MHD_Connection *conn,
				  unsigned status, const char *msg)
{
	return send_json(conn, status, json_pack("{s:s}", "error", msg));
}

static enum MHD_Result send_not_allowed(struct MHD_Connection *conn,
					const char *allow)
{
	struct MHD_Response *resp = json_response(
		json_pack("{s:s}", "error", "method not allowed"));

	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
	return send_response(conn, MHD_HTTP_METHOD_NOT_ALLOWED, resp,
			     "application/json");
}

/* Server: routes */

static enum MHD_Result route_json(struct MHD_Connection *conn, bool get,
				  json_t *(*fn)(void *arg), void *arg)
{
	json_t *json;

	if (!fn)
		return send_error(conn, MHD_HTTP_NOT_FOUND, "not found");
	if (!get)
		return send_not_allowed(conn, "GET, HEAD");
	json = fn(arg);
	if (!json)
		return send_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
				  "internal error");
	return send_json(conn, MHD_HTTP_OK, json);
}

static enum MHD_Result route_metrics(struct admin *admin,
				     struct MHD_Connection *conn, bool get)
{
	struct admin_text text = { 0 };
	struct MHD_Response *resp;

	if (!admin->sources.metrics)
		return send_error(conn, MHD_HTTP_NOT_FOUND, "not found");
	if (!get)
		return send_not_allowed(conn, "GET, HEAD");
	admin->sources.metrics(&text, admin->sources.arg);
	if (text.buf) {
		resp = MHD_create_response_from_buffer(text.len, text.buf,
						       MHD_RESPMEM_MUST_FREE);
		if (!resp)
			free(text.buf);
	} else {
		resp = MHD_create_response_from_buffer(0, (void *)"",
						       MHD_RESPMEM_PERSISTENT);
	}
	return send_response(conn, MHD_HTTP_OK, resp,
			     "text/plain; version=0.0.4");
}

static enum MHD_Result route_loglevel(struct admin *admin,
				      struct MHD_Connection *conn, bool post)
{
	const char *level;
	int err;

	if (!admin->sources.set_loglevel)
		return send_error(conn, MHD_HTTP_NOT_FOUND, "not found");
	if (!post)
		return send_not_allowed(conn, "POST");
	level = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND,
					    "level");
	if (!level || !*level)
		return send_error(conn, MHD_HTTP_BAD_REQUEST,
				  "missing parameter: level");
	err = admin->sources.set_loglevel(level, admin->sources.arg);
	if (err == EINVAL)
		return send_error(conn, MHD_HTTP_BAD_REQUEST,
				  "unknown level (error, warning, notice, "
				  "info, debug)");
	if (err)
		return send_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
				  strerror(err));
	log_notice("admin", "log level set level=%s", level);
	return send_json(conn, MHD_HTTP_OK,
			 json_pack("{s:b,s:s}", "ok", 1, "level", level));
}

static enum MHD_Result route_reload(struct admin *admin,
				    struct MHD_Connection *conn, bool post)
{
	char msg[512] = "";
	int err;

	if (!admin->sources.reload)
		return send_error(conn, MHD_HTTP_NOT_FOUND, "not found");
	if (!post)
		return send_not_allowed(conn, "POST");
	err = admin->sources.reload(msg, sizeof(msg), admin->sources.arg);
	msg[sizeof(msg) - 1] = '\0';
	if (err)
		return send_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
				  msg[0] ? msg : strerror(err));
	return send_json(conn, MHD_HTTP_OK,
			 json_pack("{s:b,s:s}", "ok", 1, "message", msg));
}

static enum MHD_Result route_selftest(struct admin *admin,
				      struct MHD_Connection *conn, bool get,
				      bool post)
{
	json_t *json;

	if (!admin->sources.selftest)
		return send_error(conn, MHD_HTTP_NOT_FOUND, "not found");
	if (!get && !post)
		return send_not_allowed(conn, "GET, HEAD, POST");
	json = admin->sources.selftest(post, admin->sources.arg);
	if (!json)
		return send_error(conn, MHD_HTTP_CONFLICT,
				  "a self-test is already running");
	return send_json(conn, MHD_HTTP_OK, json);
}

/* One call's SIP ladder: the Call-ID is a query parameter because it may
 * hold any character ('/', '@', '%'); microhttpd decodes it. */
static enum MHD_Result route_ladder(struct admin *admin,
				    struct MHD_Connection *conn, bool get)
{
	const char *call_id;
	json_t *json;

	if (!admin->sources.ladder)
		return send_error(conn, MHD_HTTP_NOT_FOUND, "not found");
	if (!get)
		return send_not_allowed(conn, "GET, HEAD");
	call_id = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND,
					      "call_id");
	if (!call_id || !*call_id)
		return send_error(conn, MHD_HTTP_BAD_REQUEST,
				  "missing parameter: call_id");
	json = admin->sources.ladder(call_id, admin->sources.arg);
	if (!json)
		return send_error(conn, MHD_HTTP_NOT_FOUND,
				  "no ladder for this Call-ID (only the last "
				  "[admin] ladder_calls calls are kept; 0 = off)");
	return send_json(conn, MHD_HTTP_OK, json);
}

/* The page's own files, or NULL. */
static const struct admin_asset *find_asset(const char *url)
{
	const struct admin_asset *a;

	for (a = admin_page_assets; a->path; a++)
		if (strcmp(a->path, url) == 0)
			return a;
	return NULL;
}

/*
 * The diagnostics page. Its script and style are separate files so the
 * CSP can forbid inline script: the page shows strings that phones sent
 * (contacts, user agents), and the policy is a second wall behind the
 * script's own rule of text nodes only. connect-src 'self' limits the
 * script to this API.
 */
static enum MHD_Result route_asset(struct MHD_Connection *conn, bool get,
				   const struct admin_asset *asset)
{
	struct MHD_Response *resp;

	if (!get)
		return send_not_allowed(conn, "GET, HEAD");
	resp = MHD_create_response_from_buffer(asset->len, (void *)asset->body,
					       MHD_RESPMEM_PERSISTENT);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Security-Policy",
				"default-src 'none'; script-src 'self'; "
				"style-src 'self'; connect-src 'self'; "
				"img-src 'self'; base-uri 'none'; "
				"form-action 'none'; frame-ancestors 'none'");
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "X-Frame-Options", "DENY");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	return send_response(conn, MHD_HTTP_OK, resp, asset->content_type);
}

static enum MHD_Result dispatch(struct admin *admin,
				struct MHD_Connection *conn, const char *url,
				const char *method)
{
	const struct admin_sources *src = &admin->sources;
	bool get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 ||
		   strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
	bool post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
	const struct admin_asset *asset;

	log_debug("admin", "request method=%s url=%s", method, url);
	if ((asset = find_asset(url)))
		return route_asset(conn, get, asset);
	if (strcmp(url, "/api/registrations") == 0)
		return route_json(conn, get, src->registrations, src->arg);
	if (strcmp(url, "/api/calls") == 0)
		return route_json(conn, get, src->calls, src->arg);
	if (strcmp(url, "/api/alarms") == 0)
		return route_json(conn, get, src->alarms, src->arg);
	if (strcmp(url, "/api/status") == 0)
		return route_json(conn, get, src->status, src->arg);
	if (strcmp(url, "/api/ladders") == 0)
		return route_json(conn, get, src->ladders, src->arg);
	if (strcmp(url, "/api/calls/ladder") == 0)
		return route_ladder(admin, conn, get);
	if (strcmp(url, "/metrics") == 0)
		return route_metrics(admin, conn, get);
	if (strcmp(url, "/api/loglevel") == 0)
		return route_loglevel(admin, conn, post);
	if (strcmp(url, "/api/reload") == 0)
		return route_reload(admin, conn, post);
	if (strcmp(url, "/api/selftest") == 0)
		return route_selftest(admin, conn, get, post);
	return send_error(conn, MHD_HTTP_NOT_FOUND, "not found");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
				  const char *url, const char *method,
				  const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	struct admin *admin = cls;
	struct admin_request *req = *con_cls;

	if (!req) {
		/* First call: headers only. Refuse an announced large body
		 * before reading any of it. */
		const char *cl = MHD_lookup_connection_value(
			conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);

		if (cl && strtoull(cl, NULL, 10) > ADMIN_MAX_BODY)
			return send_error(conn, MHD_HTTP_CONTENT_TOO_LARGE,
					  "request body too large");
		req = calloc(1, sizeof(*req));
		if (!req)
			return MHD_NO;
		*con_cls = req;
		return MHD_YES;
	}
	if (*upload_data_size) {
		/* No endpoint reads a body: count and discard. A response
		 * cannot be queued mid-upload, so an oversized streamed body
		 * (chunked) closes the connection. */
		req->body_len += *upload_data_size;
		*upload_data_size = 0;
		if (req->body_len > ADMIN_MAX_BODY) {
			log_warn("admin", "request body too large, closing "
				 "url=%s", url);
			return MHD_NO;
		}
		return MHD_YES;
	}
	return dispatch(admin, conn, url, method);
}

static void on_completed(void *cls, struct MHD_Connection *conn,
			 void **con_cls, enum MHD_RequestTerminationCode toe)
{
	free(*con_cls);
	*con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	log_warn("admin", "microhttpd: %s", msg);
}

/* Server: loop integration */

static void admin_run(struct admin *admin)
{
	MHD_UNSIGNED_LONG_LONG timeout;
	uint64_t delay = ADMIN_TICK_MS;

	MHD_run(admin->daemon);
	if (MHD_get_timeout(admin->daemon, &timeout) == MHD_YES &&
	    timeout < delay)
		delay = timeout;
	loop_timer_start(admin->loop, &admin->tick, delay);
}

static void on_epoll_readable(int fd, int events, void *arg)
{
	admin_run(arg);
}

static void on_tick(void *arg)
{
	admin_run(arg);
}

int admin_start(struct admin **adminp, struct loop *loop, const char *listen,
		const struct admin_sources *sources)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	const union MHD_DaemonInfo *info;
	struct admin *admin;
	unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
	int err;

	if (!adminp || !loop || !sources)
		return EINVAL;
	err = parse_addr(listen, true, &ss, &sslen);
	if (err) {
		log_err("admin", "bad listen address \"%s\": want ip:port or "
			"[ipv6]:port", listen ? listen : "");
		return err;
	}
	admin = calloc(1, sizeof(*admin));
	if (!admin)
		return ENOMEM;
	admin->loop = loop;
	admin->sources = *sources;
	admin->epoll_fd = -1;
	snprintf(admin->listen, sizeof(admin->listen), "%s", listen);
	loop_timer_init(&admin->tick, on_tick, admin);
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;

	errno = 0;
	admin->daemon = MHD_start_daemon(
		flags, ntohs(((struct sockaddr_in *)&ss)->sin_port), NULL, NULL,
		on_request, admin,
		MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, admin,
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)ADMIN_MAX_CONNECTIONS,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)ADMIN_CONN_TIMEOUT_S,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, admin,
		MHD_OPTION_END);
	if (!admin->daemon) {
		err = errno ? errno : EADDRINUSE;
		log_err("admin", "cannot listen on %s: %s", listen,
			strerror(err));
		free(admin);
		return err;
	}
	info = MHD_get_daemon_info(admin->daemon, MHD_DAEMON_INFO_EPOLL_FD);
	if (!info || info->epoll_fd < 0) {
		log_err("admin", "microhttpd has no epoll fd");
		admin_stop(admin);
		return ENOTSUP;
	}
	admin->epoll_fd = info->epoll_fd;
	info = MHD_get_daemon_info(admin->daemon, MHD_DAEMON_INFO_BIND_PORT);
	admin->port = info ? info->port : 0;
	err = loop_fd_set(loop, admin->epoll_fd, LOOP_READ, on_epoll_readable,
			  admin);
	if (err) {
		admin->epoll_fd = -1;
		admin_stop(admin);
		return err;
	}
	loop_timer_start(loop, &admin->tick, ADMIN_TICK_MS);
	log_info("admin", "listening http=%s port=%u", listen,
		 (unsigned)admin->port);
	*adminp = admin;
	return 0;
}

unsigned admin_port(const struct admin *admin)
{
	return admin ? admin->port : 0;
}

void admin_stop(struct admin *admin)
{
	if (!admin)
		return;
	loop_timer_cancel(admin->loop, &admin->tick);
	if (admin->epoll_fd >= 0)
		loop_fd_del(admin->loop, admin->epoll_fd);
	if (admin->daemon)
		MHD_stop_daemon(admin->daemon);
	free(admin);
}

/* Client */

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Wait for events on fd until deadline; 0, ETIMEDOUT or errno. */
static int wait_fd(int fd, short events, uint64_t deadline)
{
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = events };
		uint64_t now = mono_ms(), left;
		int n;

		if (now >= deadline)
			return ETIMEDOUT;
		left = deadline - now;
		n = poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int)left);
		if (n > 0)
			return 0;
		if (n == 0)
			return ETIMEDOUT;
		if (errno != EINTR)
			return errno;
	}
}

static int client_connect(int fd, const struct sockaddr_storage *ss,
			  socklen_t sslen, uint64_t deadline)
{
	int err = 0;
	socklen_t errlen = sizeof(err);

	if (connect(fd, (const struct sockaddr *)ss, sslen) == 0)
		return 0;
	if (errno != EINPROGRESS)
		return errno;
	err = wait_fd(fd, POLLOUT, deadline);
	if (err)
		return err;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &errlen) < 0)
		return errno;
	return err;
}

static int client_send(int fd, const char *buf, size_t len,
		       uint64_t deadline)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		int err;

		if (n >= 0) {
			buf += n;
			len -= (size_t)n;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return errno;
		err = wait_fd(fd, POLLOUT, deadline);
		if (err)
			return err;
	}
	return 0;
}

/* Read until EOF into a malloc'd, NUL-terminated buffer. */
static int client_recv(int fd, uint64_t deadline, char **bufp, size_t *lenp)
{
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int err;

	for (;;) {
		ssize_t n;

		if (cap - len < 4096 + 1) {
			size_t ncap = cap ? cap * 2 : 16384;
			char *nbuf;

			if (ncap > CLIENT_MAX_RESPONSE + 1) {
				free(buf);
				return EMSGSIZE;
			}
			nbuf = realloc(buf, ncap);
			if (!nbuf) {
				free(buf);
				return ENOMEM;
			}
			buf = nbuf;
			cap = ncap;
		}
		n = recv(fd, buf + len, cap - len - 1, 0);
		if (n > 0) {
			len += (size_t)n;
			continue;
		}
		if (n == 0)
			break;
		if (errno == EINTR)
			continue;
		err = errno;
		if (err == EAGAIN || err == EWOULDBLOCK)
			err = wait_fd(fd, POLLIN, deadline);
		if (err) {
			free(buf);
			return err;
		}
	}
	buf[len] = '\0';
	*bufp = buf;
	*lenp = len;
	return 0;
}

/* Split "HTTP/1.x NNN reason\r\nheaders\r\n\r\nbody" in place. */
static int parse_response(char *buf, size_t len, int *status, char **body)
{
	char *hdr_end, *text;
	size_t skip, blen;

	if (len < 12 || strncmp(buf, "HTTP/1.", 7) != 0 || buf[8] != ' ' ||
	    buf[9] < '1' || buf[9] > '5' || buf[10] < '0' || buf[10] > '9' ||
	    buf[11] < '0' || buf[11] > '9')
		return EPROTO;
	hdr_end = strstr(buf, "\r\n\r\n");
	skip = 4;
	if (!hdr_end) {
		hdr_end = strstr(buf, "\n\n");
		skip = 2;
	}
	if (!hdr_end)
		return EPROTO;
	blen = len - (size_t)(hdr_end + skip - buf);
	text = malloc(blen + 1);
	if (!text)
		return ENOMEM;
	memcpy(text, hdr_end + skip, blen);
	text[blen] = '\0';
	*status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
	*body = text;
	return 0;
}

static bool token_ok(const char *s, bool path)
{
	if (!s || !*s || (path && *s != '/'))
		return false;
	for (; *s; s++)
		if ((unsigned char)*s <= ' ' || *s == 0x7f)
			return false;
	return true;
}

int admin_client_request(const char *addr, const char *method,
			 const char *path, unsigned timeout_ms,
			 int *status, char **body)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	uint64_t deadline = mono_ms() + timeout_ms;
	char req[2048], *resp = NULL;
	size_t resp_len = 0;
	bool post;
	int fd, n, err;

	*body = NULL;
	if (!token_ok(method, false) || !token_ok(path, true))
		return EINVAL;
	err = parse_addr(addr, false, &ss, &sslen);
	if (err)
		return err;
	post = strcmp(method, "POST") == 0;
	n = snprintf(req, sizeof(req),
		     "%s %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: pinhole-cli\r\n"
		     "Accept: */*\r\n%s\r\n", method, path, addr,
		     post ? "Content-Length: 0\r\n" : "");
	if (n < 0 || (size_t)n >= sizeof(req))
		return ENAMETOOLONG;

	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd < 0)
		return errno;
	err = client_connect(fd, &ss, sslen, deadline);
	if (!err)
		err = client_send(fd, req, (size_t)n, deadline);
	if (!err)
		err = client_recv(fd, deadline, &resp, &resp_len);
	close(fd);
	if (err)
		return err;
	err = parse_response(resp, resp_len, status, body);
	free(resp);
	return err;
}
