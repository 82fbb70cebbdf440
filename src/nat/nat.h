/*
 * nat.h - the far-end NAT traversal agent: decides where a phone is
 * (local, public, behind a NAT, or public-looking but suspect), fixes the
 * Contact of NAT'ed parties so in-dialog requests reach them through
 * their pinhole, and keeps relayed media sessions tied to their dialogs
 * (SDP rewriting toward the relay). Owns media sessions; drives relay/
 * only through relay.h.
 */
#ifndef PINHOLE_NAT_H
#define PINHOLE_NAT_H

#include <jansson.h>
#include <stdbool.h>

#include "sip/edit.h"
#include "sip/msg.h"
#include "transport/transport.h"

struct conf;
struct loop;
struct relay;

enum nat_verdict {
	NAT_LOCAL = 0,		/* inside intranet_subnets */
	NAT_PUBLIC,		/* reachable as it says */
	NAT_BEHIND,		/* its addresses differ from the source */
	NAT_SUSPECT,		/* looks public, but a NAT (ALG) or STUN is
				   suspected from other evidence */
};

const char *nat_verdict_name(enum nat_verdict v);
enum nat_verdict nat_verdict_from_name(const char *name);

/* Where is the sender of this request or response? `why` gets a short
 * explanation of the evidence (for logs and the registrations view). */
enum nat_verdict nat_classify(const struct sip_msg *msg,
			      const struct tp_flow *flow,
			      const struct conf *conf, char *why, size_t cap);

int nat_init(struct loop *loop, struct transport *tp, struct relay *relay,
	     const struct conf *conf);
void nat_set_conf(const struct conf *conf);
void nat_close(void);

/* What the proxy knows about one side of a call when it forwards. */
struct nat_party {
	enum nat_verdict verdict;
	struct tp_flow flow;		/* how we reach it / it reached us */
	struct sockaddr_storage local;	/* our address facing it */
};

/*
 * Called for every request the proxy forwards, after its own edits:
 * from = the sender, to = the target of this branch. Adds the edits that
 * NAT traversal needs (Contact of a NAT'ed sender, SDP toward the relay)
 * to ed. Returns 0, or an errno when media cannot be relayed (ENOSPC: no
 * relay ports; the proxy answers 503).
 */
int nat_request_edits(struct sip_editor *ed, const struct sip_msg *msg,
		      const struct nat_party *from, const struct nat_party *to);

/* Same for a response going upstream: from = the party that answered,
 * to = the party that asked. */
int nat_response_edits(struct sip_editor *ed, const struct sip_msg *msg,
		       const struct nat_party *from, const struct nat_party *to);

/* A dialog ended or failed (BYE 2xx, final non-2xx to an initial INVITE,
 * CANCEL): release its media. */
void nat_dialog_end(struct pl call_id);

/* The initial INVITE failed (final non-2xx sent upstream, no 2xx seen):
 * release its media. */
void nat_invite_failed(struct pl call_id);

/* Keepalives toward NAT'ed bindings (keepalive.c). */
void nat_keepalive_start(struct loop *loop, struct transport *tp,
			 const struct conf *conf);
void nat_keepalive_set_conf(const struct conf *conf);
void nat_keepalive_stop(void);
/* A response to one of our pings? Then it is consumed (true). */
bool nat_keepalive_response(const struct sip_msg *msg);
void nat_keepalive_stats(uint64_t *sent, uint64_t *answered,
			 uint64_t *failures);

/* The active check (probe.c): is a phone that looks public really
 * reachable from anywhere? Worth asking about this source (not loopback)?
 * nat_probe() sends an OPTIONS from another local port to the binding's
 * contact; the outcome goes to reg_probe_result(). */
struct reg_binding;
bool nat_probe_wanted(const struct sockaddr_storage *remote);
void nat_probe(const struct reg_binding *b);
void nat_probe_stats(uint64_t *sent, uint64_t *answered, uint64_t *filtered);
void nat_probe_start(struct loop *loop, const struct conf *conf);
void nat_probe_set_conf(const struct conf *conf);
void nat_probe_stop(void);

/* An OPTIONS ping toward uri (keepalives and the active check): Via
 * host:port with branch "<branch>", tags and Call-ID from tag. Returns
 * the length, 0 if it did not fit. */
size_t nat_options_build(char *buf, size_t cap, const char *uri,
			 const char *host, unsigned port, const char *branch,
			 const char *tag, const char *domain);

/* Far-end NAT behaviour (behaviour.c), learnt from relayed media: priv
 * is where a party's SDP said it receives, mapped where its packets came
 * from, dest_port our relay port they were sent to. nat_behaviour()
 * answers "cone", "symmetric" or "unknown" for a NAT's public address,
 * with the evidence in why. */
void nat_behaviour_observe(const struct sockaddr_storage *priv,
			   const struct sockaddr_storage *mapped,
			   uint16_t dest_port);
const char *nat_behaviour(const struct sockaddr_storage *pub, char *why,
			  size_t cap);
void nat_behaviour_free(void);

/* Reachability self-test (selftest.c): RFC 5780 CHANGE-REQUEST through
 * the STUN server, from the SIP socket and from a port of the RTP range.
 * start: 0 or EBUSY (one at a time); the JSON says state and results. */
int nat_selftest_start(void);
json_t *nat_selftest_json(void);
bool nat_selftest_stun(const uint8_t *buf, size_t len,
		       const struct sockaddr_storage *from);
void nat_selftest_init(struct loop *loop, struct transport *tp,
		       const struct conf *conf);
void nat_selftest_set_conf(const struct conf *conf);
void nat_selftest_stop(void);

/* Near-end NAT (public.c): the address to advertise to dest, given our
 * local address toward it. false when the public address is needed (dest
 * outside the intranet, behind_nat on) but not known yet. */
bool nat_advertised(const struct sockaddr_storage *dest,
		    const struct sockaddr_storage *local,
		    struct sockaddr_storage *out);
bool nat_public_known(void);
const struct sockaddr_storage *nat_public_addr(void);
void nat_public_start(struct loop *loop, struct transport *tp,
		      const struct conf *conf);
void nat_public_set_conf(const struct conf *conf);
void nat_public_stop(void);
json_t *nat_public_json(void);

/* Calls view: relayed sessions with ports, latches and counters. */
json_t *nat_sessions_json(void);
unsigned nat_session_count(void);

#endif
