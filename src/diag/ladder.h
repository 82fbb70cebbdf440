/*
 * ladder.h - per-call SIP ladders: for the most recent Call-IDs, every SIP
 * message pinhole received or sent (time, direction, transport, addresses,
 * the text as on the wire, capped). Owns those copies and their memory
 * bounds; fed by the transport's tap (tp_set_tap), read by the admin API.
 */
#ifndef PINHOLE_DIAG_LADDER_H
#define PINHOLE_DIAG_LADDER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "sip/msg.h"
#include "transport/transport.h"

/* Bounds (see ladder.c for why these numbers). */
#define LADDER_TEXT_MAX 4096		/* bytes kept of one message */
#define LADDER_MSGS_MAX 64		/* messages kept per Call-ID */
#define LADDER_KEEP_FIRST 16		/* of those, the first ones never dropped */
#define LADDER_CALL_ID_MAX 256		/* longer Call-IDs are not recorded */
#define LADDER_CALLS_BYTES (32u << 20)	/* memory for call ladders */
#define LADDER_OTHER_BYTES (4u << 20)	/* memory for the other ladders */

struct ladder_stats {
	unsigned calls, others;		/* ladders kept now */
	size_t bytes;			/* memory they hold */
	uint64_t recorded;		/* messages recorded */
	uint64_t dropped;		/* messages over LADDER_MSGS_MAX */
	uint64_t evicted;		/* ladders pushed out by newer ones */
	uint64_t skipped;		/* keepalives, unparsable, no Call-ID */
};

/*
 * Keep the ladders of the last `calls` INVITE Call-IDs and of the last
 * max(calls / 4, 1) other Call-IDs (REGISTER, OPTIONS, SUBSCRIBE...), so
 * that registration refreshes never push a call out. 0 turns recording
 * off and frees everything. May be called again (reload): a smaller
 * limit evicts the oldest ladders at once.
 */
void ladder_set_limit(unsigned calls);
/* Free every ladder (shutdown). */
void ladder_close(void);

/*
 * Record one message. sent: we sent it (else received). local/remote:
 * our address and the peer's. buf/len: the message as on the wire. msg:
 * the parsed message when the caller has it, NULL to have it parsed here.
 * Does nothing when recording is off. Matches tp_tap_fn.
 */
void ladder_tap(void *arg, bool sent, enum tp_proto proto,
		const struct sockaddr_storage *local,
		const struct sockaddr_storage *remote, const char *buf,
		size_t len, const struct sip_msg *msg);

/* [{call_id, kind, first_line, from, to, time, last, messages, dropped}]
 * newest first (time and last in unix milliseconds). */
json_t *ladder_list_json(void);
/* {call_id, kind, messages: [{t, dir, proto, local, remote, first_line,
 * text, size, truncated}], dropped, dropped_at} or NULL when the Call-ID
 * has no ladder (unknown, evicted, or recording off). */
json_t *ladder_json(const char *call_id);

const struct ladder_stats *ladder_stats(void);

#endif
