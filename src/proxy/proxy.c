/*
 * proxy.c - the stateful proxy core (see proxy.h).
 *
 * A request walks: parse check -> ACK/CANCEL/retransmission matching ->
 * sanity (Max-Forwards, loops, Proxy-Require, scheme) -> a server txn ->
 * Route processing (RFC 3261 16.4) -> what is ours (OPTIONS, REGISTER) ->
 * authentication -> targets (Route, location service, [routes]) -> one
 * branch per target, each built by edits over the received bytes.
 * Responses find their branch by our Via branch; the best final response
 * is chosen per RFC 3261 16.7 and sent once every branch has ended, a 2xx
 * at once (and every 2xx of a fork).
 *
 * Symmetric signalling: responses go back to the source of the request
 * (RFC 3581 when the phone asked with rport, and always when the Via
 * sent-by disagrees with the source address, which means a NAT or a
 * misconfigured phone: answering the Via would go nowhere); requests to a
 * registered phone leave through the socket or TCP connection its
 * REGISTER came on.
 *
 * No open relay: requests from our users must authenticate, requests
 * from configured gateways are trusted by source address, anonymous
 * requests (foreign From) may only reach registered local users, and
 * nothing is routed to a foreign domain.
 */
#include "proxy/proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alarm/alarm.h"
#include "auth/auth.h"
#include "conf/conf.h"
#include "core/loop.h"
#include "log/log.h"
#include "nat/nat.h"
#include "proxy/features.h"
#include "proxy/pickup.h"
#include "proxy/refer.h"
#include "registrar/registrar.h"
#include "sip/edit.h"
#include "store/store.h"
#include "txn/txn.h"
#include "util/addr.h"

#define MAX_MY_IPS 32
#define OUT_CAP (65535 + 1024)
#define MAX_TARGETS TXN_MAX_BRANCHES
#define EARLY_TAG_LEN 80

/* What call pickup needs to know of each branch of an INVITE. */
struct pleg {
	char user[64];		/* whose device it rings, "" unknown */
	char early_tag[EARLY_TAG_LEN];	/* To tag of its 18x: the early dialog */
};

/* Per-txn proxy state: the best final response so far. */
struct pcall {
	struct pcall *next, *prev;	/* INVITEs, for the calls view */
	struct txn *txn;
	unsigned best_status;
	char *best;
	size_t best_len;
	bool final_sent;
	bool cancelled;
	struct nat_party requester;	/* for NAT edits on responses */
	/* what later branches (plan stages, redirects) are built from */
	struct tp_flow in_flow;
	struct sockaddr_storage in_local;
	bool record_route;
	int strip_routes[4];
	unsigned nstrip;
	/* telephony features: the plan and where we are in it */
	struct plan *plan;
	unsigned stage;
	unsigned stage_first;	/* first branch of the current stage */
	unsigned stage_status;	/* best final status within the stage */
	bool stage_timed_out;
	bool nobody;		/* the last stage had nobody to ring */
	bool forward_loop;	/* forwarding went round in circles */
	unsigned redirects;
	struct loop_timer ring;
	char call_id[256];
	char from[128];
	char to[128];
	int64_t started;
	/* call pickup (INVITEs only) */
	char dialled[64];	/* Request-URI user when the domain is ours */
	char caller[64];	/* From user */
	struct pleg *legs;	/* one per branch */
	bool is_pickup;
	struct pcall *picks;	/* a pickup: the ringing call it takes */
	struct pcall *picked_by;	/* a ringing call: the pickup under way */
};

struct target {
	char ruri[512];		/* new Request-URI, "" = keep */
	struct tp_flow flow;
	struct sockaddr_storage local;	/* our address to use, or AF_UNSPEC */
	char route[1100];	/* Route header lines to add (from Path) */
	char label[256];
	char user[64];		/* the local user whose device it is, or "" */
	char extra[512];	/* header lines to add (Replaces of a pickup) */
	enum nat_verdict verdict;	/* where the target is */
	bool from_binding;	/* verdict known from its registration */
};

static struct {
	struct loop *loop;
	struct transport *tp;
	const struct conf *conf;
	struct store *store;
	struct sockaddr_storage my_ips[MAX_MY_IPS];
	unsigned n_my_ips;
	struct proxy_stats stats;
	struct pcall calls;	/* list head */
	bool forward_loop;	/* set by resolve_user when it gives up */
	struct sip_msg scratch;	/* re-parsed stored requests */
	char out[OUT_CAP];
	struct sip_editor ed;
} P;

static const struct txn_ops proxy_txn_ops;
static bool known_peer(const struct tp_flow *dest);

const struct proxy_stats *proxy_stats(void)
{
	return &P.stats;
}

void proxy_set_conf(const struct conf *conf)
{
	P.conf = conf;
}

/* ---- who are we ---- */

static void collect_my_ips(void)
{
	struct ifaddrs *ifa, *i;
	struct sockaddr_storage sa;

	P.n_my_ips = 0;
	if (getifaddrs(&ifa) == 0) {
		for (i = ifa; i && P.n_my_ips < MAX_MY_IPS; i = i->ifa_next) {
			if (!i->ifa_addr || (i->ifa_addr->sa_family != AF_INET &&
					     i->ifa_addr->sa_family != AF_INET6))
				continue;
			memset(&sa, 0, sizeof(sa));
			memcpy(&sa, i->ifa_addr,
			       i->ifa_addr->sa_family == AF_INET
				       ? sizeof(struct sockaddr_in)
				       : sizeof(struct sockaddr_in6));
			P.my_ips[P.n_my_ips++] = sa;
		}
		freeifaddrs(ifa);
	}
	if (P.conf->public_ip[0] && P.n_my_ips < MAX_MY_IPS &&
	    addr_parse(&sa, P.conf->public_ip, 0) == 0)
		P.my_ips[P.n_my_ips++] = sa;
}

static bool ip_is_mine(const struct sockaddr_storage *sa)
{
	const struct sockaddr_storage *pub = nat_public_addr();

	for (unsigned i = 0; i < P.n_my_ips; i++)
		if (addr_ip_eq(&P.my_ips[i], sa))
			return true;
	return pub && addr_ip_eq(pub, sa);	/* learned by STUN */
}

static bool host_is_mine(struct pl host, uint16_t port)
{
	struct sockaddr_storage sa;
	uint16_t p = port ? port : 5060;

	if (p != P.conf->port)
		return false;
	if (addr_from_ip(&sa, host, 0))
		return false;
	return ip_is_mine(&sa);
}

static bool host_is_domain(struct pl host)
{
	return pl_caseeq_str(host, P.conf->domain);
}

/* Request-URI or To naming our domain (any port) or one of our addresses
 * on our port. */
static bool uri_is_ours(const struct sip_uri *u)
{
	return host_is_domain(u->host) || host_is_mine(u->host, u->port);
}

/* ---- responses ---- */

/* Where answers to this request go (RFC 3261 18.2.2, RFC 3581). */
static void response_flow(const struct sip_msg *msg,
			  const struct tp_flow *in, struct tp_flow *out)
{
	struct sockaddr_storage via_ip;
	bool nat;

	*out = *in;
	if (in->proto == TP_TCP || msg->via.has_rport)
		return;
	nat = addr_from_ip(&via_ip, msg->via.host, 0) != 0 ||
	      !addr_ip_eq(&via_ip, &in->remote);
	if (nat && P.conf->nat_enabled)
		return;		/* force rport: the Via address is not reachable */
	addr_set_port(&out->remote, msg->via.port ? msg->via.port : 5060);
}

/* The top Via value with received and rport filled in. */
static void via_with_received(const struct sip_msg *msg,
			      const struct tp_flow *flow, char *out,
			      size_t cap)
{
	const struct sip_via *v = &msg->via;
	char ip[INET6_ADDRSTRLEN];
	struct sockaddr_storage via_ip;
	struct pl rest = v->params;
	size_t n;
	int r;

	addr_ip_str(&flow->remote, ip, sizeof(ip));
	r = snprintf(out, cap, "%.*s/%.*s %.*s", PL_FMT(v->protocol),
		     PL_FMT(v->transport), PL_FMT(v->host));
	n = r > 0 ? (size_t)r : 0;
	if (v->port && n < cap) {
		r = snprintf(out + n, cap - n, ":%u", v->port);
		n += r > 0 ? (size_t)r : 0;
	}
	while (rest.l && n < cap) {
		const char *semi;
		struct pl tok;

		if (rest.p[0] == ';') {
			rest.p++;
			rest.l--;
		}
		semi = pl_chr(rest, ';');
		tok = (struct pl){ rest.p, semi ? (size_t)(semi - rest.p) : rest.l };
		rest.p += tok.l;
		rest.l -= tok.l;
		tok = pl_trim(tok);
		if (!tok.l)
			continue;
		if (pl_caseeq_str(tok, "rport") ||
		    (tok.l > 6 && pl_caseeq_str((struct pl){ tok.p, 6 }, "rport=")))
			r = snprintf(out + n, cap - n, ";rport=%u",
				     addr_port(&flow->remote));
		else if (tok.l >= 8 &&
			 pl_caseeq_str((struct pl){ tok.p, 8 }, "received"))
			r = 0;
		else
			r = snprintf(out + n, cap - n, ";%.*s", PL_FMT(tok));
		n += r > 0 ? (size_t)r : 0;
	}
	if (n < cap &&
	    (v->has_rport || addr_from_ip(&via_ip, v->host, 0) ||
	     !addr_ip_eq(&via_ip, &flow->remote)))
		snprintf(out + n, cap - n, ";received=%s", ip);
}

