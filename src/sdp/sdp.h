/*
 * sdp.h - SDP (RFC 4566) as far as a media relay needs it: session and
 * media connection addresses, media ports, a=rtcp, a=rtcp-mux, direction,
 * and the ICE lines to drop; located in a SIP body, also inside
 * multipart/mixed. Zero-copy: every field is a view into the message, so
 * rewriting is a list of edits (sip/edit.h) over the original bytes.
 */
#ifndef PINHOLE_SDP_H
#define PINHOLE_SDP_H

#include <stdbool.h>
#include <stdint.h>

#include "sip/msg.h"
#include "util/pl.h"

#define SDP_MAX_MEDIA 8
#define SDP_MAX_DROP 48

enum sdp_dir { SDP_SENDRECV = 0, SDP_SENDONLY, SDP_RECVONLY, SDP_INACTIVE };

struct sdp_media {
	struct pl media;	/* "audio", "video", ... */
	struct pl port_str;	/* the port digits in the m= line */
	uint16_t port;		/* 0 = rejected / disabled stream */
	struct pl proto;	/* "RTP/AVP", ... */
	struct pl conn_addr;	/* media-level c= address, unset if none */
	struct pl rtcp_value;	/* a=rtcp: value, unset if none */
	uint16_t rtcp_port;
	struct pl rtcp_addr;	/* address in a=rtcp:, unset if none */
	bool rtcp_mux;
	enum sdp_dir dir;
	bool dir_explicit;
	const char *end;	/* end of this media section */
};

struct sdp {
	struct pl body;		/* the SDP itself */
	struct pl origin_addr;	/* o= unicast address */
	struct pl conn_addr;	/* session-level c= address, unset if none */
	bool conn_ipv6;
	enum sdp_dir dir;	/* session-level direction */
	unsigned nmedia;
	struct sdp_media media[SDP_MAX_MEDIA];
	/* Whole lines (with their line break) a relay must remove: ICE
	 * candidates and credentials, which would lead around the relay. */
	struct pl drop[SDP_MAX_DROP];
	unsigned ndrop;
};

/* Parse an SDP body. 0 or EBADMSG (not SDP / too many media lines). */
int sdp_parse(struct sdp *sdp, struct pl body);

/*
 * Find the SDP in a SIP message: the body when Content-Type is
 * application/sdp, or the first application/sdp part of multipart/mixed
 * (RFC 2046). Returns 0 with *sdp_body set, ENOENT when there is none.
 */
int sdp_find(const struct sip_msg *msg, struct pl *sdp_body);

/* The connection address in effect for media i (media c= or session c=). */
struct pl sdp_media_addr(const struct sdp *sdp, unsigned i);
/* Direction in effect for media i (media attribute, else session). Hold
 * is sendonly/inactive, or the RFC 2543 c=0.0.0.0. */
enum sdp_dir sdp_media_dir(const struct sdp *sdp, unsigned i);
bool sdp_media_on_hold(const struct sdp *sdp, unsigned i);

#endif
