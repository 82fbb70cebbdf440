/*
 * selftest.c - can the outside reach us? The classic "registers but cannot
 * be called" and "one-way audio" causes on the server side are a missing
 * port forward on the local NAT (or a firewall) for the SIP port or the
 * RTP range. A STUN server that supports RFC 5780 (two addresses) can
 * answer a Binding request with CHANGE-REQUEST from its *other* address
 * and port: that answer reaches us only if anyone on the internet could.
 *
 *   1. Binding from the SIP socket: the server must say OTHER-ADDRESS
 *      (else it cannot do the test, and we say so).
 *   2. Binding with CHANGE-REQUEST (IP and port) from the SIP socket.
 *   3. The same from a free port of the RTP range (bound for the test).
 * Each step: 3 tries (0.5, 1, 2 s). Run on demand (POST /api/selftest,
 * `pinhole doctor`); a failure raises an alarm with the port forward to
 * add. Answers on the SIP socket come here through public.c's STUN hook.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alarm/alarm.h"
#include "conf/conf.h"
#include "core/loop.h"
#include "log/log.h"
#include "nat/nat.h"
#include "nat/stun.h"
#include "util/addr.h"

enum step { ST_IDLE, ST_BASIC, ST_SIP, ST_RTP, ST_DONE };
enum verdict { V_UNTESTED, V_YES, V_NO };

static struct {
	struct loop *loop;
	struct transport *tp;
	const struct conf *conf;
	struct loop_timer timer;
	enum step step;
	unsigned tries;
	uint8_t txid[12];
	struct sockaddr_storage server, other, sip_mapped, rtp_mapped;
	int rtp_fd;
	uint16_t rtp_port;
	bool rfc5780;
	enum verdict sip, rtp;
	char note[256];
	int64_t started, finished;
} S = { .rtp_fd = -1 };

static const unsigned gaps_ms[] = { 500, 1000, 2000 };

static void next_step(void);

static void send_probe(void)
{
	uint8_t req[28];
	size_t n = stun_binding_request(req, S.txid, S.step == ST_BASIC ? 0 :
					STUN_CHANGE_IP | STUN_CHANGE_PORT);

	if (S.step == ST_RTP)
		(void)sendto(S.rtp_fd, req, n, MSG_NOSIGNAL,
			     (struct sockaddr *)&S.server, addr_len(&S.server));
	else
		tp_send_raw_udp(S.tp, &S.server, req, n);
}

static void start_step(enum step step)
{
	S.step = step;
	S.tries = 0;
	stun_new_txid(S.txid);
	send_probe();
	loop_timer_start(S.loop, &S.timer, gaps_ms[S.tries++]);
}

static void close_rtp(void)
{
	if (S.rtp_fd >= 0) {
		loop_fd_del(S.loop, S.rtp_fd);
		close(S.rtp_fd);
		S.rtp_fd = -1;
	}
}

static void finish(const char *note)
{
	char a[ADDR_STRLEN];

	loop_timer_cancel(S.loop, &S.timer);
	close_rtp();
	S.step = ST_DONE;
	S.finished = (int64_t)time(NULL);
	if (note)
		snprintf(S.note, sizeof(S.note), "%s", note);
	addr_str(&S.server, a, sizeof(a));
	log_notice("nat", "reachability self-test via %s: sip=%s rtp=%s%s%s", a,
		   S.sip == V_YES ? "reachable" : S.sip == V_NO ?
		   "unreachable" : "untested",
		   S.rtp == V_YES ? "reachable" : S.rtp == V_NO ?
		   "unreachable" : "untested", S.note[0] ? " note=" : "",
		   S.note);
	if (S.sip == V_NO)
		alarm_raise(ALARM_MAJOR, "sip-port-unreachable", "SIP port",
			    "the STUN server's answer from its other address did "
			    "not reach SIP port %u/udp: phones outside cannot "
			    "send us requests unless they keep a pinhole open. "
			    "%s", S.conf->port, S.conf->behind_nat ?
			    "Forward UDP on the local NAT's public address to "
			    "this server's SIP port (and open it in the "
			    "firewall)" : "Open the SIP port in the firewall in "
			    "front of this server");
	if (S.rtp == V_NO)
		alarm_raise(ALARM_MAJOR, "rtp-range-unreachable", "RTP range",
			    "the STUN server's answer from its other address did "
			    "not reach RTP port %u/udp: media from remote phones "
			    "will not reach the relay (one-way or no audio). "
			    "%s UDP %u-%u to this server", S.rtp_port,
			    S.conf->behind_nat ? "Forward on the local NAT" :
			    "Open in the firewall", S.conf->rtp_port_min,
			    S.conf->rtp_port_max);
}

static void on_answer(const uint8_t *buf, size_t len)
{
	struct sockaddr_storage mapped, other;

	if (!stun_parse_response(buf, len, S.txid, &mapped, &other))
		return;
	switch (S.step) {
	case ST_BASIC:
		S.rfc5780 = other.ss_family == AF_INET;
		S.sip_mapped = mapped;
		S.other = other;
		if (!S.rfc5780) {
			finish("the STUN server does not support RFC 5780 (no "
			       "OTHER-ADDRESS): reachability not tested; use one "
			       "with two addresses (e.g. coturn with two "
			       "listening IPs)");
			return;
		}
		start_step(ST_SIP);
		return;
	case ST_SIP:
		S.sip = V_YES;
		next_step();
		return;
	case ST_RTP:
		S.rtp = V_YES;
		S.rtp_mapped = mapped;
		finish(NULL);
		return;
	default:
		return;
	}
}

bool nat_selftest_stun(const uint8_t *buf, size_t len,
		       const struct sockaddr_storage *from)
{
	(void)from;
	if ((S.step != ST_BASIC && S.step != ST_SIP) || len < 20 ||
	    memcmp(buf + 8, S.txid, 12) != 0)
		return false;
	on_answer(buf, len);
	return true;
}

static void on_rtp_read(int fd, int events, void *arg)
{
	uint8_t buf[1024];
	ssize_t n;

	(void)events;
	(void)arg;
	while ((n = recv(fd, buf, sizeof(buf), 0)) > 0 && S.step == ST_RTP)
		on_answer(buf, (size_t)n);
}

/* A free port of the RTP range on the relay's address: from the top, so
 * the relay (which searches from its cursor) rarely wants it meanwhile. */