static void count_response(unsigned status)
{
	if (status >= 100 && status < 700)
		P.stats.responses_by_class[status / 100]++;
}

/* Answer msg ourselves: through the txn when there is one, else
 * statelessly to the response flow. */
static void reply(const struct sip_msg *msg, const struct tp_flow *flow,
		  struct txn *txn, unsigned status, const char *reason,
		  const char *extra)
{
	char via[1024], sl_tag[16];
	struct tp_flow rf;
	size_t len;

	via_with_received(msg, flow, via, sizeof(via));
	if (!txn) {
		/* Stateless: the same request must get the same tag. */
		uint64_t h = hash_pl(hash_pl(HASH_SEED, msg->call_id),
				     msg->via.branch);
		snprintf(sl_tag, sizeof(sl_tag), "phs%08x", (unsigned)h);
	}
	if (sip_reply_build(msg, status, reason, via,
			    txn ? txn->to_tag : sl_tag, extra, NULL, 0,
			    P.out, sizeof(P.out), &len)) {
		log_warn("proxy", "cannot build %u response", status);
		return;
	}
	count_response(status);
	if (txn) {
		txn_respond(txn, status, P.out, len);
		return;
	}
	response_flow(msg, flow, &rf);
	tp_send(P.tp, &rf, P.out, len);
}

/* Answer from a txn whose request is no longer parsed (timeouts). */
static void reply_txn(struct txn *txn, unsigned status, const char *reason)
{
	struct sip_msg *m = &P.scratch;
	char via_buf[1024];
	size_t len;

	if (sip_msg_parse(m, txn->req, txn->req_len, false))
		return;
	via_with_received(m, &txn->uas_flow, via_buf, sizeof(via_buf));
	if (sip_reply_build(m, status, reason, via_buf, txn->to_tag, NULL,
			    NULL, 0, P.out, sizeof(P.out), &len))
		return;
	count_response(status);
	txn_respond(txn, status, P.out, len);
}

/* ---- loop detection (RFC 3261 16.3 item 4, 16.6 item 8) ---- */

static uint32_t loop_hash(const struct sip_msg *msg)
{
	uint64_t h = HASH_SEED;

	h = hash_pl(h, msg->ruri_str);
	h = hash_pl(h, msg->from_tag);
	h = hash_pl(h, msg->to_tag);
	h = hash_pl(h, msg->call_id);
	h = hash_bytes(h, &msg->cseq, sizeof(msg->cseq));
	return (uint32_t)(h ^ (h >> 32));
}

static bool is_loop(const struct sip_msg *msg, uint32_t lh)
{
	char want[16];
	const size_t plen = sizeof(TXN_BRANCH_PREFIX) - 1;

	snprintf(want, sizeof(want), "%08x", lh);
	for (int i = msg->first[SIP_HDR_VIA]; i >= 0;
	     i = sip_hdr_next(msg, i, SIP_HDR_VIA)) {
		struct sip_via v;
		if (sip_via_parse(&v, msg->hdrs[i].value))
			continue;
		if (!host_is_mine(v.host, v.port))
			continue;
		if (v.branch.l >= plen + 8 &&
		    memcmp(v.branch.p, TXN_BRANCH_PREFIX, plen) == 0 &&
		    memcmp(v.branch.p + plen, want, 8) == 0)
			return true;
	}
	return false;
}

/* ---- targets ---- */

/* Destination of a URI (IP literals only: no DNS on the hot path; see
 * docs/ARCHITECTURE.md). */
static int uri_dest(const struct sip_uri *u, struct tp_flow *flow)
{
	struct pl tpv;
	uint16_t port = u->port ? u->port :
			(pl_caseeq_str(u->scheme, "sips") ? 5061 : 5060);

	memset(flow, 0, sizeof(*flow));
	flow->proto = TP_UDP;
	if (sip_param_get(u->params, "transport", &tpv)) {
		if (pl_caseeq_str(tpv, "tcp"))
			flow->proto = TP_TCP;
		else if (!pl_caseeq_str(tpv, "udp"))
			return EPROTONOSUPPORT;
	}
	if (addr_from_ip(&flow->remote, u->host, port))
		return EHOSTUNREACH;
	if (addr_is_unusable(&flow->remote))
		return EADDRNOTAVAIL;
	/* Never send to somebody else's private network. */
	if (addr_is_private(&flow->remote) &&
	    !conf_is_intranet_addr(P.conf, &flow->remote) &&
	    !ip_is_mine(&flow->remote))
		return EACCES;
	return 0;
}

/* Where a target reached by URI (gateway, Route, in-dialog) is. */
static enum nat_verdict uri_target_verdict(const struct tp_flow *flow)
{
	return conf_is_intranet_addr(P.conf, &flow->remote) ? NAT_LOCAL
							     : NAT_PUBLIC;
}

static void target_from_binding(struct target *t, const struct reg_binding *b)
{
	memset(t, 0, sizeof(*t));
	snprintf(t->ruri, sizeof(t->ruri), "%s", b->contact);
	t->flow = b->flow;
	if (t->flow.proto == TP_TCP && !tp_conn_alive(P.tp, t->flow.conn))
		t->flow.conn = 0;	/* reconnect to the same address */
	t->local = b->local;
	t->verdict = nat_verdict_from_name(b->verdict);
	t->from_binding = true;
	snprintf(t->label, sizeof(t->label), "%s", b->contact);
	if (b->aor && b->aor->aor) {
		const char *at = strchr(b->aor->aor, '@');
		size_t len = at ? (size_t)(at - b->aor->aor) : strlen(b->aor->aor);
		if (len < sizeof(t->user))
			memcpy(t->user, b->aor->aor, len);
	}
	if (b->path && b->path[0]) {
		/* RFC 3327: route through the Path, first hop first. */
		struct sip_addr pa;
		const char *comma = strchr(b->path, ',');
		struct pl first = { b->path, comma ? (size_t)(comma - b->path)
						   : strlen(b->path) };
		snprintf(t->route, sizeof(t->route), "Route: %s\r\n", b->path);
		if (sip_addr_parse(&pa, pl_trim(first)) == 0)
			uri_dest(&pa.uri, &t->flow);
		t->local.ss_family = AF_UNSPEC;
	}
}

/* ---- building a forwarded request ---- */

struct fwd {
	const struct sip_msg *msg;
	const struct tp_flow *in_flow;
	const struct sockaddr_storage *in_local;
	const struct target *t;
	const char *branch;
	bool record_route;
	int strip_routes[4];	/* our Route entries to delete */
	unsigned nstrip;
	const char *strict_ruri;	/* strict-route replacement */
	const struct nat_party *from;	/* the sender, classified */
	struct sockaddr_storage out_local;	/* set by build_forward */
};

static void our_hostport(const struct sockaddr_storage *local, char *out,
			 size_t cap)
{
	char host[INET6_ADDRSTRLEN + 2];

	addr_host_str(local, host, sizeof(host));
	snprintf(out, cap, "%s:%u", host, P.conf->port);
}

static int build_forward(struct fwd *f, size_t *len)
{
	const struct sip_msg *msg = f->msg;
	struct sip_editor *ed = &P.ed;
	struct sockaddr_storage out_local;
	char me_out[ADDR_STRLEN], me_in[ADDR_STRLEN], via[1024];
	size_t top = sip_ed_hdr_start(msg);
	const struct target *t = f->t;

	if (t->local.ss_family != AF_UNSPEC && !addr_is_any(&t->local))
		out_local = t->local;
	else
		tp_local_ip_for(P.tp, &t->flow.remote, &out_local);
	{
		/* Behind our own NAT, the outside sees the public address. */
		struct sockaddr_storage adv_in;
		if (!nat_advertised(&t->flow.remote, &out_local, &out_local) ||
		    !nat_advertised(&f->in_flow->remote, f->in_local, &adv_in))
			return EADDRNOTAVAIL;
		our_hostport(&adv_in, me_in, sizeof(me_in));
	}
	f->out_local = out_local;
	our_hostport(&out_local, me_out, sizeof(me_out));

	sip_ed_init(ed, msg->buf, msg->len);
	if (t->ruri[0])
		sip_ed_replace(ed, msg->ruri_str, "%s", t->ruri);
	else if (f->strict_ruri)
		sip_ed_replace(ed, msg->ruri_str, "%s", f->strict_ruri);
	sip_ed_insert(ed, top, "Via: SIP/2.0/%s %s;branch=%s;rport\r\n",
		      tp_proto_upper(t->flow.proto), me_out, f->branch);
	if (f->record_route) {
		sip_ed_insert(ed, top, "Record-Route: <sip:%s;lr%s>\r\n", me_out,
			      t->flow.proto == TP_TCP ? ";transport=tcp" : "");
		/* RFC 3261 16.6 item 4 / RFC 5658: a second entry when the
		 * two sides see us on different addresses or transports. */
		if (strcmp(me_in, me_out) != 0 ||
		    f->in_flow->proto != t->flow.proto)
			sip_ed_insert(ed, top, "Record-Route: <sip:%s;lr%s>\r\n",
				      me_in, f->in_flow->proto == TP_TCP
						     ? ";transport=tcp" : "");
	}
	if (t->route[0])
		sip_ed_insert(ed, top, "%s", t->route);
	if (t->extra[0]) {
		/* Ours replace any the sender put in. */
		for (int i = msg->first[SIP_HDR_REPLACES]; i >= 0;
		     i = sip_hdr_next(msg, i, SIP_HDR_REPLACES))
			sip_ed_delete_hdr(ed, msg, (unsigned)i);
		sip_ed_insert(ed, top, "%s", t->extra);
	}
	via_with_received(msg, f->in_flow, via, sizeof(via));
	sip_ed_replace(ed, msg->via.value, "%s", via);
	if (msg->first[SIP_HDR_MAX_FORWARDS] >= 0)
		sip_ed_replace(ed, msg->hdrs[msg->first[SIP_HDR_MAX_FORWARDS]].value,
			       "%d", msg->max_forwards - 1);
	else
		sip_ed_insert(ed, top, "Max-Forwards: 70\r\n");
	sip_ed_delete_hdrs(ed, msg, f->strip_routes, f->nstrip);
	/* Credentials for our realm are ours, not the next hop's. */
	for (int i = msg->first[SIP_HDR_PROXY_AUTHORIZATION]; i >= 0;
	     i = sip_hdr_next(msg, i, SIP_HDR_PROXY_AUTHORIZATION)) {
		struct sip_auth a;
		if (sip_auth_parse(&a, msg->hdrs[i].value) == 0 &&
		    pl_eq_str(a.realm, P.conf->domain))
			sip_ed_delete_hdr(ed, msg, (unsigned)i);
	}
	if (f->from) {
		struct nat_party to = { .verdict = t->verdict, .flow = t->flow,
					.local = out_local };
		int err = nat_request_edits(ed, msg, f->from, &to);
		if (err)
			return err;
	}
	return sip_ed_apply(ed, P.out, sizeof(P.out), len);
}

