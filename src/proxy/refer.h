/*
 * refer.h - the REFER policy: which transfer targets (Refer-To) a REFER
 * may name before the proxy passes it on. Owns the decision and its
 * counters; the proxy answers what it returns.
 */
#ifndef PINHOLE_PROXY_REFER_H
#define PINHOLE_PROXY_REFER_H

#include <stdbool.h>
#include <stdint.h>

struct conf;
struct sip_msg;
struct sip_uri;

enum refer_verdict {
	REFER_FORWARD = 0,	/* pass the REFER on */
	REFER_BAD,		/* no Refer-To, several, or unparsable: 400 */
	REFER_PRIVATE,		/* a private address outside the intranet: 403 */
	REFER_FOREIGN,		/* another domain or a stranger's address: 403 */
	REFER_SCHEME,		/* not sip:, sips: or tel:: 403 */
};

struct refer_stats {
	uint64_t checked, forwarded, rejected;
};

/* Who "we" are, asked of the proxy (domain or one of our addresses). */
typedef bool (*refer_is_ours_fn)(const struct sip_uri *uri);

/*
 * Decide what to do with a REFER (in-dialog or not). With
 * `[features] refer_policy = allow` everything is forwarded. Otherwise
 * the Refer-To must name our domain (or one of our addresses), an
 * intranet address or domain, or a [routes] gateway. *status and *reason
 * are the response to send when the verdict is not REFER_FORWARD.
 */
enum refer_verdict refer_check(const struct sip_msg *msg,
			       const struct conf *conf,
			       refer_is_ours_fn is_ours, unsigned *status,
			       const char **reason);

const struct refer_stats *refer_stats(void);

#endif
