/*
 * nat.c - far-end NAT traversal: classification, Contact fixing, relayed
 * media sessions (see nat.h).
 *
 * Classification compares the source address *and port* of a message with
 * what the message claims (top Via sent-by, Contact): a phone that says
 * 192.168.1.20:5060 but arrives from 198.51.100.7:40112 is behind a NAT.
 * A message that claims exactly its source may still come through a SIP
 * ALG (which rewrites Via, Contact and SDP c= to the mapped address) or
 * from a phone that learned its mapping with STUN; both leave private
 * addresses elsewhere (SDP o=, Call-ID, other headers). Such a sender is
 * "suspect" and treated like a NAT'ed one: its media is relayed.
 *
 * Media sessions: one per dialog (keyed by Call-ID), created when a relay
 * is needed for the initial INVITE, holding one relay stream per m= line.
 * Side A is the caller (the From tag of the initial INVITE), side B the
 * callee. SDP coming from side X sets the relay's expectation for X and is
 * rewritten so that the other side sends to our port facing it. Forked
 * branches share the B side; the latch follows the branch that answers.
 * A session ends with the dialog (BYE, a final failure), or when no
 * packet has crossed it for idle_timeout.
 */
#include "nat/nat.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alarm/alarm.h"
#include "conf/conf.h"
#include "core/loop.h"
#include "log/log.h"
#include "relay/relay.h"
#include "sdp/sdp.h"
#include "util/addr.h"
#include "util/hash.h"

#define SWEEP_MS 5000
#define MAX_SESSIONS 50000

struct nat_stream {
	bool allocated;
	uint32_t relay_id;
	uint16_t port[2];	/* our RTP port on side A, side B */
	struct sockaddr_storage said[2];	/* SDP address of A, B as
						   written (private too) */
};

struct media_session {
	struct hash_node node;
	char call_id[256];
	char a_tag[128];
	unsigned nstreams;
	struct nat_stream streams[SDP_MAX_MEDIA];
	int64_t created;
	bool answered;		/* a 2xx went through */
	int64_t answered_at;
	bool media_checked;	/* one-way / no-media diagnosis done */
	struct nat_party party[2];	/* A (caller) and B (callee) as seen */
};

static void diagnose_media(struct media_session *s, int64_t now);
static void check_ports_low(void);

static struct {
	struct loop *loop;
	struct transport *tp;
	struct relay *relay;
	const struct conf *conf;
	struct hash sessions;
	unsigned count;
	struct loop_timer sweep;
	uint64_t no_ports;
} N;

const char *nat_verdict_name(enum nat_verdict v)
{
	static const char *const names[] = { "local", "public", "behind-nat",
					     "nonat-suspect" };
	return v <= NAT_SUSPECT ? names[v] : "?";
}

enum nat_verdict nat_verdict_from_name(const char *name)
{
	if (strcmp(name, "public") == 0)
		return NAT_PUBLIC;
	if (strcmp(name, "behind-nat") == 0)
		return NAT_BEHIND;
	if (strcmp(name, "nonat-suspect") == 0)
		return NAT_SUSPECT;
	return NAT_LOCAL;
}

/* ---- classification ---- */

/* A private address that is not ours to know: not in the intranet (our
 * own Record-Route and the LAN are), not loopback. */
static bool ip_private_text(const char *p, size_t n)
{
	struct sockaddr_storage sa;
	struct pl ip = { p, n };

	return addr_from_ip(&sa, ip, 0) == 0 && addr_is_private(&sa) &&
	       !conf_is_intranet_addr(N.conf, &sa) &&
	       !(sa.ss_family == AF_INET &&
		 (ntohl(((struct sockaddr_in *)&sa)->sin_addr.s_addr) >> 24) == 127);
}

