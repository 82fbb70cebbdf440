/*
 * transport.c - UDP and TCP SIP transport (see transport.h).
 *
 * UDP: one socket per listen address, IP_PKTINFO tells which local address
 * a datagram reached so that replies and Record-Route name the interface
 * the peer actually used. Sends go out of the same socket, so the peer's
 * NAT sees the same 5-tuple it opened.
 *
 * TCP: connections are kept in two intrusive hashes (by id and by remote
 * address). Reads accumulate in a per-connection buffer capped at
 * TP_TCP_RBUF_MAX; sip_msg_parse in stream mode frames messages by
 * Content-Length. Writes are attempted at once and the rest queued (capped
 * at TP_TCP_WBUF_MAX; a peer that does not read is disconnected). Idle
 * connections are closed after TP_TCP_IDLE_MS, which outlives a
 * registration refresh interval; keepalive CRLFs count as activity.
 *
 * The received message struct is one static instance: the loop is single
 * threaded and the upper layers copy what they keep.
 */
#include "transport/transport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/loop.h"
#include "log/log.h"
#include "util/addr.h"
#include "util/hash.h"

#define TP_UDP_MAX 65535
#define TP_TCP_RBUF_MAX (64 * 1024)
#define TP_TCP_WBUF_MAX (1024 * 1024)
#define TP_TCP_IDLE_MS (3900 * 1000ULL)
#define TP_TCP_MAX_CONNS 20000
#define SRC_CACHE 64

struct tcp_conn {
	struct hash_node by_id;
	struct hash_node by_addr;
	struct transport *tp;
	uint32_t id;
	int fd;
	bool connecting;
	struct sockaddr_storage remote;
	struct sockaddr_storage local;
	char *rbuf;
	size_t rlen, rcap;
	char *wbuf;
	size_t wlen, wcap;
	struct loop_timer idle;
};

struct src_cache_entry {
	struct sockaddr_storage dest;	/* port 0 */
	struct sockaddr_storage local;
	uint64_t expires;
};

struct transport {
	struct loop *loop;
	tp_recv_fn *recv;
	void *arg;
	tp_stun_fn *stun;
	void *stun_arg;
	tp_tap_fn *tap;
	void *tap_arg;
	struct sockaddr_storage listen;
	uint16_t port;
	int udp_fd;
	int tcp_fd;
	uint32_t next_conn_id;
	struct hash conns_by_id;
	struct hash conns_by_addr;
	struct tp_stats stats;
	struct src_cache_entry src_cache[SRC_CACHE];
	unsigned src_cache_next;
};

static struct sip_msg rx_msg;
static char udp_buf[TP_UDP_MAX + 1];

const char *tp_proto_name(enum tp_proto proto)
{
	return proto == TP_TCP ? "tcp" : "udp";
}

const char *tp_proto_upper(enum tp_proto proto)
{
	return proto == TP_TCP ? "TCP" : "UDP";
}

uint16_t tp_port(const struct transport *tp)
{
	return tp->port;
}

const struct tp_stats *tp_stats(const struct transport *tp)
{
	return &tp->stats;
}