/* ---- forking ---- */

static struct pcall *pcall_new(struct txn *txn, const struct sip_msg *msg)
{
	struct pcall *pc = calloc(1, sizeof(*pc));

	if (!pc)
		return NULL;
	pc->txn = txn;
	pc->started = (int64_t)time(NULL);
	pl_strcpy(pc->call_id, sizeof(pc->call_id), msg->call_id);
	pl_strcpy(pc->from, sizeof(pc->from), msg->from.uri_str);
	pl_strcpy(pc->to, sizeof(pc->to), msg->ruri_str);
	if (txn->method == SIP_INVITE) {
		pc->legs = calloc(TXN_MAX_BRANCHES, sizeof(*pc->legs));
		if (!pc->legs) {
			free(pc);
			return NULL;
		}
		if (uri_is_ours(&msg->ruri))
			pl_strcpy(pc->dialled, sizeof(pc->dialled),
				  msg->ruri.user);
		if (uri_is_ours(&msg->from.uri))
			pl_strcpy(pc->caller, sizeof(pc->caller),
				  msg->from.uri.user);
		pc->next = P.calls.next;
		pc->prev = &P.calls;
		P.calls.next->prev = pc;
		P.calls.next = pc;
	}
	return pc;
}

static void pcall_free(struct txn *txn)
{
	struct pcall *pc = txn->user;

	if (!pc)
		return;
	if (pc->next) {
		pc->prev->next = pc->next;
		pc->next->prev = pc->prev;
	}
	loop_timer_cancel(P.loop, &pc->ring);
	if (pc->picks)
		pc->picks->picked_by = NULL;
	if (pc->picked_by)
		pc->picked_by->picks = NULL;
	free(pc->legs);
	free(pc->plan);
	free(pc->best);
	free(pc);
	txn->user = NULL;
}

static void ring_timeout(void *arg);

/* The proxy state of a txn, created with the first branches. */
static struct pcall *pcall_attach(struct txn *txn, const struct sip_msg *msg,
				  const struct fwd *tmpl)
{
	struct pcall *pc = txn->user;

	if (pc)
		return pc;
	pc = pcall_new(txn, msg);
	if (!pc)
		return NULL;
	txn->user = pc;
	if (tmpl->from)
		pc->requester = *tmpl->from;
	pc->in_flow = *tmpl->in_flow;
	pc->in_local = *tmpl->in_local;
	pc->record_route = tmpl->record_route;
	pc->nstrip = tmpl->nstrip;
	memcpy(pc->strip_routes, tmpl->strip_routes, sizeof(pc->strip_routes));
	loop_timer_init(&pc->ring, ring_timeout, txn);
	return pc;
}

/* Add and send one branch per target. Returns how many went out. */
static unsigned send_branches(struct txn *txn, const struct sip_msg *msg,
			      const struct target *targets, unsigned ntargets,
			      struct fwd *tmpl, bool *no_media)
{
	uint32_t lh = loop_hash(msg);
	struct pcall *pc = txn->user;
	unsigned sent = 0;

	for (unsigned i = 0; i < ntargets; i++) {
		struct txn_branch *br = txn_branch_add(txn, lh);
		struct target t = targets[i];
		struct fwd f = *tmpl;
		size_t len;
		int err;

		if (!br)
			break;
		if (!t.from_binding)
			t.verdict = uri_target_verdict(&t.flow);
		f.t = &t;
		f.branch = br->branch_id;
		snprintf(br->target, sizeof(br->target), "%s", t.label);
		br->verdict = (int)t.verdict;
		if ((err = build_forward(&f, &len))) {
			log_warn("proxy", "cannot build request for %s: %s",
				 t.label, strerror(err));
			br->state = TXN_BR_TERMINATED;
			br->status = err == ENOSPC || err == ENOMEM ||
				     err == EADDRNOTAVAIL ? 503 : 500;
			*no_media |= br->status == 503;
			continue;
		}
		br->local = f.out_local;
		if (pc && pc->legs)
			snprintf(pc->legs[br->idx].user,
				 sizeof(pc->legs[br->idx].user), "%s", t.user);
		if (txn_branch_send(br, &t.flow, P.out, len) == 0) {
			sent++;
			P.stats.forwarded++;
		}
	}
	return sent;
}

/* Send one branch per target; answer ourselves when none could be sent. */
static void fork_targets(struct txn *txn, const struct sip_msg *msg,
			 const struct tp_flow *flow,
			 const struct target *targets, unsigned ntargets,
			 struct fwd *tmpl)
{
	bool no_media = false;
	struct pcall *pc = pcall_attach(txn, msg, tmpl);

	if (!pc) {
		reply(msg, flow, txn, 500, "Out Of Memory", NULL);
		return;
	}
	if (!send_branches(txn, msg, targets, ntargets, tmpl, &no_media)) {
		reply(msg, flow, txn, ntargets ? 503 : 480,
		      no_media ? "No Media Relay Ports" :
		      ntargets ? "Destination Unreachable" : NULL, NULL);
		pc->final_sent = true;
		if (msg->method_id == SIP_INVITE)
			nat_invite_failed(msg->call_id);
	}
}

/* RFC 3261 16.7 item 6: which final to send when all branches ended. */
static unsigned rank(unsigned status)
{
	if (status >= 600)
		return 0;
	if (status >= 300 && status < 400)
		return 1000 + status;
	if (status == 401 || status == 407 || status == 415 ||
	    status == 420 || status == 484)
		return 2000 + status;
	if (status >= 400 && status < 500 && status != 408)
		return 3000 + status;
	if (status >= 500)
		return 4000 + status;
	return 5000 + status;	/* 408: only when nothing better */
}

static void send_best(struct txn *txn, struct pcall *pc)
{
	if (pc->final_sent)
		return;
	pc->final_sent = true;
	if (pc->picks) {	/* a failed pickup: the call may be taken again */
		pc->picks->picked_by = NULL;
		pc->picks = NULL;
	}
	if (pc->best) {
		count_response(pc->best_status);
		txn_respond(txn, pc->best_status, pc->best, pc->best_len);
	} else {
		reply_txn(txn, pc->cancelled ? 487 :
			  pc->nobody && pc->forward_loop ? 482 :
			  pc->nobody ? 480 : 408,
			  pc->nobody && pc->forward_loop ? "Forwarding Loop" : NULL);
	}
	if (txn->method == SIP_INVITE)
		nat_invite_failed(pl_from_str(pc->call_id));
}

static void keep_best(struct pcall *pc, unsigned status, const char *buf,
		      size_t len)
{
	char *copy;

	if (pc->best && rank(status) >= rank(pc->best_status))
		return;
	copy = malloc(len);
	if (!copy)
		return;
	memcpy(copy, buf, len);
	free(pc->best);
	pc->best = copy;
	pc->best_len = len;
	pc->best_status = status;
}

/* ---- telephony features: plans, stages, redirects ---- */

/* A [routes] gateway target for a dialled number. */
static int gateway_target(struct pl number, const struct conf_route *rt,
			  struct target *t)
{
	struct sip_uri gw;