/* Find a private IPv4 literal anywhere in s (dotted quads only). */
static bool has_private_ipv4(struct pl s, struct pl *found)
{
	size_t i = 0;

	while (i < s.l) {
		size_t j = i;
		int dots = 0;
		if (s.p[i] < '0' || s.p[i] > '9' ||
		    (i > 0 && ((s.p[i - 1] >= '0' && s.p[i - 1] <= '9') ||
			       s.p[i - 1] == '.'))) {
			i++;
			continue;
		}
		while (j < s.l && ((s.p[j] >= '0' && s.p[j] <= '9') ||
				   s.p[j] == '.') && j - i < 16) {
			if (s.p[j] == '.')
				dots++;
			j++;
		}
		if (dots == 3 && ip_private_text(s.p + i, j - i)) {
			*found = (struct pl){ s.p + i, j - i };
			return true;
		}
		i = j > i ? j : i + 1;
	}
	return false;
}

enum nat_verdict nat_classify(const struct sip_msg *msg,
			      const struct tp_flow *flow,
			      const struct conf *conf, char *why, size_t cap)
{
	struct sockaddr_storage via_ip, ct_ip;
	char src[ADDR_STRLEN];
	const struct sip_hdr *ct = sip_hdr_get(msg, SIP_HDR_CONTACT);
	struct sip_addr ca;
	struct pl priv;
	bool via_ok, ct_ok = false;
	uint16_t via_port = msg->via.port ? msg->via.port : 5060;

	addr_str(&flow->remote, src, sizeof(src));
	if (conf_is_intranet_addr(conf, &flow->remote)) {
		snprintf(why, cap, "source %s is in intranet_subnets", src);
		return NAT_LOCAL;
	}
	/* A response's top Via is ours: only its Contact says anything. */
	via_ok = !msg->is_request ||
		 (addr_from_ip(&via_ip, msg->via.host, via_port) == 0 &&
		  addr_ip_eq(&via_ip, &flow->remote) &&
		  (flow->proto == TP_TCP || via_port == addr_port(&flow->remote)));
	if (ct && sip_addr_parse(&ca, ct->value) == 0 && !ca.star) {
		uint16_t p = ca.uri.port ? ca.uri.port : 5060;
		ct_ok = addr_from_ip(&ct_ip, ca.uri.host, p) == 0 &&
			addr_ip_eq(&ct_ip, &flow->remote) &&
			(flow->proto == TP_TCP || p == addr_port(&flow->remote));
	} else {
		ct_ok = true;	/* nothing claimed */
	}
	if (!via_ok || !ct_ok) {
		snprintf(why, cap, "%s %.*s differs from source %s",
			 !via_ok ? "Via sent-by" : "Contact",
			 PL_FMT(!via_ok ? msg->via.host : ca.uri.host), src);
		return NAT_BEHIND;
	}
	/* Claims are right: look for private addresses left elsewhere
	 * (an ALG or STUN fixed only what it knows about). */
	/* Only a dialog-creating request (or REGISTER) is all the sender's
	 * own: responses and in-dialog requests carry the other party's
	 * Call-ID, From and Vias. */
	if (N.conf && msg->is_request && !pl_isset(msg->to_tag) &&
	    has_private_ipv4((struct pl){ msg->buf, msg->len }, &priv)) {
		snprintf(why, cap, "looks public but carries private address "
			 "%.*s (SIP ALG or phone-side STUN)", PL_FMT(priv));
		return NAT_SUSPECT;
	}
	snprintf(why, cap, "Via and Contact match source %s", src);
	return NAT_PUBLIC;
}

/* ---- sessions ---- */

static uint64_t key_hash(struct pl call_id)
{
	return hash_pl(HASH_SEED, call_id);
}

static struct media_session *session_find(struct pl call_id)
{
	uint64_t h = key_hash(call_id);

	for (struct hash_node *n = hash_bucket(&N.sessions, h); n; n = n->next) {
		struct media_session *s = container_of(n, struct media_session, node);
		if (n->hash == h && pl_eq_str(call_id, s->call_id))
			return s;
	}
	return NULL;
}

/* The relay's view of stream i of s; false when it has none. */
static bool stream_info(const struct media_session *s, unsigned i,
			struct relay_stream_info *info)
{
	return s->streams[i].allocated &&
	       relay_stream_info(N.relay, s->streams[i].relay_id, info) == 0;
}