static uint64_t addr_hash(const struct sockaddr_storage *sa)
{
	uint64_t h = HASH_SEED;
	uint16_t port = addr_port(sa);

	if (sa->ss_family == AF_INET)
		h = hash_bytes(h, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	else
		h = hash_bytes(h, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
	return hash_bytes(h, &port, sizeof(port));
}

/* Every SIP message in or out passes here: the tap, then the debug log.
 * msg: the parsed message (received and clean) or NULL. */
static void log_message(struct transport *tp, const char *dir,
			enum tp_proto proto,
			const struct sockaddr_storage *local,
			const struct sockaddr_storage *remote,
			const char *buf, size_t len, const struct sip_msg *msg)
{
	char l[ADDR_STRLEN], r[ADDR_STRLEN];

	if (tp->tap)
		tp->tap(tp->tap_arg, strcmp(dir, "recv") != 0, proto, local,
			remote, buf, len, msg);
	if (!log_enabled(LOG_DEBUG))
		return;
	addr_str(local, l, sizeof(l));
	addr_str(remote, r, sizeof(r));
	log_debug("transport", "%s %zu bytes %s %s %s %s\n%.*s", dir, len,
		  tp_proto_name(proto), l, strcmp(dir, "recv") ? "->" : "<-",
		  r, (int)(len > 12000 ? 12000 : len), buf);
}

static void deliver(struct transport *tp, const char *buf, size_t len,
		    enum tp_proto proto, uint32_t conn,
		    const struct sockaddr_storage *remote,
		    const struct sockaddr_storage *local)
{
	struct tp_flow flow = { .proto = proto, .sock = 0, .conn = conn };
	int err;

	flow.remote = *remote;
	err = sip_msg_parse(&rx_msg, buf, len, false);
	if (err == ENODATA) {
		tp->stats.rx_keepalive++;
		return;
	}
	tp->stats.rx_msgs++;
	tp->stats.rx_bytes += len;
	log_message(tp, "recv", proto, local, remote, buf, len,
		    err ? NULL : &rx_msg);
	if (err)
		tp->stats.rx_bad++;
	tp->recv(tp->arg, &rx_msg, err, &flow, local);
}

/* ---- UDP ---- */

static void udp_readable(int fd, int events, void *arg)
{
	struct transport *tp = arg;

	/* Bounded batch per wakeup so TCP and timers get their turn. */
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage remote, local;
		char cbuf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
		struct iovec iov = { udp_buf, TP_UDP_MAX };
		struct msghdr mh = {
			.msg_name = &remote, .msg_namelen = sizeof(remote),
			.msg_iov = &iov, .msg_iovlen = 1,
			.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
		};
		ssize_t n = recvmsg(fd, &mh, 0);

		if (n < 0)
			return;
		local = tp->listen;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c;
		     c = CMSG_NXTHDR(&mh, c)) {
			if (c->cmsg_level == IPPROTO_IP &&
			    c->cmsg_type == IP_PKTINFO) {
				struct in_pktinfo pi;
				memcpy(&pi, CMSG_DATA(c), sizeof(pi));
				((struct sockaddr_in *)&local)->sin_addr =
					pi.ipi_addr;
			} else if (c->cmsg_level == IPPROTO_IPV6 &&
				   c->cmsg_type == IPV6_PKTINFO) {
				struct in6_pktinfo pi;
				memcpy(&pi, CMSG_DATA(c), sizeof(pi));
				((struct sockaddr_in6 *)&local)->sin6_addr =
					pi.ipi6_addr;
			}
		}
		if (tp->stun && n >= 20 && (udp_buf[0] & 0xc0) == 0 &&
		    memcmp(udp_buf + 4, "\x21\x12\xa4\x42", 4) == 0) {
			tp->stun(tp->stun_arg, (const uint8_t *)udp_buf,
				 (size_t)n, &remote);
			continue;
		}
		deliver(tp, udp_buf, (size_t)n, TP_UDP, 0, &remote, &local);
	}
}

/* ---- TCP ---- */

static void conn_close(struct tcp_conn *c, const char *why)
{
	struct transport *tp = c->tp;
	char r[ADDR_STRLEN];

	log_info("transport", "tcp close conn=%u remote=%s reason=%s", c->id,
		 addr_str(&c->remote, r, sizeof(r)), why);
	loop_fd_del(tp->loop, c->fd);
	loop_timer_cancel(tp->loop, &c->idle);
	close(c->fd);
	hash_remove(&tp->conns_by_id, &c->by_id);
	hash_remove(&tp->conns_by_addr, &c->by_addr);
	tp->stats.tcp_closed++;
	tp->stats.tcp_open--;
	free(c->rbuf);
	free(c->wbuf);
	free(c);
}

static void conn_idle(void *arg)
{
	conn_close(arg, "idle");
}

static void conn_io(int fd, int events, void *arg);