	memset(t, 0, sizeof(*t));
	if (sip_uri_parse(&gw, pl_from_str(rt->uri)) || uri_dest(&gw, &t->flow))
		return EHOSTUNREACH;
	if (gw.port)
		snprintf(t->ruri, sizeof(t->ruri), "sip:%.*s@%.*s:%u%.*s",
			 PL_FMT(number), PL_FMT(gw.host), gw.port,
			 PL_FMT(gw.params));
	else
		snprintf(t->ruri, sizeof(t->ruri), "sip:%.*s@%.*s%.*s",
			 PL_FMT(number), PL_FMT(gw.host), PL_FMT(gw.params));
	snprintf(t->label, sizeof(t->label), "route %.32s -> %.200s", rt->prefix,
		 rt->uri);
	return 0;
}

/* The registered devices of user. */
static unsigned user_devices(const char *user, struct target *out,
			     unsigned cap)
{
	char aor[256];
	struct reg_aor *a;
	unsigned n = 0;

	snprintf(aor, sizeof(aor), "%s@%s", user, P.conf->domain);
	a = reg_lookup(aor);
	for (struct reg_binding *b = a ? a->bindings : NULL; b && n < cap;
	     b = b->next) {
		target_from_binding(&out[n], b);
		snprintf(out[n++].user, sizeof(out->user), "%s", user);
	}
	return n;
}

static unsigned resolve_spec(const char *spec, struct target *out,
			     unsigned cap, unsigned depth);

/* A user or number of our domain: its forward_always, its devices, a
 * group's members at once (a group inside a stage rings in parallel), or
 * a [routes] number. */
static unsigned resolve_user(const char *user, struct target *out,
			     unsigned cap, unsigned depth)
{
	const struct conf_route *rt;
	struct plan plan;
	unsigned n;

	if (depth > 4) {
		P.forward_loop = true;	/* forwarding loop: stop here */
		return 0;
	}
	if (!user[0])
		return 0;
	features_plan(P.store, user, &plan);
	if (plan.nstages && plan.stages[0].when == STAGE_ALWAYS &&
	    (plan.nstages == 1 || strncmp(plan.label, "group", 5) == 0) &&
	    plan.stages[0].nspecs && plan.stages[0].specs[0][0] != '=') {
		n = 0;
		for (unsigned i = 0; i < plan.stages[0].nspecs && n < cap; i++)
			n += resolve_spec(plan.stages[0].specs[i], out + n,
					  cap - n, depth + 1);
		return n;
	}
	n = user_devices(user, out, cap);
	if (n)
		return n;
	rt = conf_route_lookup(P.conf, user, strlen(user));
	if (rt && cap && gateway_target(pl_from_str(user), rt, out) == 0)
		return 1;
	return 0;
}

static unsigned resolve_spec(const char *spec, struct target *out,
			     unsigned cap, unsigned depth)
{
	struct sip_uri u;

	if (!cap)
		return 0;
	if (spec[0] == '=')
		return user_devices(spec + 1, out, cap);
	if (strncasecmp(spec, "sip:", 4) == 0 || strncasecmp(spec, "sips:", 5) == 0) {
		if (sip_uri_parse(&u, pl_from_str(spec)))
			return 0;
		if (uri_is_ours(&u) && u.user.l) {
			char user[PLAN_SPEC_LEN];
			pl_strcpy(user, sizeof(user), u.user);
			return resolve_user(user, out, cap, depth);
		}
		memset(out, 0, sizeof(*out));
		if (uri_dest(&u, &out->flow))
			return 0;
		snprintf(out->ruri, sizeof(out->ruri), "%s", spec);
		snprintf(out->label, sizeof(out->label), "%s", spec);
		return 1;
	}
	return resolve_user(spec, out, cap, depth);
}

/* Was this target already rung in this call? (loops, duplicates) */
static bool already_tried(const struct txn *txn, const struct target *t)
{
	for (unsigned i = 0; i < txn->nbranches; i++)
		if (strcmp(txn->branch[i]->target, t->label) == 0)
			return true;
	return false;
}

/* The stored request, parsed again, and the template to fork it. */
static struct sip_msg stage_msg;

static int stage_template(struct txn *txn, struct pcall *pc, struct fwd *f)
{
	if (sip_msg_parse(&stage_msg, txn->req, txn->req_len, false))
		return EINVAL;
	memset(f, 0, sizeof(*f));
	f->msg = &stage_msg;
	f->in_flow = &pc->in_flow;
	f->in_local = &pc->in_local;
	f->from = &pc->requester;
	f->record_route = pc->record_route;
	f->nstrip = pc->nstrip;
	memcpy(f->strip_routes, pc->strip_routes, sizeof(f->strip_routes));
	return 0;
}

/* Ring stage idx of the plan. Returns the number of branches sent. */
static unsigned run_stage(struct txn *txn, struct pcall *pc, unsigned idx)
{
	const struct plan_stage *st = &pc->plan->stages[idx];
	struct target targets[MAX_TARGETS];
	unsigned n = 0, sent;
	bool no_media = false;
	struct fwd f;

	P.forward_loop = false;
	pc->stage = idx;
	pc->stage_first = txn->nbranches;
	pc->stage_status = 0;
	pc->stage_timed_out = false;
	for (unsigned i = 0; i < st->nspecs && n < MAX_TARGETS; i++) {
		unsigned base = n, k = resolve_spec(st->specs[i], targets + n,
						    MAX_TARGETS - n, 0);
		for (unsigned j = 0; j < k; j++) {
			struct target t = targets[base + j];
			if (!already_tried(txn, &t))
				targets[n++] = t;
		}
	}
	pc->forward_loop |= P.forward_loop;
	if (!n || stage_template(txn, pc, &f))
		return 0;
	if (txn->nbranches + n > TXN_MAX_BRANCHES)
		n = TXN_MAX_BRANCHES - txn->nbranches;
	sent = send_branches(txn, f.msg, targets, n, &f, &no_media);
	log_info("proxy", "%s: stage %u rings %u target(s) call-id=%s",
		 pc->plan->label, idx + 1, sent, pc->call_id);
	if (sent && st->ring_s)
		loop_timer_start(P.loop, &pc->ring, (uint64_t)st->ring_s * 1000);
	return sent;
}

/* The current stage ended without an answer: ring the next stage whose
 * condition matches, if any. */
static bool advance(struct txn *txn, struct pcall *pc, bool nobody)
{
	enum stage_outcome out;

	if (!pc->plan || pc->cancelled || pc->final_sent)
		return false;
	loop_timer_cancel(P.loop, &pc->ring);
	out = features_outcome(pc->stage_status, pc->stage_timed_out, nobody);
	for (unsigned i = pc->stage + 1; i < pc->plan->nstages; i++) {
		if (!features_stage_matches(pc->plan->stages[i].when, out))
			continue;
		log_info("proxy", "%s: stage %u ended (%s), next stage %u "
			 "call-id=%s", pc->plan->label, pc->stage + 1,
			 features_outcome_name(out), i + 1, pc->call_id);
		if (run_stage(txn, pc, i))
			return true;
		out = OUTCOME_UNREACHABLE;
	}
	pc->nobody = out == OUTCOME_UNREACHABLE;
	return false;
}

static void stage_end(struct txn *txn, struct pcall *pc)
{
	if (!advance(txn, pc, false))
		send_best(txn, pc);
}

/* Ring time of a stage ran out: cancel its branches; their 487s end it. */
static void ring_timeout(void *arg)
{
	struct txn *txn = arg;
	struct pcall *pc = txn->user;

	if (!pc || pc->final_sent)
		return;
	pc->stage_timed_out = true;
	for (unsigned i = pc->stage_first; i < txn->nbranches; i++)
		txn_branch_cancel(txn->branch[i]);
}

/* A 3xx from a phone: ring its Contacts from here (RFC 3261 16.7 item
 * 4), at most 5 redirects per call and never a target twice. Returns
 * true when new branches went out. */
static bool follow_redirect(struct txn *txn, struct pcall *pc,
			    const struct sip_msg *msg)
{
	struct target targets[MAX_TARGETS];
	unsigned n = 0;
	bool no_media = false;
	struct fwd f;

	if (pc->redirects >= 5 || txn->method != SIP_INVITE)
		return false;
	for (int i = msg->first[SIP_HDR_CONTACT]; i >= 0 && n < MAX_TARGETS;
	     i = sip_hdr_next(msg, i, SIP_HDR_CONTACT)) {
		struct sip_addr ca;
		char uri[PLAN_SPEC_LEN];
		unsigned k;

		if (sip_addr_parse(&ca, msg->hdrs[i].value) || ca.star ||
		    ca.uri_str.l >= sizeof(uri))
			continue;
		pl_strcpy(uri, sizeof(uri), ca.uri_str);
		unsigned base = n;
		k = resolve_spec(uri, targets + n, MAX_TARGETS - n, 1);
		for (unsigned j = 0; j < k; j++) {
			struct target t = targets[base + j];
			/* a redirect may not make us a relay to strangers */
			if (!t.from_binding && !known_peer(&t.flow) &&
			    !conf_is_intranet_addr(P.conf, &t.flow.remote))
				continue;
			if (!already_tried(txn, &t))
				targets[n++] = t;
		}
	}
	if (!n || stage_template(txn, pc, &f))
		return false;
	pc->redirects++;
	return send_branches(txn, f.msg, targets, n, &f, &no_media) > 0;
}