/* Feed behaviour.c: where each party said it receives media against
 * where its packets came from, per our port. */
static void observe_session(const struct media_session *s)
{
	for (unsigned i = 0; i < s->nstreams; i++) {
		struct relay_stream_info info;
		if (!stream_info(s, i, &info))
			continue;
		for (int side = 0; side < 2; side++) {
			const struct relay_side_info *si = &info.side[side];
			const struct sockaddr_storage *said =
				&s->streams[i].said[side];
			if (si->latched && said->ss_family != AF_UNSPEC)
				nat_behaviour_observe(said, &si->latched_addr,
						      si->port);
		}
	}
}

static void session_free(struct media_session *s, const char *why)
{
	observe_session(s);
	for (unsigned i = 0; i < s->nstreams; i++)
		if (s->streams[i].allocated)
			relay_stream_free(N.relay, s->streams[i].relay_id);
	log_info("nat", "media session end call-id=%s streams=%u reason=%s",
		 s->call_id, s->nstreams, why);
	hash_remove(&N.sessions, &s->node);
	N.count--;
	free(s);
}

static struct media_session *session_new(const struct sip_msg *msg)
{
	struct media_session *s;

	if (N.count >= MAX_SESSIONS || msg->call_id.l >= sizeof(s->call_id) ||
	    msg->from_tag.l >= sizeof(s->a_tag))
		return NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	pl_strcpy(s->call_id, sizeof(s->call_id), msg->call_id);
	pl_strcpy(s->a_tag, sizeof(s->a_tag), msg->from_tag);
	s->created = (int64_t)time(NULL);
	hash_insert(&N.sessions, &s->node, key_hash(msg->call_id));
	N.count++;
	log_info("nat", "media session start call-id=%s", s->call_id);
	return s;
}

void nat_dialog_end(struct pl call_id)
{
	struct media_session *s = session_find(call_id);

	if (s)
		session_free(s, "dialog ended");
}

static void sweep(void *arg)
{
	uint64_t now_ms = loop_now();
	uint64_t idle = (uint64_t)N.conf->idle_timeout * 1000;
	int64_t now = (int64_t)time(NULL);

	(void)arg;
	for (size_t b = 0; b < N.sessions.nbuckets; b++) {
		struct hash_node *n = N.sessions.buckets[b], *next;
		for (; n; n = next) {
			struct media_session *s = container_of(n, struct media_session, node);
			uint64_t last = 0;
			next = n->next;
			observe_session(s);
			diagnose_media(s, now);
			if (now - s->created < (int64_t)N.conf->idle_timeout)
				continue;
			for (unsigned i = 0; i < s->nstreams; i++) {
				struct relay_stream_info info;
				if (!stream_info(s, i, &info))
					continue;
				for (int side = 0; side < 2; side++) {
					if (info.side[side].rtp.last_seen_ms > last)
						last = info.side[side].rtp.last_seen_ms;
					if (info.side[side].rtcp.last_seen_ms > last)
						last = info.side[side].rtcp.last_seen_ms;
				}
			}
			if (!last || now_ms - last > idle)
				session_free(s, "idle");
		}
	}
	loop_timer_start(N.loop, &N.sweep, SWEEP_MS);
}

int nat_init(struct loop *loop, struct transport *tp, struct relay *relay,
	     const struct conf *conf)
{
	N.loop = loop;
	N.tp = tp;
	N.relay = relay;
	N.conf = conf;
	if (hash_init(&N.sessions, 1024))
		return ENOMEM;
	loop_timer_init(&N.sweep, sweep, NULL);
	loop_timer_start(loop, &N.sweep, SWEEP_MS);
	nat_keepalive_start(loop, tp, conf);
	nat_public_start(loop, tp, conf);
	nat_probe_start(loop, conf);
	nat_selftest_init(loop, tp, conf);
	return 0;
}

