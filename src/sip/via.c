/*
 * via.c - one Via value (RFC 3261 20.42): sent-protocol, sent-by and the
 * params a proxy needs (branch, received, rport), RFC 3581 and RFC 5118.
 *
 * LWS (folding included) is allowed around '/' ':' ';' '=' as the grammar
 * says (RFC 4475 3.1.1.1), so protocol spans "SIP / 2.0" as written
 * (it is "SIP/2.0" on every sane message).
 * received keeps its value as written, IPv6 with or without [] (4.5).
 */
#include <errno.h>
#include <string.h>

#include "sip/lex.h"
#include "sip/msg.h"

/* A token at p[*ip], then LWS. */
static bool via_token(const char *p, size_t n, size_t *ip, struct pl *tok)
{
	size_t i = *ip, st = i;

	while (i < n && sip_is(p[i], C_TOKEN))
		i++;
	if (i == st)
		return false;
	*tok = (struct pl){ p + st, i - st };
	*ip = sip_skip_lws(p, i, n);
	return true;
}

/* '/' with LWS on both sides. */
static bool via_slash(const char *p, size_t n, size_t *ip)
{
	if (*ip >= n || p[*ip] != '/')
		return false;
	*ip = sip_skip_lws(p, *ip + 1, n);
	return true;
}

int sip_via_parse(struct sip_via *via, struct pl s)
{
	struct pl name, vers, rest, pn, pv;
	const char *p;
	size_t n, i = 0, hs;
	bool v6;
	int err;

	memset(via, 0, sizeof(*via));
	s = sip_trim(s);
	via->value = s;
	p = s.p;
	n = s.l;
	if (!via_token(p, n, &i, &name) || !via_slash(p, n, &i) ||
	    !via_token(p, n, &i, &vers) || !via_slash(p, n, &i))
		return EBADMSG;
	via->protocol = (struct pl){ name.p, (size_t)(vers.p - name.p) +
					       vers.l };
	hs = i;
	if (!via_token(p, n, &i, &via->transport) || i == hs + via->transport.l)
		return EBADMSG;	/* LWS is required before sent-by */

	if (sip_hostport_parse(p, n, &i, &via->host, &via->port, &v6))
		return EBADMSG;
	if (i < n && sip_is(p[i], C_LWS)) {
		size_t j = sip_skip_lws(p, i, n);

		if (j < n && p[j] == ':') {
			/* COLON = SWS ":" SWS */
			struct pl port;
			uint64_t v;

			i = sip_skip_lws(p, j + 1, n);
			j = i;
			while (j < n && sip_is(p[j], C_DIGIT))
				j++;
			port = (struct pl){ p + i, j - i };
			if (!sip_u64(port, 65535, &v))
				return EBADMSG;
			via->port = (uint16_t)v;
			i = j;
		}
	}

	rest = sip_trim((struct pl){ p + i, n - i });
	via->params = rest;
	while ((err = sip_param_next(&rest, &pn, &pv)) == 0) {
		if (!sip_param_valid(pn, pv))
			return EBADMSG;
		if (pn.l == 6 && sip_ieq(pn.p, "branch", 6)) {
			if (!pl_isset(pv))
				return EBADMSG;
			via->branch = pv;
		} else if (pn.l == 8 && sip_ieq(pn.p, "received", 8)) {
			if (!pl_isset(pv))
				return EBADMSG;
			via->received = pv;
		} else if (pn.l == 5 && sip_ieq(pn.p, "rport", 5)) {
			uint64_t v;

			via->has_rport = true;
			via->rport = pv;
			if (!pl_isset(pv))
				via->rport = (struct pl){ pn.p + pn.l, 0 };
			if (pl_isset(pv) && !sip_u64(pv, 65535, &v))
				return EBADMSG;
		}
	}
	return err == ENOENT ? 0 : EBADMSG;
}
