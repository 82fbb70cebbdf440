/*
 * admin.h - the admin HTTP server (libmicrohttpd driven from the signalling
 * loop, so handlers read daemon state without locks) and the tiny HTTP
 * client the CLI uses to query a running daemon. Owns no daemon state:
 * everything it shows comes from the sources' callbacks.
 */
#ifndef PINHOLE_ADMIN_H
#define PINHOLE_ADMIN_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct loop;
struct admin;

/* Growable text buffer for /metrics. */
struct admin_text {
	char *buf;
	size_t len, cap;
};
void admin_text_printf(struct admin_text *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* What the daemon exposes. Each JSON callback returns a new reference
 * (json_t the admin module then owns and frees), NULL = 500. Any callback
 * may be NULL (endpoint answers 404). */
struct admin_sources {
	json_t *(*registrations)(void *arg);	/* GET /api/registrations */
	json_t *(*calls)(void *arg);		/* GET /api/calls */
	json_t *(*alarms)(void *arg);		/* GET /api/alarms */
	json_t *(*status)(void *arg);		/* GET /api/status */
	json_t *(*ladders)(void *arg);		/* GET /api/ladders */
	/* GET /api/calls/ladder?call_id=X ; NULL = no ladder for X (404) */
	json_t *(*ladder)(const char *call_id, void *arg);
	void (*metrics)(struct admin_text *out, void *arg);	/* GET /metrics */
	/* POST /api/loglevel?level=debug ; returns 0 or EINVAL */
	int (*set_loglevel)(const char *level, void *arg);
	/* POST /api/reload ; returns 0 or an errno, message filled */
	int (*reload)(char *msg, size_t cap, void *arg);
	/* GET /api/selftest: state and results; POST starts a run (the
	 * callback's start is true) and answers the state */
	json_t *(*selftest)(bool start, void *arg);
	void *arg;
};

/* listen is "ip:port" (IPv4 or [IPv6]:port). */
int admin_start(struct admin **adminp, struct loop *loop, const char *listen,
		const struct admin_sources *sources);
void admin_stop(struct admin *admin);
/* The bound TCP port (useful with port 0: the kernel picks one). */
unsigned admin_port(const struct admin *admin);

/* Client: HTTP/1.0 request to "ip:port", path such as "/api/registrations".
 * method "GET" or "POST". On success *body is malloc'd NUL-terminated text
 * and *status the HTTP status. Returns 0 or an errno (ECONNREFUSED when no
 * daemon listens). Times out after timeout_ms. */
int admin_client_request(const char *addr, const char *method,
			 const char *path, unsigned timeout_ms,
			 int *status, char **body);

#endif