void nat_set_conf(const struct conf *conf)
{
	N.conf = conf;
	nat_keepalive_set_conf(conf);
	nat_public_set_conf(conf);
	nat_probe_set_conf(conf);
	nat_selftest_set_conf(conf);
}

void nat_close(void)
{
	for (size_t b = 0; b < N.sessions.nbuckets; b++)
		while (N.sessions.buckets && N.sessions.buckets[b])
			session_free(container_of(N.sessions.buckets[b],
						  struct media_session, node),
				     "shutdown");
	loop_timer_cancel(N.loop, &N.sweep);
	nat_keepalive_stop();
	nat_public_stop();
	nat_probe_stop();
	nat_selftest_stop();
	nat_behaviour_free();
	hash_free(&N.sessions);
}

unsigned nat_session_count(void)
{
	return N.count;
}

/* ---- diagnosis ---- */

static void check_ports_low(void)
{
	struct relay_stats rs;

	relay_get_stats(N.relay, &rs);
	if (rs.ports_total && rs.ports_free * 10 < rs.ports_total)
		alarm_raise(ALARM_MAJOR, "relay-ports-low", "media relay",
			    "%u of %u relay ports left: widen [media] "
			    "rtp_port_min-rtp_port_max (and its port forward) "
			    "before new calls get 503", rs.ports_free,
			    rs.ports_total);
}

/*
 * Media that flows one way only is the most common remote-worker ticket.
 * The relay sees it directly: one side's socket receives, the other's
 * does not. Which side is silent tells where the fix is.
 */
#define ONE_WAY_AFTER_S 8

static void diagnose_media(struct media_session *s, int64_t now)
{
	struct relay_stream_info info;
	uint64_t rx[2];
	int silent;
	char subject[300], addr[ADDR_STRLEN];
	const struct nat_party *p;

	if (!s->answered || s->media_checked ||
	    now - s->answered_at < ONE_WAY_AFTER_S || !s->nstreams ||
	    !stream_info(s, 0, &info))
		return;
	s->media_checked = true;
	/* Received from the party, forwarded or not (a party whose peer has
	 * not latched yet has its packets counted as dropped). */
	rx[0] = info.side[0].rtp.packets + info.side[0].rtp.dropped;
	rx[1] = info.side[1].rtp.packets + info.side[1].rtp.dropped;
	snprintf(subject, sizeof(subject), "call %s", s->call_id);
	if (!rx[0] && !rx[1]) {
		alarm_raise(ALARM_MAJOR, "no-media", subject,
			    "no RTP reached the relay from either phone %ds into "
			    "the call: if the server is behind NAT, forward UDP "
			    "%u-%u to it; otherwise a firewall in front of the "
			    "server drops the RTP range",
			    ONE_WAY_AFTER_S, N.conf->rtp_port_min,
			    N.conf->rtp_port_max);
		return;
	}
	if (rx[0] && rx[1])
		return;
	silent = rx[0] ? 1 : 0;
	p = &s->party[silent];
	addr_str(&p->flow.remote, addr, sizeof(addr));
	if (N.conf->behind_nat && p->verdict != NAT_LOCAL)
		alarm_raise(ALARM_MAJOR, "one-way-media", subject,
			    "one-way audio: the %s (%s, outside) sends no RTP "
			    "that reaches the relay while the other side does. "
			    "The server is behind NAT: check that the local NAT "
			    "forwards UDP %u-%u to this server (the classic "
			    "cause), then the phone's own firewall",
			    silent ? "callee" : "caller", addr,
			    N.conf->rtp_port_min, N.conf->rtp_port_max);
	else
		alarm_raise(ALARM_MAJOR, "one-way-media", subject,
			    "one-way audio: the %s (%s, %s) sends no RTP that "
			    "reaches the relay while the other side does: its "
			    "router or firewall drops outgoing RTP, or the "
			    "phone is muted/on hold without saying so",
			    silent ? "callee" : "caller", addr,
			    nat_verdict_name(p->verdict));
}

/* ---- rewriting ---- */