/* Remove our Via from a response (and map 503 to 500, 16.7 item 6). */
static int strip_our_via(const struct sip_msg *msg, const struct pcall *pc,
			 const struct txn_branch *br, size_t *len)
{
	struct sip_editor *ed = &P.ed;

	sip_ed_init(ed, msg->buf, msg->len);
	sip_ed_delete_hdr(ed, msg, (unsigned)msg->first[SIP_HDR_VIA]);
	if (msg->status == 503)
		sip_ed_replace(ed, (struct pl){ msg->buf + 8, 3 }, "500");
	if (pc && br) {
		struct nat_party from = { .verdict = (enum nat_verdict)br->verdict,
					  .flow = br->flow, .local = br->local };
		/* The answering party may have moved behind another NAT
		 * than its binding says: classify the response itself. */
		char why[160];
		enum nat_verdict v = nat_classify(msg, &br->flow, P.conf, why,
						  sizeof(why));
		if (v != NAT_LOCAL && v != NAT_PUBLIC)
			from.verdict = v;
		nat_response_edits(ed, msg, &from, &pc->requester);
	}
	return sip_ed_apply(ed, P.out, sizeof(P.out), len);
}

/* An INVITE toward a phone behind NAT got nothing back, not even a 100:
 * the way in through its NAT is gone (the mapping expired) or the phone
 * is. Say which knob helps; the alarm's quiet period keeps it to one. */
static void note_nat_silence(const struct pcall *pc,
			     const struct txn_branch *br)
{
	char r[ADDR_STRLEN];
	const char *who = pc->legs && pc->legs[br->idx].user[0] ?
			  pc->legs[br->idx].user : br->target;

	addr_str(&br->flow.remote, r, sizeof(r));
	log_warn("proxy", "INVITE to %s via %s (%s) got no answer at all",
		 br->target, r, nat_verdict_name((enum nat_verdict)br->verdict));
	if (P.conf->keepalive_interval == 0)
		alarm_raise(ALARM_MINOR, "nat-phone-unreachable", who,
			    "an INVITE to %s through its NAT (%s) got no answer "
			    "at all: keepalives are off ([nat] keepalive_interval "
			    "= 0), so its NAT forgot the mapping. Set "
			    "keepalive_interval to 15 (or lower than the NAT's "
			    "UDP timeout)", br->target, r);
	else
		alarm_raise(ALARM_MINOR, "nat-phone-unreachable", who,
			    "an INVITE to %s through its NAT (%s) got no answer "
			    "at all although keepalives run every %us: the phone "
			    "is gone, or its NAT drops mappings faster; lower "
			    "keepalive_interval or make the phone use TCP",
			    br->target, r, P.conf->keepalive_interval);
}

static void on_response(struct txn *txn, struct txn_branch *br,
			struct sip_msg *msg, unsigned status)
{
	struct pcall *pc = txn->user;
	size_t len;

	if (!pc)
		return;
	if (!msg) {		/* timeout */
		if (txn->method == SIP_INVITE && br->silent &&
		    !br->cancelled && br->flow.proto == TP_UDP &&
		    (br->verdict == NAT_BEHIND || br->verdict == NAT_SUSPECT))
			note_nat_silence(pc, br);
		if (br->idx >= pc->stage_first &&
		    (!pc->stage_status || rank(408) < rank(pc->stage_status)))
			pc->stage_status = 408;
		if (!pc->final_sent && txn_all_branches_done(txn))
			stage_end(txn, pc);
		return;
	}
	if (status == 100)
		return;
	if (strip_our_via(msg, pc, br, &len)) {
		log_warn("proxy", "cannot forward %u response", status);
		return;
	}
	if (status < 200) {
		/* An early dialog: what a pickup would replace. */
		if (pc->legs && status > 100 && pl_isset(msg->to_tag) &&
		    msg->to_tag.l < EARLY_TAG_LEN)
			pl_strcpy(pc->legs[br->idx].early_tag, EARLY_TAG_LEN,
				  msg->to_tag);
		if (!pc->final_sent) {
			count_response(status);
			txn_respond(txn, status, P.out, len);
		}
		return;
	}
	if (status < 300) {
		/* Every 2xx goes up, even after another branch's 2xx. */
		count_response(status);
		if (txn->uas_state == TXN_UAS_TERMINATED ||
		    txn_respond(txn, status, P.out, len) == EALREADY) {
			struct tp_flow f = txn->uas_flow;
			tp_send(P.tp, &f, P.out, len);
		}
		if (!pc->final_sent) {
			pc->final_sent = true;
			txn_cancel_all(txn);
		}
		return;
	}
	if (pc->final_sent)
		return;
	if (status < 400 && follow_redirect(txn, pc, msg))
		return;		/* the redirect's targets ring instead */
	/* follow_redirect may have used P.out: strip again */
	if (status < 400 && strip_our_via(msg, pc, br, &len))
		return;
	keep_best(pc, msg->status == 503 ? 500 : status, P.out, len);
	if (br->idx >= pc->stage_first &&
	    (!pc->stage_status || rank(status) < rank(pc->stage_status)))
		pc->stage_status = status;
	if (status >= 600)
		txn_cancel_all(txn);
	if (txn_all_branches_done(txn))
		stage_end(txn, pc);
}

static const struct txn_ops proxy_txn_ops = {
	.on_response = on_response,
	.on_free = pcall_free,
};

/* ---- requests ---- */

static void log_request(const struct sip_msg *msg, const struct tp_flow *flow)
{
	char via[1024], r[ADDR_STRLEN];
	enum log_level lvl = msg->method_id == SIP_REGISTER ? LOG_INFO : LOG_DEBUG;

	if (!log_enabled(lvl))
		return;
	/* Administrators grep for "REGISTER sip" | grep received. */
	via_with_received(msg, flow, via, sizeof(via));
	{
		char ip[INET6_ADDRSTRLEN];
		addr_ip_str(&flow->remote, ip, sizeof(ip));
		/* received/rport always spelled out, whatever the Via says */
		log_write(lvl, "proxy", "%.*s %.*s from=%s:%s via=\"%s\" "
			  "received=%s rport=%u call-id=%.*s",
			  PL_FMT(msg->method), PL_FMT(msg->ruri_str),
			  tp_proto_name(flow->proto),
			  addr_str(&flow->remote, r, sizeof(r)), via, ip,
			  addr_port(&flow->remote), PL_FMT(msg->call_id));
	}
}

static bool source_is_gateway(const struct tp_flow *flow)
{
	for (unsigned i = 0; i < P.conf->nroutes; i++) {
		struct sip_uri u;
		struct sockaddr_storage sa;
		if (sip_uri_parse(&u, pl_from_str(P.conf->routes[i].uri)) == 0 &&
		    addr_from_ip(&sa, u.host, 0) == 0 &&
		    addr_ip_eq(&sa, &flow->remote))
			return true;
	}
	return false;
}

/* Somebody we may send in-dialog requests to without the sender proving
 * who it is: ourselves, the intranet, a gateway, a registered phone. */
static bool known_peer(const struct tp_flow *dest)
{
	return ip_is_mine(&dest->remote) ||
	       conf_is_intranet_addr(P.conf, &dest->remote) ||
	       source_is_gateway(dest) || reg_knows_ip(&dest->remote);
}

static void note_auth_failure(const struct tp_flow *flow)
{
	char ip[INET6_ADDRSTRLEN];
	const struct auth_failure *af = auth_last_failure();

	addr_ip_str(&flow->remote, ip, sizeof(ip));
	alarm_watch_auth_failure(af->user, af->unknown_user, ip);
}

static void handle_register(const struct sip_msg *msg,
			    const struct tp_flow *flow,
			    const struct sockaddr_storage *local,
			    struct txn *txn)
{
	char aor[256], user[64], extra[4096], challenge[1024];
	const char *reason = NULL;
	unsigned status;
	bool failed;

	if (!uri_is_ours(&msg->ruri) || !uri_is_ours(&msg->to.uri)) {
		reply(msg, flow, txn, 403, "Not Our Domain", NULL);
		return;
	}
	if (!msg->to.uri.user.l) {
		reply(msg, flow, txn, 400, "No User In To", NULL);
		return;
	}
	for (int i = msg->first[SIP_HDR_REQUIRE]; i >= 0;
	     i = sip_hdr_next(msg, i, SIP_HDR_REQUIRE)) {
		if (!pl_caseeq_str(msg->hdrs[i].value, "path")) {
			snprintf(extra, sizeof(extra), "Unsupported: %.*s\r\n",
				 PL_FMT(msg->hdrs[i].value));
			reply(msg, flow, txn, 420, NULL, extra);
			return;
		}
	}
	snprintf(aor, sizeof(aor), "%.*s@%s", PL_FMT(msg->to.uri.user),
		 P.conf->domain);
	if (P.conf->auth_required) {
		enum auth_outcome a = auth_check(msg, true, P.conf->domain,
						 P.store, user, sizeof(user),
						 challenge, sizeof(challenge),
						 &failed);
		if (failed) {
			char r[ADDR_STRLEN];
			P.stats.auth_failures++;
			log_notice("proxy", "REGISTER auth failed aor=%s from=%s",
				   aor, addr_str(&flow->remote, r, sizeof(r)));
			note_auth_failure(flow);
		}
		if (a == AUTH_CHALLENGE) {
			P.stats.auth_challenges++;
			reply(msg, flow, txn, 401, NULL, challenge);
			return;
		}
		if (a != AUTH_OK || !pl_eq_str(msg->to.uri.user, user)) {
			reply(msg, flow, txn, 403, "Auth User Does Not Match To",
			      NULL);
			return;
		}
	}
	status = reg_register(msg, aor, flow, local, extra, sizeof(extra),
			      &reason);
	reply(msg, flow, txn, status, reason, extra);
}

