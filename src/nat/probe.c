/*
 * probe.c - the active NAT check. A phone whose REGISTER looks public
 * (Via and Contact name its source address and port, no private address
 * left anywhere) may still sit behind a NAT: a SIP ALG on its router
 * rewrote the message to the mapped address, or the phone learnt that
 * address by STUN. Such a NAT lets in only what comes from where the
 * phone sent to (port-restricted or symmetric), so pinhole asks from
 * elsewhere: an OPTIONS to the contact from a fresh local port.
 *
 *   answered                 -> public, as it claims (the binding keeps
 *                               "public", the evidence says so)
 *   silence, ICMP unreachable -> nonat-suspect: the phone registered from
 *                               that very address a moment ago, so nothing
 *                               listening there for other senders means a
 *                               NAT filters it (a Linux router answers ICMP
 *                               for a filtered mapping, most others drop)
 *
 * The OPTIONS leaves before the 200 OK to the REGISTER, so a phone that is
 * still waiting for its answer is there to reply. Retransmitted at 0.5 s
 * and 1.5 s; no answer by 3.5 s is the verdict. A full-cone NAT or an
 * address-restricted one (we send from the same IP) lets the check
 * through: those phones stay "public", which is what they are for us,
 * but they get no keepalives; docs/pinhole.conf.5.md says so.
 *
 * Owns one connected UDP socket per probe under way (at most PROBE_MAX;
 * more are skipped and counted, the binding stays public). Loopback
 * sources are never probed: no NAT fits between us and 127.0.0.1.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conf/conf.h"
#include "core/loop.h"
#include "log/log.h"
#include "nat/nat.h"
#include "registrar/registrar.h"
#include "util/addr.h"

#define PROBE_MAX 256
#define PROBE_PREFIX "z9hG4bKphpr."
static const unsigned retrans_ms[] = { 500, 1000, 2000 };	/* gaps */
#define WHY_ICMP "looks public, but an OPTIONS from another port of ours " \
		 "met ICMP port unreachable (a NAT filters it: SIP ALG or " \
		 "phone-side STUN)"
#define WHY_SILENT "looks public, but an OPTIONS from another port of " \
		   "ours got no answer (a NAT filters it: SIP ALG or " \
		   "phone-side STUN)"
#define WHY_ANSWERED "answered an OPTIONS from another port (active check)"

struct probe {
	struct probe *next;
	struct loop_timer timer;
	int fd;
	uint32_t id;		/* binding */
	unsigned tries;
	struct sockaddr_storage remote;	/* the binding's public address */
	char branch[48];
	char msg[1536];
	size_t len;
};

static struct {
	struct loop *loop;
	const struct conf *conf;
	struct probe *list;
	unsigned n;
	uint32_t seq;
	uint64_t sent, answered, filtered, skipped;
} PR;

bool nat_probe_wanted(const struct sockaddr_storage *remote)
{
	if (remote->ss_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)remote)
				      ->sin_addr.s_addr) >> 24) != 127;
	if (remote->ss_family == AF_INET6)
		return !IN6_IS_ADDR_LOOPBACK(
			&((const struct sockaddr_in6 *)remote)->sin6_addr);
	return false;
}

static void probe_free(struct probe *p)
{
	struct probe **pp;

	for (pp = &PR.list; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	loop_timer_cancel(PR.loop, &p->timer);
	if (p->fd >= 0) {
		loop_fd_del(PR.loop, p->fd);
		close(p->fd);
	}
	PR.n--;
	free(p);
}

static void finish(struct probe *p, bool answered, const char *why)
{
	struct sockaddr_storage remote = p->remote;
	uint32_t id = p->id;

	if (answered)
		PR.answered++;
	else
		PR.filtered++;
	probe_free(p);
	reg_probe_result(id, &remote, answered, why);
}

static void on_read(int fd, int events, void *arg)
{
	struct probe *p = arg;
	char buf[2048];
	ssize_t n;

	(void)events;
	for (;;) {
		n = recv(fd, buf, sizeof(buf) - 1, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ECONNREFUSED)
				finish(p, false, WHY_ICMP);
			return;	/* else EAGAIN or transient: wait */
		}
		buf[n] = '\0';
		if (n > 8 && memcmp(buf, "SIP/2.0 ", 8) == 0 &&
		    strstr(buf, p->branch)) {
			finish(p, true, WHY_ANSWERED);
			return;
		}
	}
}