static bool nated(const struct nat_party *p)
{
	return p->verdict == NAT_BEHIND || p->verdict == NAT_SUSPECT;
}

/* Contact of a NAT'ed sender -> its public (source) address, so that
 * in-dialog requests reach it through its pinhole. */
static void fix_contact(struct sip_editor *ed, const struct sip_msg *msg,
			const struct nat_party *from)
{
	int i = msg->first[SIP_HDR_CONTACT];
	struct sip_addr ca;
	const char *host_end;
	char host[ADDR_STRLEN];

	if (i < 0 || from->verdict != NAT_BEHIND)
		return;
	if (sip_addr_parse(&ca, msg->hdrs[i].value) || ca.star ||
	    !pl_isset(ca.uri.host))
		return;
	host_end = ca.uri.host.p + ca.uri.host.l;
	if (ca.uri.port) {
		/* include ":port" in the replaced span */
		const char *e = host_end + 1;
		while (e < msg->buf + msg->len && *e >= '0' && *e <= '9')
			e++;
		host_end = e;
	}
	addr_str(&from->flow.remote, host, sizeof(host));
	sip_ed_replace(ed, (struct pl){ ca.uri.host.p,
					(size_t)(host_end - ca.uri.host.p) },
		       "%s", host);
	if (from->flow.proto == TP_TCP &&
	    !sip_param_get(ca.uri.params, "transport", NULL))
		sip_ed_insert(ed, (size_t)(host_end - ed->base), ";transport=tcp");
}

static bool target_refresh(const struct sip_msg *msg)
{
	enum sip_method m = msg->is_request ? msg->method_id : msg->cseq_method_id;

	if (!msg->is_request && (msg->status < 101 || msg->status >= 300))
		return false;
	return m == SIP_INVITE || m == SIP_UPDATE || m == SIP_SUBSCRIBE ||
	       m == SIP_NOTIFY || m == SIP_REFER;
}

/* Rewrite the SDP sent by side `from_side` of session s toward the other
 * side, whose relay-facing address is `to_local`. */
