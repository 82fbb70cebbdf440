/*
 * relay.h - the media relay: RTP/RTCP forwarded between two parties
 * through pinhole's own ports, with symmetric latching. The data path
 * runs on its own worker threads (epoll + recvmmsg/sendmmsg, no allocation
 * and no lock per packet) and never waits for the signalling thread; this
 * header is the control interface the signalling side uses.
 *
 * A stream is one relayed media line between side A and side B. Each side
 * has an RTP socket (even port) and, unless rtcp is false (rtcp-mux), an
 * RTCP socket (port + 1). What arrives on side A's socket from party A is
 * sent from side B's socket to party B, and back. Party A is told (in the
 * SDP pinhole sends to A) to send to side A's port.
 */
#ifndef PINHOLE_RELAY_H
#define PINHOLE_RELAY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct relay;

struct relay_config {
	struct sockaddr_storage bind;	/* address the relay sockets bind to */
	uint16_t port_min, port_max;	/* inclusive range */
	unsigned workers;		/* data-path threads, >= 1 */
	unsigned latch_window_ms;	/* accept a first source this long after
					   the peer address is set (default 5000
					   when 0) */
	unsigned relatch_silence_ms;	/* the latched source silent this long:
					   another source may take over (0 =
					   default 2000) */
};

enum relay_side { RELAY_A = 0, RELAY_B = 1 };

struct relay_dir_stats {
	uint64_t packets, bytes;	/* received on this side, forwarded */
	uint64_t dropped;		/* strays, no peer yet, send errors */
	uint64_t last_seen_ms;		/* CLOCK_MONOTONIC ms of last packet, 0 never */
};

struct relay_side_info {
	uint16_t port;			/* our RTP port on this side */
	bool latched;
	struct sockaddr_storage expected;	/* from signalling, AF_UNSPEC if none */
	struct sockaddr_storage latched_addr;	/* RTP source we send to */
	struct sockaddr_storage latched_rtcp;	/* RTCP source we send to */
	uint64_t relatches;		/* a new source took over */
	struct relay_dir_stats rtp, rtcp;	/* what this side received */
};

struct relay_stream_info {
	uint32_t id;
	bool rtcp;
	struct relay_side_info side[2];
};

struct relay_stats {
	unsigned streams;		/* allocated now */
	unsigned ports_free;		/* ports left in the range */
	unsigned ports_total;
	uint64_t packets, bytes, dropped;	/* all streams, all time */
	uint64_t alloc_failures;	/* no free port */
};

int relay_create(struct relay **relayp, const struct relay_config *cfg);
void relay_destroy(struct relay *relay);

/* Allocate a stream: 2 (or 4 with rtcp) ports. ENOSPC when the range is
 * exhausted. Ports of a side are consecutive: RTP even, RTCP = RTP + 1. */
int relay_stream_alloc(struct relay *relay, bool rtcp, uint32_t *id,
		       uint16_t *port_a, uint16_t *port_b);

/*
 * Tell the relay where party `side` said (in its SDP) it receives RTP;
 * rtcp_port 0 means RTP port + 1 (or none without rtcp). An address of
 * family AF_UNSPEC means unknown. Until a packet from that party latches,
 * media for it is sent to this address. Calling it again (re-INVITE,
 * hold/resume) updates the expectation and re-opens the latch window;
 * an established latch is kept when the new address equals the old one.
 */
int relay_stream_set_peer(struct relay *relay, uint32_t id,
			  enum relay_side side,
			  const struct sockaddr_storage *rtp,
			  uint16_t rtcp_port);

/* Release the stream. The worker closes its sockets asynchronously (in
 * microseconds) and only then returns the ports to the pool, so a new
 * stream never shares a socket with a dying one. */
int relay_stream_free(struct relay *relay, uint32_t id);

/* Snapshot of a stream (counters are read without stopping the data path). */
int relay_stream_info(struct relay *relay, uint32_t id,
		      struct relay_stream_info *info);
void relay_get_stats(struct relay *relay, struct relay_stats *stats);

#endif
