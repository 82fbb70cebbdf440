/*
 * proxy.h - the stateful proxy core: validates requests, answers what is
 * ours (OPTIONS, REGISTER via the registrar, errors), authenticates users,
 * routes by Route set, location service and [routes], forks in parallel,
 * Record-Routes, and selects the best response. Owns routing policy.
 */
#ifndef PINHOLE_PROXY_H
#define PINHOLE_PROXY_H

#include <jansson.h>
#include <stdint.h>

#include "transport/transport.h"

struct loop;
struct conf;
struct store;

struct proxy_stats {
	uint64_t requests[16];	/* by enum sip_method */
	uint64_t responses_by_class[7];	/* 1xx..6xx sent upstream */
	uint64_t bad_requests, dropped, loops, auth_challenges;
	uint64_t auth_failures, forwarded, stateless_acks, relay_denied;
};

int proxy_init(struct loop *loop, struct transport *tp,
	       const struct conf *conf, struct store *store);
void proxy_close(void);
/* Swap in a new config (reload); pointers must stay valid until the next
 * call. */
void proxy_set_conf(const struct conf *conf);

/* The transport's receive callback. */
void proxy_recv(void *arg, struct sip_msg *msg, int parse_err,
		const struct tp_flow *flow,
		const struct sockaddr_storage *local);

const struct proxy_stats *proxy_stats(void);
json_t *proxy_calls_json(void);

#endif