static int rewrite_sdp(struct sip_editor *ed, const struct sip_msg *msg,
		       struct media_session *s, enum relay_side from_side,
		       const struct nat_party *from, const struct nat_party *to)
{
	struct pl body;
	struct sdp sdp;
	char ours[INET6_ADDRSTRLEN];
	enum relay_side to_side = from_side == RELAY_A ? RELAY_B : RELAY_A;
	bool v6;

	if (sdp_find(msg, &body) || sdp_parse(&sdp, body))
		return 0;	/* no SDP: nothing to relay in this message */
	s->party[from_side] = *from;
	s->party[to_side] = *to;
	{
		struct sockaddr_storage relay_ip = to->local;
		if (N.conf->relay_address[0])
			addr_parse(&relay_ip, N.conf->relay_address, 0);
		addr_ip_str(&relay_ip, ours, sizeof(ours));
		v6 = relay_ip.ss_family == AF_INET6;
	}

	for (unsigned i = 0; i < sdp.nmedia; i++) {
		struct sdp_media *m = &sdp.media[i];
		struct nat_stream *st = &s->streams[i];
		struct pl addr = sdp_media_addr(&sdp, i);
		struct sockaddr_storage peer;
		uint16_t rtcp_port = 0;

		if (i >= s->nstreams)
			s->nstreams = i + 1;
		if (m->port == 0) {
			/* Rejected or removed (RFC 3264 8.2): stays at 0, and
			 * a stream relayed so far stops now, its ports back. */
			if (st->allocated) {
				relay_stream_free(N.relay, st->relay_id);
				st->allocated = false;
				log_info("nat", "media stream %u removed "
					 "call-id=%s", i, s->call_id);
			}
			continue;
		}
		if (!st->allocated) {
			int err = relay_stream_alloc(N.relay, !m->rtcp_mux,
						     &st->relay_id, &st->port[0],
						     &st->port[1]);
			if (err) {
				N.no_ports++;
				log_warn("nat", "no relay ports for call-id=%s: %s",
					 s->call_id, strerror(err));
				alarm_raise(ALARM_CRITICAL, "relay-ports-exhausted",
					    "media relay",
					    "no free relay port: new calls that need "
					    "the relay get 503 (calls in progress are "
					    "not affected); widen [media] rtp_port_min"
					    "-rtp_port_max (and its port forward)");
				return err;
			}
			st->allocated = true;
			check_ports_low();
		}
		/* Where this party says it receives. A private address
		 * outside the intranet (a NAT'ed phone's own address) is
		 * never a destination: the relay latches on the real source
		 * instead. 0.0.0.0 (RFC 2543 hold) means none. */
		memset(&peer, 0, sizeof(peer));
		if (addr_from_ip(&peer, addr, m->port) || addr_is_any(&peer))
			memset(&peer, 0, sizeof(peer));
		st->said[from_side] = peer;	/* for behaviour.c */
		if (ip_private_text(addr.p, addr.l))
			memset(&peer, 0, sizeof(peer));
		if (m->rtcp_port && !m->rtcp_mux)
			rtcp_port = m->rtcp_port;
		relay_stream_set_peer(N.relay, st->relay_id, from_side, &peer,
				      rtcp_port);

		sip_ed_replace(ed, m->port_str, "%u", st->port[to_side]);
		if (pl_isset(m->conn_addr) && !pl_eq_str(m->conn_addr, "0.0.0.0"))
			sip_ed_replace(ed, m->conn_addr, "%s", ours);
		if (pl_isset(m->rtcp_value) && !m->rtcp_mux)
			sip_ed_replace(ed, m->rtcp_value, "%u IN %s %s",
				       st->port[to_side] + 1, v6 ? "IP6" : "IP4",
				       ours);
		else if (pl_isset(m->rtcp_value))
			sip_ed_replace(ed, m->rtcp_value, "%u", st->port[to_side]);
	}
	if (pl_isset(sdp.conn_addr) && !pl_eq_str(sdp.conn_addr, "0.0.0.0"))
		sip_ed_replace(ed, sdp.conn_addr, "%s", ours);
	for (unsigned i = 0; i < sdp.ndrop; i++)
		sip_ed_delete(ed, (size_t)(sdp.drop[i].p - ed->base), sdp.drop[i].l);
	sip_ed_fix_content_length(ed, msg);
	return 0;
}

static bool need_relay(const struct nat_party *a, const struct nat_party *b)
{
	if (!N.conf->relay || !N.conf->nat_enabled)
		return false;
	if (a->verdict == NAT_LOCAL && b->verdict == NAT_LOCAL)
		return false;	/* never between two LAN phones */
	/* The two ends on different sides of our own NAT: the outside
	 * cannot reach a LAN address, so the relay bridges them. */
	if (N.conf->behind_nat &&
	    (a->verdict == NAT_LOCAL) != (b->verdict == NAT_LOCAL))
		return true;
	/* Two phones behind the same NAT: hairpinning through their own
	 * router is unreliable, so relay unless the admin says otherwise. */
	if (N.conf->same_nat_direct && nated(a) && nated(b) &&
	    addr_ip_eq(&a->flow.remote, &b->flow.remote))
		return false;
	return nated(a) || nated(b);
}

/* What every message crossing us gets when NAT traversal is on: the
 * Contact of a NAT'ed sender fixed. false when NAT traversal is off. */
static bool contact_edits(struct sip_editor *ed, const struct sip_msg *msg,
			  const struct nat_party *from)
{
	if (!N.conf->nat_enabled)
		return false;
	if (target_refresh(msg))
		fix_contact(ed, msg, from);
	return true;
}

