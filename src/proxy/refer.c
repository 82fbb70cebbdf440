/*
 * refer.c - the REFER policy (see refer.h).
 *
 * A REFER asks its recipient to send a new request to the Refer-To URI.
 * The recipient is often a phone behind NAT that trusts whatever arrives
 * through its proxy, so a REFER forwarded blindly turns the phone into a
 * tool: "call 192.168.1.1:80" probes the phone's home network, "call
 * sip:premium@elsewhere" places a toll call on the phone's account
 * elsewhere. RFC 3515 leaves the check to the recipient; we do it once,
 * in the proxy, for every phone we serve.
 *
 * The rule is the proxy's own routing rule applied in advance: a transfer
 * target must be something pinhole would route the new request to
 * anyway - our domain or one of our addresses, an intranet address or
 * domain, or a [routes] gateway. Everything else is refused with 403 and
 * a reason phrase saying which rule failed, so the transferring user's
 * phone shows why the transfer did not happen. The Refer-To is read from
 * the REFER itself; an embedded Replaces (attended transfer) changes
 * nothing, the URI is the target either way.
 *
 * Not checked: DNS names other than our domain and intranet_domains are
 * foreign by definition (no resolution on the signalling thread), and
 * `tel:` URIs are let through because their new request comes back to us
 * and is routed by [routes] like any dialled number.
 */
#include "proxy/refer.h"

#include <string.h>

#include "conf/conf.h"
#include "log/log.h"
#include "sip/msg.h"
#include "util/addr.h"

static struct refer_stats stats;

const struct refer_stats *refer_stats(void)
{
	return &stats;
}

/* A [routes] gateway's address (the new request goes to a gateway). */
static bool is_gateway(const struct conf *conf,
		       const struct sockaddr_storage *sa)
{
	for (unsigned i = 0; i < conf->nroutes; i++) {
		struct sip_uri u;
		struct sockaddr_storage gw;

		if (sip_uri_parse(&u, pl_from_str(conf->routes[i].uri)) == 0 &&
		    addr_from_ip(&gw, u.host, 0) == 0 && addr_ip_eq(&gw, sa))
			return true;
	}
	return false;
}

static enum refer_verdict classify(const struct sip_addr *to,
				   const struct conf *conf,
				   refer_is_ours_fn is_ours)
{
	const struct sip_uri *u = &to->uri;
	struct sockaddr_storage sa;
	char host[256];

	if (pl_caseeq_str(u->scheme, "tel"))
		return REFER_FORWARD;
	if (!pl_caseeq_str(u->scheme, "sip") &&
	    !pl_caseeq_str(u->scheme, "sips"))
		return REFER_SCHEME;
	if (is_ours(u))
		return REFER_FORWARD;
	if (addr_from_ip(&sa, u->host, 0) == 0) {
		if (conf_is_intranet_addr(conf, &sa) || is_gateway(conf, &sa))
			return REFER_FORWARD;
		return addr_is_private(&sa) ? REFER_PRIVATE : REFER_FOREIGN;
	}
	if (u->host.l < sizeof(host)) {
		pl_strcpy(host, sizeof(host), u->host);
		if (conf_is_intranet_domain(conf, host))
			return REFER_FORWARD;
	}
	return REFER_FOREIGN;
}

enum refer_verdict refer_check(const struct sip_msg *msg,
			       const struct conf *conf,
			       refer_is_ours_fn is_ours, unsigned *status,
			       const char **reason)
{
	int idx = msg->first[SIP_HDR_REFER_TO];
	struct sip_addr to;
	enum refer_verdict v;

	stats.checked++;
	if (conf->refer_allow) {
		stats.forwarded++;
		return REFER_FORWARD;
	}
	if (idx < 0 || sip_hdr_next(msg, idx, SIP_HDR_REFER_TO) >= 0 ||
	    sip_addr_parse(&to, msg->hdrs[idx].value) || to.star) {
		v = REFER_BAD;
	} else {
		v = classify(&to, conf, is_ours);
	}
	switch (v) {
	case REFER_FORWARD:
		stats.forwarded++;
		return v;
	case REFER_BAD:
		*status = 400;
		*reason = idx < 0 ? "Missing Refer-To" : "Bad Refer-To";
		break;
	case REFER_PRIVATE:
		*status = 403;
		*reason = "Refer-To Private Address Outside Intranet";
		break;
	case REFER_FOREIGN:
		*status = 403;
		*reason = "Refer-To Foreign Domain";
		break;
	case REFER_SCHEME:
		*status = 403;
		*reason = "Refer-To Scheme Not Allowed";
		break;
	}
	stats.rejected++;
	log_notice("proxy", "REFER refused: %s refer-to=\"%.*s\" from=%.*s "
		   "call-id=%.*s (set [features] refer_policy = allow to "
		   "forward every REFER)", *reason,
		   idx < 0 ? 0 : (int)msg->hdrs[idx].value.l,
		   idx < 0 ? "" : msg->hdrs[idx].value.p,
		   PL_FMT(msg->from.uri_str), PL_FMT(msg->call_id));
	return v;
}