/* Authorise a dialog-creating request. Returns 0 to go on, or a status
 * already answered; *authed tells whether the sender is known. */
static unsigned authorize(const struct sip_msg *msg, const struct tp_flow *flow,
			  struct txn *txn, bool *authed)
{
	char user[64], challenge[1024];
	bool failed;
	enum auth_outcome a;

	*authed = false;
	if (source_is_gateway(flow)) {
		*authed = true;
		return 0;
	}
	if (!uri_is_ours(&msg->from.uri) || !P.conf->auth_required) {
		*authed = !P.conf->auth_required &&
			  uri_is_ours(&msg->from.uri);
		return 0;	/* anonymous: may reach local users only */
	}
	a = auth_check(msg, false, P.conf->domain, P.store, user, sizeof(user),
		       challenge, sizeof(challenge), &failed);
	if (failed) {
		P.stats.auth_failures++;
		note_auth_failure(flow);
	}
	if (a == AUTH_CHALLENGE) {
		P.stats.auth_challenges++;
		reply(msg, flow, txn, 407, NULL, challenge);
		return 407;
	}
	if (a != AUTH_OK || !pl_eq_str(msg->from.uri.user, user)) {
		reply(msg, flow, txn, 403, "From Does Not Match Credentials",
		      NULL);
		return 403;
	}
	*authed = true;
	return 0;
}

/* A REFER whose transfer target the policy refuses: answered here
 * (true). Any other request: false. */
static bool refer_refused(const struct sip_msg *msg,
			  const struct tp_flow *flow, struct txn *txn)
{
	unsigned status;
	const char *why;

	if (msg->method_id != SIP_REFER ||
	    !refer_check(msg, P.conf, uri_is_ours, &status, &why))
		return false;
	reply(msg, flow, txn, status, why, NULL);
	return true;
}

static bool needs_auth(const struct sip_msg *msg)
{
	if (pl_isset(msg->to_tag))
		return false;	/* in-dialog */
	switch (msg->method_id) {
	case SIP_INVITE: case SIP_SUBSCRIBE: case SIP_MESSAGE:
	case SIP_REFER: case SIP_PUBLISH: case SIP_OPTIONS: case SIP_NOTIFY:
	case SIP_METHOD_OTHER:
		return true;
	default:
		return false;
	}
}

static bool creates_dialog(const struct sip_msg *msg)
{
	if (pl_isset(msg->to_tag))
		return false;
	return msg->method_id == SIP_INVITE || msg->method_id == SIP_SUBSCRIBE ||
	       msg->method_id == SIP_REFER || msg->method_id == SIP_NOTIFY;
}

/* Stateless forwarding of an ACK for a 2xx (or of an ACK we have no txn
 * for) along its Route set / Request-URI. */
static void forward_stateless(const struct sip_msg *msg, struct fwd *f,
			      const struct sip_uri *next)
{
	struct target t;
	char branch[64];
	size_t len;
	struct reg_binding *b = NULL;

	memset(&t, 0, sizeof(t));
	if (next == &msg->ruri)
		b = reg_find_contact(msg->ruri_str);
	if (b) {
		t.flow = b->flow;
		t.local = b->local;
		if (t.flow.proto == TP_TCP && !tp_conn_alive(P.tp, t.flow.conn))
			t.flow.conn = 0;
	} else if (uri_dest(next, &t.flow) || !known_peer(&t.flow)) {
		P.stats.dropped++;
		return;
	}
	snprintf(branch, sizeof(branch), "%s%08x.s%016llx", TXN_BRANCH_PREFIX,
		 loop_hash(msg),
		 (unsigned long long)hash_pl(HASH_SEED, msg->via.branch));
	f->t = &t;
	f->branch = branch;
	f->record_route = false;
	if (build_forward(f, &len) == 0) {
		tp_send(P.tp, &t.flow, P.out, len);
		P.stats.stateless_acks++;
	} else {
		P.stats.dropped++;
		log_warn("proxy", "cannot forward %.*s call-id=%.*s",
			 PL_FMT(msg->method), PL_FMT(msg->call_id));
	}
}

/* A call to a user or group with features: run its plan. Returns false
 * when nothing is configured (plain routing follows). */
static bool start_plan(struct txn *txn, const struct sip_msg *msg,
		       const struct tp_flow *flow, struct fwd *f)
{
	char user[PLAN_SPEC_LEN];
	struct plan plan;
	struct pcall *pc;

	pl_strcpy(user, sizeof(user), msg->ruri.user);
	features_plan(P.store, user, &plan);
	if (!plan.nstages)
		return false;
	f->record_route = creates_dialog(msg);
	pc = pcall_attach(txn, msg, f);
	if (!pc || !(pc->plan = malloc(sizeof(plan)))) {
		reply(msg, flow, txn, 500, "Out Of Memory", NULL);
		return true;
	}
	*pc->plan = plan;
	if (!run_stage(txn, pc, 0) && !advance(txn, pc, true)) {
		pc->nobody = true;
		send_best(txn, pc);
	}
	return true;
}

/* ---- call pickup ---- */

/* An early dialog still ringing: 18x with a To tag, no final response,
 * no CANCEL under way. */
static bool branch_ringing(const struct pcall *pc, const struct txn_branch *br)
{
	return br->state == TXN_BR_PROCEEDING && br->status >= 180 &&
	       br->status < 200 && !br->cancelled && !br->cancel_wanted &&
	       pc->legs[br->idx].early_tag[0];
}

/* The oldest ringing call pk may take (the list is newest first), and
 * the branch whose early dialog the caller will replace. */
static struct pcall *find_ringing(const struct pickup *pk, unsigned *leg)
{
	for (struct pcall *pc = P.calls.prev; pc != &P.calls; pc = pc->prev) {
		struct txn *txn = pc->txn;

		if (!pc->legs || pc->is_pickup || pc->picked_by ||
		    pc->final_sent || pc->cancelled ||
		    txn->uas_state >= TXN_UAS_COMPLETED ||
		    strcmp(pc->caller, pk->picker) == 0)
			continue;
		for (unsigned i = 0; i < txn->nbranches; i++) {
			if (branch_ringing(pc, txn->branch[i]) &&
			    pickup_may_take(pk, pc->dialled, pc->legs[i].user)) {
				*leg = i;
				return pc;
			}
		}
	}
	return NULL;
}

/*
 * An INVITE to a pickup code from an authenticated local user: send it on
 * to the caller of the oldest matching ringing call, to the Contact of
 * the caller's INVITE and through the flow that INVITE came on (so it
 * crosses the caller's NAT), with a Replaces header for the early dialog.
 * Everything else is an ordinary forwarded INVITE: Record-Route, the
 * NAT agent's Contact and SDP edits (media relayed when either side is
 * NAT'ed), best-response selection.
 */
static void handle_pickup(struct txn *txn, const struct sip_msg *msg,
			  const struct tp_flow *flow, struct fwd *f,
			  struct pickup *pk)
{
	struct sip_msg *orig = &P.scratch;
	struct pcall *ringing, *pc;
	struct sip_addr contact;
	struct target t;
	const char *reason;
	unsigned status, leg;
	char picker[64];
	int ci;

	pl_strcpy(picker, sizeof(picker), msg->from.uri.user);
	if ((status = pickup_prepare(pk, P.store, picker, &reason))) {
		log_info("proxy", "pickup by %s of %.*s refused: %u %s "
			 "call-id=%.*s", picker, PL_FMT(msg->ruri.user), status,
			 reason, PL_FMT(msg->call_id));
		reply(msg, flow, txn, status, reason, NULL);
		return;
	}
	ringing = find_ringing(pk, &leg);
	if (!ringing) {
		log_info("proxy", "pickup by %s of %.*s: nothing rings "
			 "call-id=%.*s", picker, PL_FMT(msg->ruri.user),
			 PL_FMT(msg->call_id));
		reply(msg, flow, txn, 480, "Nothing To Pick Up", NULL);
		return;
	}
	memset(&t, 0, sizeof(t));
	if (sip_msg_parse(orig, ringing->txn->req, ringing->txn->req_len,
			  false) ||
	    (ci = orig->first[SIP_HDR_CONTACT]) < 0 ||
	    sip_addr_parse(&contact, orig->hdrs[ci].value) || contact.star ||
	    contact.uri_str.l >= sizeof(t.ruri) || !pl_isset(orig->from_tag) ||
	    pickup_headers(t.extra, sizeof(t.extra), orig->call_id,
			   orig->from_tag, ringing->legs[leg].early_tag)) {
		log_warn("proxy", "pickup by %s: the ringing call has no usable "
			 "Contact or From tag call-id=%s", picker,
			 ringing->call_id);
		reply(msg, flow, txn, 480, "Caller Cannot Be Reached", NULL);
		return;
	}
	pl_strcpy(t.ruri, sizeof(t.ruri), contact.uri_str);
	t.flow = ringing->in_flow;
	if (t.flow.proto == TP_TCP && !tp_conn_alive(P.tp, t.flow.conn))
		t.flow.conn = 0;	/* reconnect to the same address */
	t.local = ringing->in_local;
	t.verdict = ringing->requester.verdict;
	t.from_binding = true;		/* verdict known: the caller's */
	pl_strcpy(t.user, sizeof(t.user), orig->from.uri.user);
	snprintf(t.label, sizeof(t.label), "pickup %.240s", t.ruri);
	log_info("proxy", "pickup: %s picks up the call from %s to %s ringing "
		 "at %s (%s) call-id=%s early-tag=%s pickup-call-id=%.*s",
		 picker, ringing->from, ringing->to,
		 ringing->legs[leg].user[0] ? ringing->legs[leg].user : "-",
		 ringing->txn->branch[leg]->target, ringing->call_id,
		 ringing->legs[leg].early_tag, PL_FMT(msg->call_id));
	f->record_route = true;
	fork_targets(txn, msg, flow, &t, 1, f);
	pc = txn->user;
	if (pc) {
		pc->is_pickup = true;
		if (!pc->final_sent) {
			pc->picks = ringing;
			ringing->picked_by = pc;
		}
	}
}