int nat_request_edits(struct sip_editor *ed, const struct sip_msg *msg,
		      const struct nat_party *from, const struct nat_party *to)
{
	struct media_session *s;
	enum relay_side side;

	if (!contact_edits(ed, msg, from))
		return 0;
	if (msg->method_id == SIP_BYE) {
		nat_dialog_end(msg->call_id);
		return 0;
	}
	s = session_find(msg->call_id);
	if (!s) {
		if (msg->method_id != SIP_INVITE || pl_isset(msg->to_tag) ||
		    !need_relay(from, to))
			return 0;
		s = session_new(msg);
		if (!s)
			return ENOMEM;
	}
	if (msg->method_id != SIP_INVITE && msg->method_id != SIP_ACK &&
	    msg->method_id != SIP_UPDATE && msg->method_id != SIP_PRACK)
		return 0;
	side = pl_eq_str(msg->from_tag, s->a_tag) ? RELAY_A : RELAY_B;
	return rewrite_sdp(ed, msg, s, side, from, to);
}

int nat_response_edits(struct sip_editor *ed, const struct sip_msg *msg,
		       const struct nat_party *from, const struct nat_party *to)
{
	struct media_session *s;
	enum relay_side side;

	if (!contact_edits(ed, msg, from))
		return 0;
	s = session_find(msg->call_id);
	if (!s)
		return 0;
	if (msg->cseq_method_id == SIP_INVITE && msg->status >= 300 &&
	    !s->answered && !pl_isset(msg->to_tag)) {
		return 0;
	}
	if (msg->cseq_method_id == SIP_INVITE && msg->status >= 200 &&
	    msg->status < 300 && !s->answered) {
		s->answered = true;
		s->answered_at = (int64_t)time(NULL);
	}
	if (msg->cseq_method_id != SIP_INVITE &&
	    msg->cseq_method_id != SIP_UPDATE && msg->cseq_method_id != SIP_PRACK)
		return 0;
	if (msg->status >= 300)
		return 0;
	/* The response comes from the side that did not send the request. */
	side = pl_eq_str(msg->from_tag, s->a_tag) ? RELAY_B : RELAY_A;
	return rewrite_sdp(ed, msg, s, side, from, to);
}

void nat_invite_failed(struct pl call_id)
{
	struct media_session *s = session_find(call_id);

	if (s && !s->answered)
		session_free(s, "call failed");
}

json_t *nat_sessions_json(void)
{
	json_t *arr = json_array();

	for (size_t b = 0; b < N.sessions.nbuckets; b++) {
		for (struct hash_node *n = N.sessions.buckets[b]; n; n = n->next) {
			struct media_session *s = container_of(n, struct media_session, node);
			json_t *o = json_object(), *streams = json_array();
			for (unsigned i = 0; i < s->nstreams; i++) {
				struct relay_stream_info info;
				json_t *st;
				if (!stream_info(s, i, &info))
					continue;
				st = json_object();
				json_object_set_new(st, "index", json_integer(i));
				for (int side = 0; side < 2; side++) {
					json_t *sd = json_object();
					char a[ADDR_STRLEN];
					const struct relay_side_info *si = &info.side[side];
					json_object_set_new(sd, "port", json_integer(si->port));
					json_object_set_new(sd, "latched", json_boolean(si->latched));
					json_object_set_new(sd, "peer", si->latched ?
						json_string(addr_str(&si->latched_addr, a, sizeof(a))) :
						json_null());
					json_object_set_new(sd, "rx_packets", json_integer((json_int_t)si->rtp.packets));
					json_object_set_new(sd, "rx_bytes", json_integer((json_int_t)si->rtp.bytes));
					json_object_set_new(sd, "rtcp_packets", json_integer((json_int_t)si->rtcp.packets));
					json_object_set_new(sd, "dropped", json_integer((json_int_t)(si->rtp.dropped + si->rtcp.dropped)));
					json_object_set_new(sd, "relatches", json_integer((json_int_t)si->relatches));
					json_object_set_new(st, side ? "b" : "a", sd);
				}
				json_array_append_new(streams, st);
			}
			json_object_set_new(o, "call_id", json_string(s->call_id));
			json_object_set_new(o, "start", json_integer(s->created));
			json_object_set_new(o, "answered", json_boolean(s->answered));
			json_object_set_new(o, "streams", streams);
			json_array_append_new(arr, o);
		}
	}
	return arr;
}
