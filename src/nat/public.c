/*
 * public.c - the near-end NAT: which address pinhole advertises to the
 * outside when it sits behind its own NAT (`[nat] behind_nat = yes`).
 *
 * The address is `public_ip` when configured, else learned with STUN
 * (RFC 5389 Binding) sent from the SIP UDP socket itself, so the mapping
 * the STUN server sees is the one the local NAT uses for SIP. It is
 * refreshed every `stun_refresh` seconds; a change is followed at once
 * (new calls and registrations advertise the new address; calls in
 * progress keep the old one in their Record-Route and SDP until their
 * next re-INVITE, which is what the far ends stored) and raises an alarm.
 * While no address is known, pinhole refuses to talk to the outside
 * rather than advertise a private address (sipXecs fell back to its own
 * address silently).
 *
 * STUN server names are resolved with getaddrinfo at each refresh: a
 * blocking call, but once a minute, not per message.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alarm/alarm.h"
#include "conf/conf.h"
#include "core/loop.h"
#include "log/log.h"
#include "nat/nat.h"
#include "nat/stun.h"
#include "util/addr.h"

#define STUN_TRIES 4

static struct {
	struct loop *loop;
	struct transport *tp;
	const struct conf *conf;
	struct sockaddr_storage addr;	/* public address, port 0 */
	bool known;
	bool from_stun;
	uint16_t mapped_port;
	uint8_t txid[12];
	bool waiting;
	unsigned tries;
	struct sockaddr_storage server;
	struct loop_timer timer;
	uint64_t requests, responses, failures, changes;
} U;

static void set_static(void)
{
	U.known = false;
	U.from_stun = false;
	if (U.conf->behind_nat && U.conf->public_ip[0] &&
	    addr_parse(&U.addr, U.conf->public_ip, 0) == 0)
		U.known = true;
}

bool nat_public_known(void)
{
	return U.known;
}

const struct sockaddr_storage *nat_public_addr(void)
{
	return U.known ? &U.addr : NULL;
}

bool nat_advertised(const struct sockaddr_storage *dest,
		    const struct sockaddr_storage *local,
		    struct sockaddr_storage *out)
{
	*out = *local;
	if (!U.conf->behind_nat || conf_is_intranet_addr(U.conf, dest))
		return true;
	if (!U.known)
		return false;
	*out = U.addr;
	return true;
}

static int resolve_server(void)
{
	char host[128];
	const char *port = "3478";
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM };
	struct addrinfo *res = NULL;
	char *colon;

	snprintf(host, sizeof(host), "%s", U.conf->stun_server);
	if (host[0] == '[') {
		char *end = strchr(host, ']');
		if (!end)
			return EINVAL;
		*end = '\0';
		if (end[1] == ':')
			port = end + 2;
		memmove(host, host + 1, strlen(host));
	} else if ((colon = strchr(host, ':')) && !strchr(colon + 1, ':')) {
		*colon = '\0';
		port = colon + 1;
	}
	if (getaddrinfo(host, port, &hints, &res) || !res)
		return EHOSTUNREACH;
	memset(&U.server, 0, sizeof(U.server));
	memcpy(&U.server, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	return 0;
}

static void send_request(void)
{
	uint8_t req[28];
	size_t n = stun_binding_request(req, U.txid, 0);

	tp_send_raw_udp(U.tp, &U.server, req, n);
	U.requests++;
}

static void start_query(void)
{
	char s[ADDR_STRLEN];

	if (resolve_server()) {
		U.failures++;
		alarm_raise(ALARM_MAJOR, "stun-failed", U.conf->stun_server,
			    "cannot resolve STUN server %s: the public address "
			    "cannot be learned; check [nat] stun_server or set "
			    "public_ip", U.conf->stun_server);
		loop_timer_start(U.loop, &U.timer, (uint64_t)U.conf->stun_refresh * 1000);
		return;
	}
	stun_new_txid(U.txid);
	U.waiting = true;
	U.tries = 0;
	log_debug("nat", "STUN binding request to %s",
		  addr_str(&U.server, s, sizeof(s)));
	send_request();
	loop_timer_start(U.loop, &U.timer, 500);
}

