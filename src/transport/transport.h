/*
 * transport.h - SIP over UDP and TCP: listening sockets, TCP connections
 * with stream framing, and flows. A flow names the exact path a message
 * took (our socket, the peer's address, the TCP connection) so that
 * answers and later requests go back the same way (symmetric signalling).
 * Owns every SIP socket; parses each message once and hands it up.
 */
#ifndef PINHOLE_TRANSPORT_H
#define PINHOLE_TRANSPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "sip/msg.h"

struct loop;
struct transport;

enum tp_proto { TP_UDP = 0, TP_TCP = 1 };

struct tp_flow {
	enum tp_proto proto;
	uint16_t sock;		/* our listening socket (index) */
	uint32_t conn;		/* TCP connection id, 0 = none/unknown */
	struct sockaddr_storage remote;
};

/* Called for every message received. parse_err is 0 or the error of
 * sip_msg_parse (EBADMSG: msg->err_* tell why; msg->can_reply says whether
 * an error response can be built). local is the address the message
 * arrived on (the real interface address even on a wildcard socket). */
typedef void (tp_recv_fn)(void *arg, struct sip_msg *msg, int parse_err,
			  const struct tp_flow *flow,
			  const struct sockaddr_storage *local);

struct tp_stats {
	uint64_t rx_msgs, tx_msgs, rx_bytes, tx_bytes;
	uint64_t rx_bad, rx_keepalive, tx_errors;
	uint64_t tcp_accepted, tcp_connected, tcp_closed;
	unsigned tcp_open;
};

/* Bind UDP and/or TCP on listen_ip:port. */
int tp_create(struct transport **tpp, struct loop *loop,
	      const char *listen_ip, uint16_t port, bool udp, bool tcp,
	      tp_recv_fn *recv, void *arg);
void tp_destroy(struct transport *tp);

/*
 * Send a message on a flow. UDP: from our socket flow->sock to
 * flow->remote. TCP: on connection flow->conn if it is still open, else on
 * any open connection to flow->remote, else a new connection (queued until
 * connected); flow->conn is updated to the connection used.
 */
int tp_send(struct transport *tp, struct tp_flow *flow, const char *buf,
	    size_t len);

/* Is there an open TCP connection with this id? */
bool tp_conn_alive(struct transport *tp, uint32_t conn);

/* The local IP (no port) this host uses to reach dest: the listen address
 * when it is specific, else the route's source address (cached). */
int tp_local_ip_for(struct transport *tp, const struct sockaddr_storage *dest,
		    struct sockaddr_storage *local);

/* A tap sees every SIP message received or sent (not CRLF keepalives),
 * as on the wire: sent = we sent it, local/remote = our address and the
 * peer's, msg = the parsed message when received and parsed cleanly,
 * else NULL. It runs on the loop and must be quick. NULL removes it. */
typedef void (tp_tap_fn)(void *arg, bool sent, enum tp_proto proto,
			 const struct sockaddr_storage *local,
			 const struct sockaddr_storage *remote,
			 const char *buf, size_t len,
			 const struct sip_msg *msg);
void tp_set_tap(struct transport *tp, tp_tap_fn *fn, void *arg);

/* STUN (RFC 5389) shares the SIP UDP socket so that the address it learns
 * is the one the local NAT forwards to SIP. Datagrams that look like STUN
 * (first two bits 0, magic cookie) go to this handler instead of SIP. */
typedef void (tp_stun_fn)(void *arg, const uint8_t *buf, size_t len,
			  const struct sockaddr_storage *from);
void tp_set_stun_handler(struct transport *tp, tp_stun_fn *fn, void *arg);
/* Send a raw datagram from the SIP UDP socket. */
int tp_send_raw_udp(struct transport *tp, const struct sockaddr_storage *to,
		    const void *buf, size_t len);

uint16_t tp_port(const struct transport *tp);
const struct tp_stats *tp_stats(const struct transport *tp);
const char *tp_proto_name(enum tp_proto proto);	/* "udp" / "tcp" */
const char *tp_proto_upper(enum tp_proto proto);	/* "UDP" / "TCP" */

#endif