static int conn_flush(struct tcp_conn *c)
{
	while (c->wlen) {
		ssize_t n = send(c->fd, c->wbuf, c->wlen, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			return errno;
		}
		memmove(c->wbuf, c->wbuf + n, c->wlen - (size_t)n);
		c->wlen -= (size_t)n;
	}
	loop_fd_set(c->tp->loop, c->fd,
		    LOOP_READ | (c->wlen ? LOOP_WRITE : 0), conn_io, c);
	return 0;
}

static void conn_read(struct tcp_conn *c)
{
	struct transport *tp = c->tp;

	for (;;) {
		ssize_t n;

		if (c->rcap - c->rlen < 4096) {
			size_t cap = c->rcap ? c->rcap * 2 : 8192;
			char *b;
			if (cap > TP_TCP_RBUF_MAX)
				cap = TP_TCP_RBUF_MAX;
			if (cap <= c->rlen) {
				conn_close(c, "message too large");
				return;
			}
			b = realloc(c->rbuf, cap);
			if (!b) {
				conn_close(c, "out of memory");
				return;
			}
			c->rbuf = b;
			c->rcap = cap;
		}
		n = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0);
		if (n == 0) {
			conn_close(c, "peer closed");
			return;
		}
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			conn_close(c, strerror(errno));
			return;
		}
		c->rlen += (size_t)n;
		loop_timer_start(tp->loop, &c->idle, TP_TCP_IDLE_MS);

		/* Frame and deliver every complete message. */
		size_t off = 0;
		uint32_t id = c->id;
		while (off < c->rlen) {
			int err = sip_msg_parse(&rx_msg, c->rbuf + off,
						c->rlen - off, true);
			if (err == EAGAIN)
				break;
			if (err == ENODATA) {
				/* RFC 5626 keepalive: answer a double CRLF. */
				if (rx_msg.len >= 4) {
					static const char pong[] = "\r\n";
					struct tp_flow f = { .proto = TP_TCP,
							     .conn = c->id,
							     .remote = c->remote };
					tp_send(tp, &f, pong, 2);
				}
				tp->stats.rx_keepalive++;
				off += rx_msg.len;
				continue;
			}
			size_t mlen = (size_t)(rx_msg.buf - (c->rbuf + off)) +
				      rx_msg.len;
			tp->stats.rx_msgs++;
			tp->stats.rx_bytes += mlen;
			log_message(tp, "recv", TP_TCP, &c->local, &c->remote,
				    rx_msg.buf, rx_msg.len,
				    err ? NULL : &rx_msg);
			if (err)
				tp->stats.rx_bad++;
			{
				struct tp_flow f = { .proto = TP_TCP,
						     .conn = c->id,
						     .remote = c->remote };
				struct sockaddr_storage local = c->local;
				tp->recv(tp->arg, &rx_msg, err, &f, &local);
			}
			/* The upper layer may have closed us. */
			if (!tp_conn_alive(tp, id))
				return;
			if (err) {
				/* Framing is lost after a bad message. */
				conn_close(c, "bad message");
				return;
			}
			off += mlen;
		}
		if (off) {
			memmove(c->rbuf, c->rbuf + off, c->rlen - off);
			c->rlen -= off;
		}
	}
}

static void conn_io(int fd, int events, void *arg)
{
	struct tcp_conn *c = arg;

	if (c->connecting && (events & LOOP_WRITE)) {
		int err = 0;
		socklen_t el = sizeof(err);
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
		if (err) {
			conn_close(c, strerror(err));
			return;
		}
		c->connecting = false;
		socklen_t ll = sizeof(c->local);
		getsockname(fd, (struct sockaddr *)&c->local, &ll);
		c->tp->stats.tcp_connected++;
	}
	if ((events & LOOP_WRITE) && !c->connecting) {
		int err = conn_flush(c);
		if (err) {
			conn_close(c, strerror(err));
			return;
		}
	}
	if (events & LOOP_READ)
		conn_read(c);
}

