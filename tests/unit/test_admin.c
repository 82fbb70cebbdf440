/*
 * test_admin.c - the admin HTTP API driven by the real loop on 127.0.0.1
 * (ephemeral port), queried by admin_client_request from a second thread
 * as the CLI would; plus the client's error paths and the text buffer.
 *
 * cmocka is not thread-safe: the client thread only records what it got,
 * the main thread asserts after the loop has stopped.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "admin/admin.h"
#include "core/loop.h"
#include "log/log.h"

/* Daemon side (runs on the loop thread). */
struct daemon_state {
	char level[32];
	unsigned reloads;
};

static json_t *get_registrations(void *arg)
{
	return json_pack("[{s:s,s:s,s:i}]", "aor", "alice@example.com",
			 "verdict", "behind-nat", "expires", 3600);
}

static json_t *get_status(void *arg)
{
	return json_pack("{s:s}", "version", "test");
}

static json_t *get_alarms_fails(void *arg)
{
	return NULL;
}

static void get_metrics(struct admin_text *out, void *arg)
{
	admin_text_printf(out, "# TYPE pinhole_registrations gauge\n");
	admin_text_printf(out, "pinhole_registrations %d\n", 1);
}

static int set_loglevel(const char *level, void *arg)
{
	struct daemon_state *d = arg;
	enum log_level l;

	if (log_level_parse(level, &l))
		return EINVAL;
	snprintf(d->level, sizeof(d->level), "%s", level);
	return 0;
}

static int do_reload(char *msg, size_t cap, void *arg)
{
	struct daemon_state *d = arg;

	d->reloads++;
	snprintf(msg, cap, "config reloaded");
	return 0;
}

/* Client side (runs on its own thread). */
enum { MAX_CALLS = 16 };

struct call {
	const char *method, *path;
	int err, status;
	char *body;
};

struct client {
	char addr[64];
	uint16_t port;
	struct call calls[MAX_CALLS];
	unsigned ncalls;
	char big_body_reply[64];
	atomic_bool done;
};

static const struct {
	const char *method, *path;
} script[] = {
	{ "GET", "/api/registrations" },	/* 0 */
	{ "GET", "/metrics" },			/* 1 */
	{ "GET", "/nope" },			/* 2 */
	{ "POST", "/api/loglevel?level=debug" },	/* 3 */
	{ "POST", "/api/loglevel?level=bogus" },	/* 4 */
	{ "GET", "/api/loglevel?level=debug" },	/* 5 */
	{ "GET", "/api/calls" },		/* 6: NULL callback */
	{ "GET", "/api/alarms" },		/* 7: callback fails */
	{ "POST", "/api/reload" },		/* 8 */
	{ "GET", "/" },				/* 9 */
	{ "POST", "/api/registrations" },	/* 10 */
	{ "GET", "/api/status" },		/* 11 */
	{ "POST", "/api/loglevel" },		/* 12: no level */
};

/* A POST announcing a 100 KB body: the first line of the reply. */
static void big_body(struct client *c)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_port = htons(c->port) };
	static const char req[] =
		"POST /api/reload HTTP/1.0\r\nContent-Length: 100000\r\n\r\n";
	struct pollfd pfd;
	ssize_t n;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) < 0)
		goto out;
	pfd = (struct pollfd){ .fd = fd, .events = POLLIN };
	if (poll(&pfd, 1, 3000) != 1)
		goto out;
	n = recv(fd, c->big_body_reply, sizeof(c->big_body_reply) - 1, 0);
	if (n > 0)
		c->big_body_reply[n] = '\0';
out:
	if (fd >= 0)
		close(fd);
}

static void *client_main(void *arg)
{
	struct client *c = arg;

	for (unsigned i = 0; i < sizeof(script) / sizeof(script[0]); i++) {
		struct call *call = &c->calls[c->ncalls++];

		call->method = script[i].method;
		call->path = script[i].path;
		call->err = admin_client_request(c->addr, call->method,
						 call->path, 3000,
						 &call->status, &call->body);
	}
	big_body(c);
	atomic_store(&c->done, true);
	return NULL;
}

/* The loop polls the client's flag; a deadline guards against hangs. */
struct watch {
	struct loop *loop;
	struct loop_timer timer;
	struct client *client;
	unsigned ticks;
};

static void on_watch(void *arg)
{
	struct watch *w = arg;

	if (atomic_load(&w->client->done) || ++w->ticks > 500) {
		loop_stop(w->loop);
		return;
	}
	loop_timer_start(w->loop, &w->timer, 20);
}