static void handle_request(struct sip_msg *msg, const struct tp_flow *flow,
			   const struct sockaddr_storage *local)
{
	struct fwd f;
	struct nat_party from;
	struct txn *txn = NULL;
	struct target targets[MAX_TARGETS];
	unsigned ntargets = 0;
	const struct sip_uri *next = &msg->ruri;
	struct sip_addr route;
	int ridx;
	bool authed = false;
	uint32_t lh;

	if (msg->method_id < 16)
		P.stats.requests[msg->method_id]++;
	log_request(msg, flow);
	memset(&f, 0, sizeof(f));
	f.msg = msg;
	f.in_flow = flow;
	f.in_local = local;
	{
		char why[160];
		from.verdict = nat_classify(msg, flow, P.conf, why, sizeof(why));
		from.flow = *flow;
		if (!nat_advertised(&flow->remote, local, &from.local)) {
			/* Behind our NAT with no public address yet: never
			 * answer the outside with a private address. */
			static uint64_t last_log;
			if (loop_now() - last_log > 10000) {
				char r[ADDR_STRLEN];
				last_log = loop_now();
				log_err("proxy", "refusing %.*s from %s: behind_nat "
					"and the public address is not known yet "
					"(public_ip unset, STUN has not answered)",
					PL_FMT(msg->method),
					addr_str(&flow->remote, r, sizeof(r)));
			}
			if (msg->method_id != SIP_ACK)
				reply(msg, flow, NULL, 503, "Public Address Unknown",
				      "Retry-After: 30\r\n");
			return;
		}
		f.from = &from;
		log_debug("nat", "sender %s verdict=%s (%s)",
			  tp_proto_name(flow->proto),
			  nat_verdict_name(from.verdict), why);
	}

	/* ACK: absorbed by its INVITE txn (non-2xx) or forwarded. */
	if (msg->method_id == SIP_ACK) {
		txn = txn_find_invite(msg);
		if (txn && txn->uas_state == TXN_UAS_COMPLETED) {
			txn_ack(txn);
			return;
		}
		if (txn && txn->uas_state == TXN_UAS_CONFIRMED)
			return;
		ridx = msg->first[SIP_HDR_ROUTE];
		while (ridx >= 0 && f.nstrip < 4 &&
		       sip_addr_parse(&route, msg->hdrs[ridx].value) == 0 &&
		       host_is_mine(route.uri.host, route.uri.port)) {
			f.strip_routes[f.nstrip++] = ridx;
			ridx = sip_hdr_next(msg, ridx, SIP_HDR_ROUTE);
		}
		if (ridx >= 0 && sip_addr_parse(&route, msg->hdrs[ridx].value) == 0)
			next = &route.uri;
		if (next == &msg->ruri && uri_is_ours(&msg->ruri) &&
		    !msg->ruri.user.l)
			return;	/* ACK for a response we generated */
		forward_stateless(msg, &f, next);
		return;
	}

	/* CANCEL: answer it, cancel the branches of its INVITE. */
	if (msg->method_id == SIP_CANCEL) {
		txn = txn_find_invite(msg);
		if (!txn) {
			reply(msg, flow, NULL, 481, NULL, NULL);
			return;
		}
		reply(msg, flow, NULL, 200, NULL, NULL);
		if (txn->user) {
			struct pcall *pc = txn->user;
			pc->cancelled = true;
			txn_cancel_all(txn);
			if (!pc->final_sent && txn->nbranches == 0)
				send_best(txn, pc);
		} else if (txn->uas_state < TXN_UAS_COMPLETED) {
			reply_txn(txn, 487, NULL);
		}
		return;
	}

	if (txn_find_request(msg))
		return;		/* retransmission, answered by its txn */

	if (msg->max_forwards == 0) {
		if (msg->method_id == SIP_OPTIONS && uri_is_ours(&msg->ruri) &&
		    !msg->ruri.user.l)
			reply(msg, flow, NULL, 200, NULL,
			      "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, "
			      "SUBSCRIBE, NOTIFY, REFER, MESSAGE, INFO, UPDATE, PRACK\r\n");
		else
			reply(msg, flow, NULL, 483, NULL, NULL);
		return;
	}
	if (msg->first[SIP_HDR_PROXY_REQUIRE] >= 0) {
		char extra[1024];
		size_t n = 0;
		for (int i = msg->first[SIP_HDR_PROXY_REQUIRE]; i >= 0;
		     i = sip_hdr_next(msg, i, SIP_HDR_PROXY_REQUIRE)) {
			int r = snprintf(extra + n, sizeof(extra) - n,
					 "Unsupported: %.*s\r\n",
					 PL_FMT(msg->hdrs[i].value));
			if (r < 0 || (size_t)r >= sizeof(extra) - n)
				break;
			n += (size_t)r;
		}
		reply(msg, flow, NULL, 420, NULL, extra);
		return;
	}
	if (!pl_caseeq_str(msg->ruri.scheme, "sip") &&
	    !pl_caseeq_str(msg->ruri.scheme, "sips")) {
		reply(msg, flow, NULL, 416, NULL, NULL);
		return;
	}
	lh = loop_hash(msg);
	if (is_loop(msg, lh)) {
		P.stats.loops++;
		reply(msg, flow, NULL, 482, NULL, NULL);
		return;
	}

	{
		struct tp_flow rf;
		response_flow(msg, flow, &rf);
		txn = txn_create(msg, &rf, &proxy_txn_ops, NULL);
	}
	if (!txn) {
		reply(msg, flow, NULL, 503, "Overloaded", "Retry-After: 5\r\n");
		return;
	}
	if (msg->method_id == SIP_INVITE)
		reply(msg, flow, txn, 100, NULL, NULL);
	/* Transfer targets: in-dialog REFERs at once; the others once their
	 * sender is authorised (a stranger gets 407, not the policy). */
	if (!needs_auth(msg) && refer_refused(msg, flow, txn))
		return;

	/* Route processing (16.4). Strict routing first: our own
	 * Record-Route URI in the Request-URI. */
	ridx = msg->first[SIP_HDR_ROUTE];
	if (host_is_mine(msg->ruri.host, msg->ruri.port) && !msg->ruri.user.l &&
	    ridx >= 0) {
		int last = ridx;
		for (int i = ridx; i >= 0; i = sip_hdr_next(msg, i, SIP_HDR_ROUTE))
			last = i;
		if (sip_addr_parse(&route, msg->hdrs[last].value) == 0) {
			static char strict[512];
			pl_strcpy(strict, sizeof(strict), route.uri_str);
			f.strict_ruri = strict;
			f.strip_routes[f.nstrip++] = last;
			if (last == ridx)
				ridx = -1;
		}
	}
	while (ridx >= 0 && f.nstrip < 4 &&
	       sip_addr_parse(&route, msg->hdrs[ridx].value) == 0 &&
	       host_is_mine(route.uri.host, route.uri.port)) {
		f.strip_routes[f.nstrip++] = ridx;
		ridx = sip_hdr_next(msg, ridx, SIP_HDR_ROUTE);
	}
	if (ridx >= 0) {
		/* A Route set remains: in-dialog or preloaded; follow it. */
		struct target *t = &targets[0];
		if (sip_addr_parse(&route, msg->hdrs[ridx].value)) {
			reply(msg, flow, txn, 400, "Bad Route", NULL);
			return;
		}
		memset(t, 0, sizeof(*t));
		if (needs_auth(msg) && (authorize(msg, flow, txn, &authed) ||
					refer_refused(msg, flow, txn)))
			return;
		if (uri_dest(&route.uri, &t->flow)) {
			reply(msg, flow, txn, 404, "Route Not Reachable", NULL);
			return;
		}
		if (!authed && !known_peer(&t->flow)) {
			/* A Route to a stranger from a stranger: relaying. */
			P.stats.relay_denied++;
			reply(msg, flow, txn, 403, "Relaying Denied", NULL);
			return;
		}
		snprintf(t->label, sizeof(t->label), "%.*s",
			 PL_FMT(route.uri_str));
		f.record_route = creates_dialog(msg);
		fork_targets(txn, msg, flow, targets, 1, &f);
		return;
	}

	if (f.strict_ruri) {
		/* Re-read the target from the strict-route replacement. */
		struct sip_uri su;
		if (sip_uri_parse(&su, pl_from_str(f.strict_ruri)) == 0 &&
		    !uri_is_ours(&su)) {
			struct target *t = &targets[0];
			memset(t, 0, sizeof(*t));
			if (uri_dest(&su, &t->flow) ||
			    (!known_peer(&t->flow) && !authed)) {
				reply(msg, flow, txn, 403, "Relaying Denied", NULL);
				return;
			}
			snprintf(t->label, sizeof(t->label), "%s", f.strict_ruri);
			if (needs_auth(msg) && refer_refused(msg, flow, txn))
				return;
			fork_targets(txn, msg, flow, targets, 1, &f);
			return;
		}
	}

	/* Requests for the server itself. */
	if (uri_is_ours(&msg->ruri) && !msg->ruri.user.l) {
		if (msg->method_id == SIP_REGISTER)
			handle_register(msg, flow, local, txn);
		else if (msg->method_id == SIP_OPTIONS)
			reply(msg, flow, txn, 200, NULL,
			      "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, "
			      "SUBSCRIBE, NOTIFY, REFER, MESSAGE, INFO, UPDATE, PRACK\r\n"
			      "Accept: application/sdp\r\nSupported: path\r\n");
		else
			reply(msg, flow, txn, 404, "No User Part", NULL);
		return;
	}
	if (msg->method_id == SIP_REGISTER) {
		if (uri_is_ours(&msg->ruri))
			handle_register(msg, flow, local, txn);
		else
			reply(msg, flow, txn, 403, "Not Our Domain", NULL);
		return;
	}

	if (needs_auth(msg) && (authorize(msg, flow, txn, &authed) ||
				refer_refused(msg, flow, txn)))
		return;

	if (uri_is_ours(&msg->ruri)) {
		char aor[256];
		struct reg_aor *a;
		const struct conf_route *rt;

		if (msg->method_id == SIP_INVITE && !pl_isset(msg->to_tag)) {
			struct pickup pk;

			if (pickup_code(P.conf, msg->ruri.user, &pk)) {
				/* Only a local user picks up, never a
				 * gateway or a stranger. */
				if (!authed || source_is_gateway(flow) ||
				    !uri_is_ours(&msg->from.uri) ||
				    !msg->from.uri.user.l) {
					reply(msg, flow, txn, 403,
					      "Pickup Needs A Local User", NULL);
					return;
				}
				handle_pickup(txn, msg, flow, &f, &pk);
				return;
			}
		}
		if (msg->method_id == SIP_INVITE && msg->ruri.user.l < PLAN_SPEC_LEN &&
		    start_plan(txn, msg, flow, &f))
			return;
		snprintf(aor, sizeof(aor), "%.*s@%s", PL_FMT(msg->ruri.user),
			 P.conf->domain);
		a = reg_lookup(aor);
		for (struct reg_binding *b = a ? a->bindings : NULL;
		     b && ntargets < MAX_TARGETS; b = b->next)
			target_from_binding(&targets[ntargets++], b);
		if (!ntargets && authed &&
		    (rt = conf_route_lookup(P.conf, msg->ruri.user.p,
					    msg->ruri.user.l))) {
			if (gateway_target(msg->ruri.user, rt, &targets[0])) {
				reply(msg, flow, txn, 503, "Gateway Unusable", NULL);
				return;
			}
			ntargets = 1;
		}
		if (!ntargets) {
			struct store_user u;
			char name[64];
			pl_strcpy(name, sizeof(name), msg->ruri.user);
			if (store_user_get(P.store, name, &u) == 0)
				reply(msg, flow, txn, 480, "Not Registered", NULL);
			else
				reply(msg, flow, txn, 404, NULL, NULL);
			return;
		}
		f.record_route = creates_dialog(msg);
		fork_targets(txn, msg, flow, targets, ntargets, &f);
		return;
	}

	/* A Request-URI that is a registered contact (in-dialog without a
	 * Route set) or a gateway: allowed; anything else is relaying. */
	{
		struct reg_binding *b = reg_find_contact(msg->ruri_str);
		struct target *t = &targets[0];
		memset(t, 0, sizeof(*t));
		if (b) {
			target_from_binding(t, b);
			t->ruri[0] = '\0';
		} else if (pl_isset(msg->to_tag) &&
			   uri_dest(&msg->ruri, &t->flow) == 0 &&
			   known_peer(&t->flow)) {
			/* In-dialog to a peer we serve: the dialog was
			 * authorised when it was created. */
			snprintf(t->label, sizeof(t->label), "%.*s",
				 PL_FMT(msg->ruri_str));
		} else if (authed && uri_dest(&msg->ruri, &t->flow) == 0 &&
			   (conf_is_intranet_addr(P.conf, &t->flow.remote) ||
			    source_is_gateway(&t->flow))) {
			snprintf(t->label, sizeof(t->label), "%.*s",
				 PL_FMT(msg->ruri_str));
		} else {
			P.stats.relay_denied++;
			reply(msg, flow, txn, 403, "Relaying Denied", NULL);
			return;
		}
		f.record_route = creates_dialog(msg);
		fork_targets(txn, msg, flow, targets, 1, &f);
	}
}