static int open_rtp(void)
{
	struct sockaddr_storage a;
	const char *ip = S.conf->relay_address[0] ? S.conf->relay_address :
			 S.conf->listen;

	for (unsigned p = S.conf->rtp_port_max; p >= S.conf->rtp_port_min &&
	     p > S.conf->rtp_port_max - 64u; p--) {
		int fd;
		if (addr_parse(&a, ip, 0))
			memset(&a, 0, sizeof(a)), a.ss_family = AF_INET;
		addr_set_port(&a, (uint16_t)p);
		fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
			    0);
		if (fd < 0)
			return -1;
		if (bind(fd, (struct sockaddr *)&a, addr_len(&a)) == 0) {
			S.rtp_port = (uint16_t)p;
			return fd;
		}
		close(fd);
	}
	return -1;
}

static void next_step(void)
{
	S.rtp_fd = open_rtp();
	if (S.rtp_fd < 0 ||
	    loop_fd_set(S.loop, S.rtp_fd, LOOP_READ, on_rtp_read, NULL)) {
		finish("no free port at the top of the RTP range to test it "
		       "from");
		return;
	}
	start_step(ST_RTP);
}

static void on_timer(void *arg)
{
	(void)arg;
	if (S.tries < sizeof(gaps_ms) / sizeof(gaps_ms[0])) {
		send_probe();
		loop_timer_start(S.loop, &S.timer, gaps_ms[S.tries++]);
		return;
	}
	switch (S.step) {
	case ST_BASIC:
		finish("no answer from the STUN server: nothing tested");
		return;
	case ST_SIP:
		S.sip = V_NO;
		next_step();
		return;
	case ST_RTP:
		S.rtp = V_NO;
		finish(NULL);
		return;
	default:
		return;
	}
}