static void on_timer(void *arg)
{
	(void)arg;
	if (!U.conf->behind_nat || U.conf->public_ip[0] || !U.conf->stun_server[0])
		return;
	if (!U.waiting) {
		start_query();
		return;
	}
	if (++U.tries < STUN_TRIES) {
		send_request();
		loop_timer_start(U.loop, &U.timer, 500u << U.tries);
		return;
	}
	U.waiting = false;
	U.failures++;
	alarm_raise(ALARM_MAJOR, "stun-failed", U.conf->stun_server,
		    "no answer from STUN server %s after %u tries%s; check that "
		    "it is reachable from this server through the local NAT, "
		    "or set [nat] public_ip",
		    U.conf->stun_server, STUN_TRIES,
		    U.known ? " (still advertising the last address learned)"
			    : ": remote phones are refused until an address is known");
	/* retry sooner while nothing is known */
	loop_timer_start(U.loop, &U.timer,
			 U.known ? (uint64_t)U.conf->stun_refresh * 1000 : 5000);
}

static void on_stun(void *arg, const uint8_t *buf, size_t len,
		    const struct sockaddr_storage *from)
{
	struct sockaddr_storage mapped, other;

	(void)arg;
	if (nat_selftest_stun(buf, len, from))
		return;		/* the reachability self-test's */
	if (!U.waiting || !stun_parse_response(buf, len, U.txid, &mapped,
					       &other))
		return;		/* not our Binding success response */
	U.mapped_port = addr_port(&mapped);
	addr_set_port(&mapped, 0);
	U.waiting = false;
	U.responses++;
	if (!U.known || !addr_ip_eq(&mapped, &U.addr)) {
		char old[ADDR_STRLEN], now[ADDR_STRLEN];
		addr_ip_str(&U.addr, old, sizeof(old));
		addr_ip_str(&mapped, now, sizeof(now));
		if (U.known) {
			U.changes++;
			alarm_raise(ALARM_MAJOR, "public-address-changed", now,
				    "the local NAT's public address changed from %s "
				    "to %s (STUN): new calls and registrations use "
				    "%s; calls in progress keep %s until re-INVITE; "
				    "phones registered through the old address "
				    "re-register at their next refresh",
				    old, now, now, old);
		} else {
			log_notice("nat", "public address learned by STUN: %s "
				   "(mapped port %u)", now, U.mapped_port);
		}
		U.addr = mapped;
		U.known = true;
		U.from_stun = true;
	}
	if (U.mapped_port != U.conf->port)
		log_warn("nat", "STUN sees the SIP socket on port %u, not %u: "
			 "the local NAT rewrites the source port; the port "
			 "forward for %u must exist", U.mapped_port,
			 U.conf->port, U.conf->port);
	loop_timer_start(U.loop, &U.timer, (uint64_t)U.conf->stun_refresh * 1000);
}

void nat_public_set_conf(const struct conf *conf)
{
	bool was_stun = U.from_stun;
	struct sockaddr_storage learned = U.addr;

	U.conf = conf;
	set_static();
	if (!U.known && was_stun && conf->behind_nat && conf->stun_server[0]) {
		U.addr = learned;	/* keep what STUN said until it says else */
		U.known = true;
		U.from_stun = true;
	}
	loop_timer_cancel(U.loop, &U.timer);
	U.waiting = false;
	if (conf->behind_nat && !conf->public_ip[0] && conf->stun_server[0])
		loop_timer_start(U.loop, &U.timer, 0);
}

void nat_public_start(struct loop *loop, struct transport *tp,
		      const struct conf *conf)
{
	U.loop = loop;
	U.tp = tp;
	loop_timer_init(&U.timer, on_timer, NULL);
	tp_set_stun_handler(tp, on_stun, NULL);
	nat_public_set_conf(conf);
	if (conf->behind_nat && !U.known && !conf->stun_server[0])
		log_err("nat", "behind_nat = yes without public_ip or "
			"stun_server: remote phones will be refused");
}

void nat_public_stop(void)
{
	loop_timer_cancel(U.loop, &U.timer);
}

json_t *nat_public_json(void)
{
	json_t *o = json_object();
	char a[ADDR_STRLEN];

	json_object_set_new(o, "behind_nat", json_boolean(U.conf->behind_nat));
	json_object_set_new(o, "public_ip", U.known ?
			    json_string(addr_ip_str(&U.addr, a, sizeof(a))) : json_null());
	json_object_set_new(o, "source", json_string(!U.known ? "unknown" :
			    U.from_stun ? "stun" : "config"));
	json_object_set_new(o, "stun_requests", json_integer((json_int_t)U.requests));
	json_object_set_new(o, "stun_responses", json_integer((json_int_t)U.responses));
	json_object_set_new(o, "stun_failures", json_integer((json_int_t)U.failures));
	json_object_set_new(o, "address_changes", json_integer((json_int_t)U.changes));
	if (U.from_stun)
		json_object_set_new(o, "stun_mapped_port", json_integer(U.mapped_port));
	return o;
}
