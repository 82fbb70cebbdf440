/*
 * keepalive.c - keeps the pinholes of NAT'ed phones open and notices when
 * one closes. Every binding whose verdict is behind-nat or nonat-suspect
 * gets, every keepalive_interval seconds, a ping from the very socket it
 * registered to (so the NAT sees the same 5-tuple): an OPTIONS on UDP
 * (any answer proves the way in still works), a CRLFCRLF on TCP (RFC 5626).
 * Three unanswered OPTIONS in a row mark the binding unreachable; an
 * answer or a new REGISTER clears it.
 *
 * Cost: one pass over the bindings per second. With 100k bindings that is
 * 100k cheap checks a second; a timer wheel keyed by ka_next_ms is the
 * optimisation to make when a profile says so.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alarm/alarm.h"
#include "conf/conf.h"
#include "core/loop.h"
#include "log/log.h"
#include "nat/nat.h"
#include "registrar/registrar.h"
#include "util/addr.h"

#define KA_PREFIX "z9hG4bKphka."
#define KA_MAX_FAILURES 3

static struct {
	struct loop *loop;
	struct transport *tp;
	const struct conf *conf;
	struct loop_timer timer;
	uint64_t sent, answered, failures;
} K;

size_t nat_options_build(char *buf, size_t cap, const char *uri,
			 const char *host, unsigned port, const char *branch,
			 const char *tag, const char *domain)
{
	int n = snprintf(buf, cap,
			 "OPTIONS %s SIP/2.0\r\n"
			 "Via: SIP/2.0/UDP %s:%u;branch=%s;rport\r\n"
			 "From: <sip:pinhole@%s>;tag=%s\r\n"
			 "To: <%s>\r\n"
			 "Call-ID: %s@pinhole\r\n"
			 "CSeq: 1 OPTIONS\r\n"
			 "Max-Forwards: 70\r\n"
			 "Content-Length: 0\r\n\r\n",
			 uri, host, port, branch, domain, tag, uri, tag);

	return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

static void ping(struct reg_binding *b, uint64_t now)
{
	char msg[1536], host[ADDR_STRLEN], branch[64], tag[40];
	struct tp_flow flow = b->flow;
	size_t n;

	if (flow.proto == TP_TCP) {
		if (!tp_conn_alive(K.tp, flow.conn))
			return;	/* nothing to keep open; the phone reconnects */
		tp_send(K.tp, &flow, "\r\n\r\n", 4);
		K.sent++;
		return;
	}
	{
		struct sockaddr_storage adv;
		if (!nat_advertised(&b->flow.remote, &b->local, &adv))
			return;
		addr_host_str(&adv, host, sizeof(host));
	}
	snprintf(branch, sizeof(branch), KA_PREFIX "%x.%llx", b->id,
		 (unsigned long long)now);
	snprintf(tag, sizeof(tag), "ka%x-%llx", b->id, (unsigned long long)now);
	n = nat_options_build(msg, sizeof(msg), b->contact, host, K.conf->port,
			      branch, tag, K.conf->domain);
	if (!n)
		return;
	tp_send(K.tp, &flow, msg, n);
	b->ka_sent_ms = now;
	K.sent++;
}

static void check(struct reg_binding *b, void *arg)
{
	uint64_t now = *(uint64_t *)arg;
	uint64_t interval = (uint64_t)K.conf->keepalive_interval * 1000;

	if (strcmp(b->verdict, "behind-nat") != 0 &&
	    strcmp(b->verdict, "nonat-suspect") != 0)
		return;
	if (!b->ka_next_ms) {
		b->ka_next_ms = now + interval;
		return;
	}
	/* An unanswered ping counts as failed when the next one is due. */
	if (b->ka_sent_ms && now >= b->ka_next_ms) {
		b->ka_sent_ms = 0;
		b->ka_failures++;
		K.failures++;
		if (b->ka_failures >= KA_MAX_FAILURES && !b->unreachable) {
			char r[ADDR_STRLEN], why[160], hint[240] = "";
			b->unreachable = true;
			if (!strcmp(nat_behaviour(&b->flow.remote, why,
						  sizeof(why)), "symmetric"))
				snprintf(hint, sizeof(hint), " Its NAT is "
					 "symmetric (%s): it drops anything "
					 "but answers to what the phone sent.",
					 why);
			log_warn("nat", "keepalives unanswered aor=%s contact=%s "
				 "public=%s failures=%u: the NAT pinhole toward "
				 "the phone seems closed",
				 b->aor->aor, b->contact,
				 addr_str(&b->flow.remote, r, sizeof(r)),
				 b->ka_failures);
			alarm_raise(ALARM_MINOR, "keepalive-unanswered", b->aor->aor,
				    "%u keepalives to %s (public %s) went "
				    "unanswered: calls to this phone will fail. "
				    "Its NAT closed the pinhole or the phone is "
				    "gone; if it is still on, lower [nat] "
				    "keepalive_interval (now %us) or make the "
				    "phone register over TCP.%s",
				    b->ka_failures, b->contact, r,
				    K.conf->keepalive_interval, hint);
		}
	}
	if (now >= b->ka_next_ms) {
		ping(b, now);
		b->ka_next_ms = now + interval;
	}
}

static void tick(void *arg)
{
	uint64_t now = loop_now();

	(void)arg;
	if (K.conf->nat_enabled && K.conf->keepalive_interval)
		reg_foreach(check, &now);
	loop_timer_start(K.loop, &K.timer, 1000);
}

bool nat_keepalive_response(const struct sip_msg *msg)
{
	const size_t plen = sizeof(KA_PREFIX) - 1;
	struct pl br = msg->via.branch;
	char idbuf[12];
	const char *dot;
	struct reg_binding *b;

	if (br.l <= plen || memcmp(br.p, KA_PREFIX, plen) != 0)
		return false;
	br.p += plen;
	br.l -= plen;
	dot = pl_chr(br, '.');
	if (!dot || dot == br.p || dot - br.p > 8)
		return true;
	pl_strcpy(idbuf, sizeof(idbuf), (struct pl){ br.p, (size_t)(dot - br.p) });
	b = reg_find_id((uint32_t)strtoul(idbuf, NULL, 16));
	if (!b)
		return true;
	if (b->unreachable)
		log_notice("nat", "keepalive answered again aor=%s contact=%s",
			   b->aor->aor, b->contact);
	b->ka_sent_ms = 0;
	b->ka_failures = 0;
	b->unreachable = false;
	b->ka_answered = (int64_t)time(NULL);
	K.answered++;
	return true;
}

void nat_keepalive_stats(uint64_t *sent, uint64_t *answered, uint64_t *failures)
{
	*sent = K.sent;
	*answered = K.answered;
	*failures = K.failures;
}

void nat_keepalive_start(struct loop *loop, struct transport *tp,
			 const struct conf *conf)
{
	K.loop = loop;
	K.tp = tp;
	K.conf = conf;
	loop_timer_init(&K.timer, tick, NULL);
	loop_timer_start(loop, &K.timer, 1000);
}

void nat_keepalive_set_conf(const struct conf *conf)
{
	K.conf = conf;
}

void nat_keepalive_stop(void)
{
	loop_timer_cancel(K.loop, &K.timer);
}