static int resolve(const char *hostport, struct sockaddr_storage *out)
{
	char host[128];
	const char *port = "3478";
	char *colon;
	struct addrinfo hints = { .ai_family = AF_INET,
				  .ai_socktype = SOCK_DGRAM }, *res = NULL;

	snprintf(host, sizeof(host), "%s", hostport);
	if ((colon = strrchr(host, ':'))) {
		*colon = '\0';
		port = colon + 1;
	}
	if (getaddrinfo(host, port, &hints, &res) || !res)
		return EHOSTUNREACH;
	memset(out, 0, sizeof(*out));
	memcpy(out, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	return 0;
}

int nat_selftest_start(void)
{
	if (S.step != ST_IDLE && S.step != ST_DONE)
		return EBUSY;
	memset(&S.sip_mapped, 0, sizeof(S.sip_mapped));
	memset(&S.rtp_mapped, 0, sizeof(S.rtp_mapped));
	memset(&S.other, 0, sizeof(S.other));
	S.sip = S.rtp = V_UNTESTED;
	S.rfc5780 = false;
	S.note[0] = '\0';
	S.started = (int64_t)time(NULL);
	S.finished = 0;
	if (!S.conf->stun_server[0]) {
		S.step = ST_DONE;
		S.finished = S.started;
		snprintf(S.note, sizeof(S.note), "no [nat] stun_server: "
			 "reachability from outside not tested");
		return 0;
	}
	if (resolve(S.conf->stun_server, &S.server)) {
		S.step = ST_DONE;
		S.finished = S.started;
		snprintf(S.note, sizeof(S.note), "cannot resolve STUN server "
			 "%s", S.conf->stun_server);
		return 0;
	}
	start_step(ST_BASIC);
	return 0;
}

static json_t *verdict_json(enum verdict v)
{
	return v == V_UNTESTED ? json_null() : json_boolean(v == V_YES);
}

json_t *nat_selftest_json(void)
{
	static const char *const steps[] = { "idle", "running", "running",
					     "running", "done" };
	char a[ADDR_STRLEN];
	json_t *o = json_object();

	json_object_set_new(o, "state", json_string(steps[S.step]));
	json_object_set_new(o, "stun_server", json_string(S.conf->stun_server));
	json_object_set_new(o, "rfc5780", json_boolean(S.rfc5780));
	if (S.other.ss_family)
		json_object_set_new(o, "stun_other_address",
				    json_string(addr_str(&S.other, a, sizeof(a))));
	json_object_set_new(o, "sip_port", json_integer(S.conf->port));
	json_object_set_new(o, "sip_reachable", verdict_json(S.sip));
	if (S.sip_mapped.ss_family)
		json_object_set_new(o, "sip_mapped", json_string(
			addr_str(&S.sip_mapped, a, sizeof(a))));
	json_object_set_new(o, "rtp_port", json_integer(S.rtp_port));
	json_object_set_new(o, "rtp_reachable", verdict_json(S.rtp));
	json_object_set_new(o, "note", json_string(S.note));
	json_object_set_new(o, "started", json_integer(S.started));
	json_object_set_new(o, "finished", json_integer(S.finished));
	return o;
}

void nat_selftest_init(struct loop *loop, struct transport *tp,
		       const struct conf *conf)
{
	S.loop = loop;
	S.tp = tp;
	S.conf = conf;
	S.rtp_fd = -1;
	loop_timer_init(&S.timer, on_timer, NULL);
}

void nat_selftest_set_conf(const struct conf *conf)
{
	S.conf = conf;
}

void nat_selftest_stop(void)
{
	loop_timer_cancel(S.loop, &S.timer);
	close_rtp();
	S.step = ST_IDLE;
}