static void test_api(void **state)
{
	struct daemon_state d = { .level = "" };
	struct admin_sources src = {
		.registrations = get_registrations,
		.alarms = get_alarms_fails,
		.status = get_status,
		.metrics = get_metrics,
		.set_loglevel = set_loglevel,
		.reload = do_reload,
		.arg = &d,
	};
	struct client *c = calloc(1, sizeof(*c));
	struct watch w = { 0 };
	struct loop *loop;
	struct admin *admin;
	pthread_t thread;
	json_t *json;
	char refused[64];

	assert_int_equal(loop_create(&loop), 0);
	assert_int_equal(admin_start(&admin, loop, "127.0.0.1:0", &src), 0);
	c->port = (uint16_t)admin_port(admin);
	assert_true(c->port > 0);
	snprintf(c->addr, sizeof(c->addr), "127.0.0.1:%u", c->port);

	w.loop = loop;
	w.client = c;
	loop_timer_init(&w.timer, on_watch, &w);
	loop_timer_start(loop, &w.timer, 20);
	assert_int_equal(pthread_create(&thread, NULL, client_main, c), 0);
	assert_int_equal(loop_run(loop), 0);
	pthread_join(thread, NULL);
	assert_true(atomic_load(&c->done));
	assert_int_equal(c->ncalls, sizeof(script) / sizeof(script[0]));
	for (unsigned i = 0; i < c->ncalls; i++) {
		if (c->calls[i].err)
			fail_msg("%s %s: %s", c->calls[i].method,
				 c->calls[i].path, strerror(c->calls[i].err));
		assert_non_null(c->calls[i].body);
	}

	/* GET /api/registrations */
	assert_int_equal(c->calls[0].status, 200);
	json = json_loads(c->calls[0].body, 0, NULL);
	assert_non_null(json);
	assert_true(json_is_array(json));
	assert_string_equal(json_string_value(json_object_get(
		json_array_get(json, 0), "aor")), "alice@example.com");
	json_decref(json);
	/* GET /metrics */
	assert_int_equal(c->calls[1].status, 200);
	assert_non_null(strstr(c->calls[1].body, "pinhole_registrations 1\n"));
	/* unknown path */
	assert_int_equal(c->calls[2].status, 404);
	json = json_loads(c->calls[2].body, 0, NULL);
	assert_string_equal(json_string_value(json_object_get(json, "error")),
			    "not found");
	json_decref(json);
	/* loglevel */
	assert_int_equal(c->calls[3].status, 200);
	assert_string_equal(d.level, "debug");
	assert_int_equal(c->calls[4].status, 400);
	assert_int_equal(c->calls[5].status, 405);
	assert_int_equal(c->calls[12].status, 400);
	/* NULL callback, failing callback */
	assert_int_equal(c->calls[6].status, 404);
	assert_int_equal(c->calls[7].status, 500);
	/* reload */
	assert_int_equal(c->calls[8].status, 200);
	assert_int_equal(d.reloads, 1);
	assert_non_null(strstr(c->calls[8].body, "config reloaded"));
	/* index page */
	assert_int_equal(c->calls[9].status, 200);
	assert_non_null(strstr(c->calls[9].body, "pinhole"));
	assert_non_null(strstr(c->calls[9].body, "/api/registrations"));
	/* wrong method */
	assert_int_equal(c->calls[10].status, 405);
	/* status */
	assert_int_equal(c->calls[11].status, 200);
	assert_non_null(strstr(c->calls[11].body, "\"version\""));
	/* oversized body refused before it is read */
	assert_non_null(strstr(c->big_body_reply, " 413 "));

	for (unsigned i = 0; i < c->ncalls; i++)
		free(c->calls[i].body);
	snprintf(refused, sizeof(refused), "%s", c->addr);
	free(c);
	admin_stop(admin);
	loop_destroy(loop);

	/* Nobody listens any more. */
	{
		int status = 0;
		char *body = (char *)"x";

		assert_int_equal(admin_client_request(refused, "GET",
						      "/api/status", 1000,
						      &status, &body),
				 ECONNREFUSED);
		assert_null(body);
	}
}

static void test_bad_listen(void **state)
{
	struct admin_sources src = { 0 };
	struct loop *loop;
	struct admin *admin = NULL;

	assert_int_equal(loop_create(&loop), 0);
	assert_int_equal(admin_start(&admin, loop, "127.0.0.1", &src), EINVAL);
	assert_int_equal(admin_start(&admin, loop, "localhost:80", &src),
			 EINVAL);
	assert_int_equal(admin_start(&admin, loop, "[::1:80", &src), EINVAL);
	assert_int_equal(admin_start(&admin, loop, "127.0.0.1:70000", &src),
			 EINVAL);
	assert_null(admin);
	loop_destroy(loop);
}

static void test_client_errors(void **state)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	char addr[64], *body = NULL;
	int status = 0, fd;

	assert_int_equal(admin_client_request("nonsense", "GET", "/", 100,
					      &status, &body), EINVAL);
	assert_int_equal(admin_client_request("127.0.0.1:1", "GET", "no-slash",
					      100, &status, &body), EINVAL);
	assert_int_equal(admin_client_request("127.0.0.1:1", "GET",
					      "/a b", 100, &status, &body),
			 EINVAL);

	/* A listener that accepts (in the kernel) but never answers. */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(fd, 4), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", ntohs(sin.sin_port));
	assert_int_equal(admin_client_request(addr, "GET", "/api/status", 200,
					      &status, &body), ETIMEDOUT);
	assert_null(body);
	close(fd);
}

static void test_text_printf(void **state)
{
	struct admin_text t = { 0 };
	char line[64];

	for (int i = 0; i < 1000; i++)
		admin_text_printf(&t, "metric_%d %d\n", i, i * 2);
	assert_non_null(t.buf);
	assert_true(t.len < t.cap);
	assert_int_equal(strlen(t.buf), t.len);
	assert_memory_equal(t.buf, "metric_0 0\nmetric_1 2\n", 22);
	snprintf(line, sizeof(line), "metric_999 1998\n");
	assert_string_equal(t.buf + t.len - strlen(line), line);
	admin_text_printf(&t, "%s", "");
	assert_int_equal(strlen(t.buf), t.len);
	free(t.buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_api),
		cmocka_unit_test(test_bad_listen),
		cmocka_unit_test(test_client_errors),
		cmocka_unit_test(test_text_printf),
	};

	log_set_level(LOG_WARNING);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