static struct tcp_conn *conn_new(struct transport *tp, int fd,
				 const struct sockaddr_storage *remote)
{
	struct tcp_conn *c;
	int one = 1;

	if (tp->stats.tcp_open >= TP_TCP_MAX_CONNS) {
		log_warn("transport", "tcp connection limit %d reached",
			 TP_TCP_MAX_CONNS);
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->tp = tp;
	c->fd = fd;
	c->remote = *remote;
	c->id = ++tp->next_conn_id ? tp->next_conn_id : ++tp->next_conn_id;
	loop_timer_init(&c->idle, conn_idle, c);
	hash_insert(&tp->conns_by_id, &c->by_id,
		    hash_bytes(HASH_SEED, &c->id, sizeof(c->id)));
	hash_insert(&tp->conns_by_addr, &c->by_addr, addr_hash(remote));
	tp->stats.tcp_open++;
	loop_timer_start(tp->loop, &c->idle, TP_TCP_IDLE_MS);
	return c;
}

static void tcp_accept(int fd, int events, void *arg)
{
	struct transport *tp = arg;

	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage remote;
		socklen_t rl = sizeof(remote);
		int cfd = accept4(fd, (struct sockaddr *)&remote, &rl,
				  SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct tcp_conn *c;
		char r[ADDR_STRLEN];

		if (cfd < 0)
			return;
		c = conn_new(tp, cfd, &remote);
		if (!c) {
			close(cfd);
			continue;
		}
		socklen_t ll = sizeof(c->local);
		getsockname(cfd, (struct sockaddr *)&c->local, &ll);
		tp->stats.tcp_accepted++;
		log_info("transport", "tcp accept conn=%u remote=%s", c->id,
			 addr_str(&remote, r, sizeof(r)));
		loop_fd_set(tp->loop, cfd, LOOP_READ, conn_io, c);
	}
}

static struct tcp_conn *conn_by_id(struct transport *tp, uint32_t id)
{
	uint64_t h = hash_bytes(HASH_SEED, &id, sizeof(id));

	for (struct hash_node *n = hash_bucket(&tp->conns_by_id, h); n;
	     n = n->next) {
		struct tcp_conn *c = container_of(n, struct tcp_conn, by_id);
		if (n->hash == h && c->id == id)
			return c;
	}
	return NULL;
}

static struct tcp_conn *conn_by_addr(struct transport *tp,
				     const struct sockaddr_storage *sa)
{
	uint64_t h = addr_hash(sa);

	for (struct hash_node *n = hash_bucket(&tp->conns_by_addr, h); n;
	     n = n->next) {
		struct tcp_conn *c = container_of(n, struct tcp_conn, by_addr);
		if (n->hash == h && addr_eq(&c->remote, sa))
			return c;
	}
	return NULL;
}

bool tp_conn_alive(struct transport *tp, uint32_t conn)
{
	return conn && conn_by_id(tp, conn) != NULL;
}

static struct tcp_conn *conn_connect(struct transport *tp,
				     const struct sockaddr_storage *remote)
{
	int fd = socket(remote->ss_family,
			SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct tcp_conn *c;
	char r[ADDR_STRLEN];

	if (fd < 0)
		return NULL;
	if (connect(fd, (const struct sockaddr *)remote, addr_len(remote)) < 0 &&
	    errno != EINPROGRESS) {
		log_info("transport", "tcp connect %s failed: %s",
			 addr_str(remote, r, sizeof(r)), strerror(errno));
		close(fd);
		return NULL;
	}
	c = conn_new(tp, fd, remote);
	if (!c) {
		close(fd);
		return NULL;
	}
	c->connecting = true;
	log_info("transport", "tcp connect conn=%u remote=%s", c->id,
		 addr_str(remote, r, sizeof(r)));
	loop_fd_set(tp->loop, fd, LOOP_READ | LOOP_WRITE, conn_io, c);
	return c;
}

static int conn_write(struct tcp_conn *c, const char *buf, size_t len)
{
	if (!c->connecting && c->wlen == 0) {
		ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			return errno;
		if (n > 0) {
			buf += n;
			len -= (size_t)n;
		}
	}
	if (!len)
		return 0;
	if (c->wlen + len > TP_TCP_WBUF_MAX)
		return ENOBUFS;
	if (c->wlen + len > c->wcap) {
		size_t cap = c->wcap ? c->wcap : 8192;
		char *b;
		while (cap < c->wlen + len)
			cap *= 2;
		b = realloc(c->wbuf, cap);
		if (!b)
			return ENOMEM;
		c->wbuf = b;
		c->wcap = cap;
	}
	memcpy(c->wbuf + c->wlen, buf, len);
	c->wlen += len;
	loop_fd_set(c->tp->loop, c->fd, LOOP_READ | LOOP_WRITE, conn_io, c);
	return 0;
}

int tp_send(struct transport *tp, struct tp_flow *flow, const char *buf,
	    size_t len)
{
	int err = 0;

	if (flow->proto == TP_UDP) {
		struct sockaddr_storage local;
		if (tp->udp_fd < 0)
			return EPROTONOSUPPORT;
		if (sendto(tp->udp_fd, buf, len, 0,
			   (const struct sockaddr *)&flow->remote,
			   addr_len(&flow->remote)) < 0)
			err = errno;
		if ((tp->tap || log_enabled(LOG_DEBUG)) && len > 2) {
			tp_local_ip_for(tp, &flow->remote, &local);
			addr_set_port(&local, tp->port);
			log_message(tp, "send", TP_UDP, &local, &flow->remote,
				    buf, len, NULL);
		}
	} else {
		struct tcp_conn *c = flow->conn ? conn_by_id(tp, flow->conn)
						: NULL;
		if (!c)
			c = conn_by_addr(tp, &flow->remote);
		if (!c)
			c = conn_connect(tp, &flow->remote);
		if (!c) {
			err = ECONNREFUSED;
		} else {
			flow->conn = c->id;
			if (len > 2)
				log_message(tp, "send", TP_TCP, &c->local,
					    &c->remote, buf, len, NULL);
			err = conn_write(c, buf, len);
			if (err)
				conn_close(c, strerror(err));
		}
	}
	if (err) {
		char r[ADDR_STRLEN];
		tp->stats.tx_errors++;
		log_info("transport", "send %s to %s failed: %s",
			 tp_proto_name(flow->proto),
			 addr_str(&flow->remote, r, sizeof(r)), strerror(err));
		return err;
	}
	tp->stats.tx_msgs++;
	tp->stats.tx_bytes += len;
	return 0;
}

void tp_set_tap(struct transport *tp, tp_tap_fn *fn, void *arg)
{
	tp->tap = fn;
	tp->tap_arg = arg;
}

void tp_set_stun_handler(struct transport *tp, tp_stun_fn *fn, void *arg)
{
	tp->stun = fn;
	tp->stun_arg = arg;
}

int tp_send_raw_udp(struct transport *tp, const struct sockaddr_storage *to,
		    const void *buf, size_t len)
{
	if (tp->udp_fd < 0)
		return EPROTONOSUPPORT;
	if (sendto(tp->udp_fd, buf, len, 0, (const struct sockaddr *)to,
		   addr_len(to)) < 0)
		return errno;
	return 0;
}

int tp_local_ip_for(struct transport *tp, const struct sockaddr_storage *dest,
		    struct sockaddr_storage *local)
{
	struct sockaddr_storage d = *dest;
	uint64_t now = loop_now();
	socklen_t ll = sizeof(*local);
	int fd, err = 0;

	if (!addr_is_any(&tp->listen)) {
		*local = tp->listen;
		return 0;
	}
	addr_set_port(&d, 0);
	for (unsigned i = 0; i < SRC_CACHE; i++) {
		struct src_cache_entry *e = &tp->src_cache[i];
		if (e->expires > now && addr_ip_eq(&e->dest, &d)) {
			*local = e->local;
			return 0;
		}
	}
	/* Ask the routing table: a connected UDP socket sends nothing. */
	addr_set_port(&d, 9);
	fd = socket(d.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errno;
	if (connect(fd, (struct sockaddr *)&d, addr_len(&d)) < 0 ||
	    getsockname(fd, (struct sockaddr *)local, &ll) < 0)
		err = errno;
	close(fd);
	if (err) {
		*local = tp->listen;
		return err;
	}
	addr_set_port(local, 0);
	addr_set_port(&d, 0);
	struct src_cache_entry *e = &tp->src_cache[tp->src_cache_next++ % SRC_CACHE];
	e->dest = d;
	e->local = *local;
	e->expires = now + 30000;
	return 0;
}

int tp_create(struct transport **tpp, struct loop *loop,
	      const char *listen_ip, uint16_t port, bool udp, bool tcp,
	      tp_recv_fn *recv, void *arg)
{
	struct transport *tp = calloc(1, sizeof(*tp));
	int one = 1, err;
	char a[ADDR_STRLEN];

	if (!tp)
		return ENOMEM;
	tp->loop = loop;
	tp->recv = recv;
	tp->arg = arg;
	tp->port = port;
	tp->udp_fd = tp->tcp_fd = -1;
	if ((err = addr_parse(&tp->listen, listen_ip, port))) {
		free(tp);
		return err;
	}
	if (hash_init(&tp->conns_by_id, 256) ||
	    hash_init(&tp->conns_by_addr, 256)) {
		tp_destroy(tp);
		return ENOMEM;
	}
	addr_str(&tp->listen, a, sizeof(a));
	if (udp) {
		int bufsz = 4 << 20;
		tp->udp_fd = socket(tp->listen.ss_family,
				    SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (tp->udp_fd < 0)
			goto fail;
		setsockopt(tp->udp_fd, SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof(bufsz));
		setsockopt(tp->udp_fd, SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof(bufsz));
		if (tp->listen.ss_family == AF_INET)
			setsockopt(tp->udp_fd, IPPROTO_IP, IP_PKTINFO, &one,
				   sizeof(one));
		else
			setsockopt(tp->udp_fd, IPPROTO_IPV6, IPV6_RECVPKTINFO,
				   &one, sizeof(one));
		if (bind(tp->udp_fd, (struct sockaddr *)&tp->listen,
			 addr_len(&tp->listen)) < 0)
			goto fail;
		loop_fd_set(loop, tp->udp_fd, LOOP_READ, udp_readable, tp);
		log_notice("transport", "listening udp %s", a);
	}
	if (tcp) {
		tp->tcp_fd = socket(tp->listen.ss_family,
				    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (tp->tcp_fd < 0)
			goto fail;
		setsockopt(tp->tcp_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(tp->tcp_fd, (struct sockaddr *)&tp->listen,
			 addr_len(&tp->listen)) < 0 ||
		    listen(tp->tcp_fd, 512) < 0)
			goto fail;
		loop_fd_set(loop, tp->tcp_fd, LOOP_READ, tcp_accept, tp);
		log_notice("transport", "listening tcp %s", a);
	}
	*tpp = tp;
	return 0;
fail:
	err = errno;
	log_err("transport", "cannot listen on %s: %s", a, strerror(err));
	tp_destroy(tp);
	return err;
}

void tp_destroy(struct transport *tp)
{
	if (!tp)
		return;
	if (tp->conns_by_id.buckets) {
		for (size_t i = 0; i < tp->conns_by_id.nbuckets; i++) {
			while (tp->conns_by_id.buckets[i]) {
				struct tcp_conn *c = container_of(
					tp->conns_by_id.buckets[i],
					struct tcp_conn, by_id);
				conn_close(c, "shutdown");
			}
		}
	}
	if (tp->udp_fd >= 0) {
		loop_fd_del(tp->loop, tp->udp_fd);
		close(tp->udp_fd);
	}
	if (tp->tcp_fd >= 0) {
		loop_fd_del(tp->loop, tp->tcp_fd);
		close(tp->tcp_fd);
	}
	hash_free(&tp->conns_by_id);
	hash_free(&tp->conns_by_addr);
	free(tp);
}