static void on_timer(void *arg)
{
	struct probe *p = arg;
	ssize_t n;

	if (p->tries >= sizeof(retrans_ms) / sizeof(retrans_ms[0])) {
		finish(p, false, WHY_SILENT);
		return;
	}
	n = send(p->fd, p->msg, p->len, MSG_NOSIGNAL);
	if (n < 0 && errno == ECONNREFUSED) {
		finish(p, false, WHY_ICMP);	/* the error is the answer */
		return;
	}
	PR.sent++;
	loop_timer_start(PR.loop, &p->timer, retrans_ms[p->tries++]);
}

static int open_socket(const struct reg_binding *b, char *host, size_t hcap,
		       unsigned *port)
{
	struct sockaddr_storage bind_to = b->local, me, adv;
	socklen_t len = sizeof(me);
	int fd = socket(b->flow.remote.ss_family,
			SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	/* Same local IP as the phone talked to (so the check says nothing
	 * about address filtering), a port of the kernel's choosing. */
	if (bind_to.ss_family == b->flow.remote.ss_family &&
	    !addr_is_any(&bind_to)) {
		addr_set_port(&bind_to, 0);
		if (bind(fd, (struct sockaddr *)&bind_to, addr_len(&bind_to)))
			goto fail;
	}
	if (connect(fd, (const struct sockaddr *)&b->flow.remote,
		    addr_len(&b->flow.remote)) ||
	    getsockname(fd, (struct sockaddr *)&me, &len))
		goto fail;
	/* Behind our own NAT the Via names the public address; rport
	 * brings the answer back through that NAT's mapping. */
	if (!nat_advertised(&b->flow.remote, &me, &adv))
		goto fail;
	addr_host_str(&adv, host, hcap);
	*port = addr_port(&me);
	return fd;
fail:
	close(fd);
	return -1;
}

void nat_probe(const struct reg_binding *b)
{
	struct probe *p;
	char host[ADDR_STRLEN], tag[32];
	unsigned port;

	if (PR.n >= PROBE_MAX || !(p = calloc(1, sizeof(*p)))) {
		PR.skipped++;
		log_warn("nat", "active check skipped aor=%s contact=%s: %u "
			 "checks under way", b->aor->aor, b->contact, PR.n);
		return;
	}
	p->fd = open_socket(b, host, sizeof(host), &port);
	if (p->fd < 0) {
		PR.skipped++;
		log_warn("nat", "active check skipped aor=%s contact=%s: no "
			 "socket (%s)", b->aor->aor, b->contact,
			 strerror(errno));
		free(p);
		return;
	}
	p->id = b->id;
	p->remote = b->flow.remote;
	snprintf(p->branch, sizeof(p->branch), PROBE_PREFIX "%x.%x", b->id,
		 ++PR.seq);
	snprintf(tag, sizeof(tag), "pr%x-%x", b->id, PR.seq);
	p->len = nat_options_build(p->msg, sizeof(p->msg), b->contact, host,
				   port, p->branch, tag, PR.conf->domain);
	loop_timer_init(&p->timer, on_timer, p);
	p->next = PR.list;
	PR.list = p;
	PR.n++;
	if (!p->len || loop_fd_set(PR.loop, p->fd, LOOP_READ, on_read, p)) {
		PR.skipped++;
		probe_free(p);
		return;
	}
	log_debug("nat", "active check aor=%s contact=%s from port %u",
		  b->aor->aor, b->contact, port);
	on_timer(p);
}

void nat_probe_stats(uint64_t *sent, uint64_t *answered, uint64_t *filtered)
{
	*sent = PR.sent;
	*answered = PR.answered;
	*filtered = PR.filtered;
}

void nat_probe_start(struct loop *loop, const struct conf *conf)
{
	PR.loop = loop;
	PR.conf = conf;
}

void nat_probe_set_conf(const struct conf *conf)
{
	PR.conf = conf;
}

void nat_probe_stop(void)
{
	while (PR.list)
		probe_free(PR.list);
}