/* ---- responses ---- */

static void handle_response(struct sip_msg *msg, const struct tp_flow *flow)
{
	const size_t plen = sizeof(TXN_BRANCH_PREFIX) - 1;
	struct txn_branch *br;

	if (msg->via.branch.l < plen ||
	    memcmp(msg->via.branch.p, TXN_BRANCH_PREFIX, plen) != 0) {
		P.stats.dropped++;
		return;		/* not ours */
	}
	if (nat_keepalive_response(msg))
		return;
	br = txn_match_response(msg);
	if (br) {
		if (txn_branch_on_response(br, msg) &&
		    !(msg->status >= 200 && msg->status < 300 &&
		      msg->cseq_method_id == SIP_INVITE))
			return;
		on_response(br->txn, br, msg, msg->status);
		txn_check_free(br->txn);
		return;
	}
	/* No branch: a stray or a retransmission after the txn ended (its
	 * server side keeps matching 2xx for 64*T1, RFC 6026). Forwarding
	 * strays along their Via would make us a reflector: drop. */
	(void)flow;
	P.stats.dropped++;
}

void proxy_recv(void *arg, struct sip_msg *msg, int parse_err,
		const struct tp_flow *flow,
		const struct sockaddr_storage *local)
{
	(void)arg;
	if (parse_err) {
		char r[ADDR_STRLEN];
		P.stats.bad_requests++;
		log_info("proxy", "bad message from %s:%s: %s",
			 tp_proto_name(flow->proto),
			 addr_str(&flow->remote, r, sizeof(r)),
			 msg->err_reason ? msg->err_reason : "parse error");
		/* Answer whenever the headers a response copies are there,
		 * even if one of them is malformed (RFC 4475 asks for 400s). */
		bool can = msg->can_reply ||
			   (msg->nvia && pl_isset(msg->via.host) &&
			    msg->first[SIP_HDR_FROM] >= 0 &&
			    msg->first[SIP_HDR_TO] >= 0 &&
			    msg->first[SIP_HDR_CALL_ID] >= 0 &&
			    msg->first[SIP_HDR_CSEQ] >= 0);
		if (parse_err == EBADMSG && msg->is_request && can &&
		    msg->method_id != SIP_ACK)
			reply(msg, flow, NULL, msg->err_status ? msg->err_status : 400,
			      msg->err_reason, NULL);
		return;
	}
	if (msg->is_request)
		handle_request(msg, flow, local);
	else
		handle_response(msg, flow);
}

json_t *proxy_calls_json(void)
{
	json_t *arr = json_array();

	for (struct pcall *pc = P.calls.next; pc && pc != &P.calls; pc = pc->next) {
		json_t *o = json_object(), *legs = json_array();
		struct txn *txn = pc->txn;
		static const char *const st[] = { "trying", "proceeding",
			"completed", "confirmed", "accepted", "terminated" };
		for (unsigned i = 0; i < txn->nbranches; i++) {
			json_t *l = json_object();
			char r[ADDR_STRLEN];
			json_object_set_new(l, "target", json_string(txn->branch[i]->target));
			json_object_set_new(l, "status", json_integer(txn->branch[i]->status));
			json_object_set_new(l, "transport",
					    json_string(tp_proto_name(txn->branch[i]->flow.proto)));
			json_object_set_new(l, "remote", json_string(
				addr_str(&txn->branch[i]->flow.remote, r, sizeof(r))));
			json_array_append_new(legs, l);
		}
		json_object_set_new(o, "id", json_sprintf("%08x", txn->id));
		json_object_set_new(o, "call_id", json_string(pc->call_id));
		json_object_set_new(o, "from", json_string(pc->from));
		json_object_set_new(o, "to", json_string(pc->to));
		json_object_set_new(o, "state", json_string(st[txn->uas_state]));
		json_object_set_new(o, "start", json_integer(pc->started));
		json_object_set_new(o, "legs", legs);
		json_array_append_new(arr, o);
	}
	return arr;
}

int proxy_init(struct loop *loop, struct transport *tp,
	       const struct conf *conf, struct store *store)
{
	P.loop = loop;
	P.tp = tp;
	P.conf = conf;
	P.store = store;
	P.calls.next = P.calls.prev = &P.calls;
	collect_my_ips();
	return 0;
}

void proxy_close(void)
{
}
