/*
 * addr.c - name-addr / addr-spec with header params (From, To, Contact,
 * Route, Record-Route, Path, Refer-To ...), RFC 3261 20.10 and 25.1.
 *
 * A display name is a quoted-string (escapes kept as on the wire) or a run
 * of tokens separated by LWS; anything else before '<' is rejected
 * (RFC 4475 3.1.2.15). Without <>, the URI ends at the first ';' or LWS
 * and may not hold '?' (3.1.2.13): what follows are header params
 * (3.3.12). Inside <> no LWS is allowed (3.1.2.14).
 */
#include <errno.h>
#include <string.h>

#include "sip/lex.h"
#include "sip/msg.h"

/* p[0..n) after the URI: LWS then nothing or ";param..." all well formed.
 * Sets addr->params to the trimmed list. */
static int addr_params(struct sip_addr *addr, const char *p, size_t n)
{
	struct pl rest, name, value;
	size_t i = sip_skip_lws(p, 0, n);
	int err;

	rest = sip_trim((struct pl){ p + i, n - i });
	addr->params = rest;
	if (!rest.l)
		return 0;
	while ((err = sip_param_next(&rest, &name, &value)) == 0)
		if (!sip_param_valid(name, value))
			return EBADMSG;
	return err == ENOENT ? 0 : EBADMSG;
}

int sip_addr_parse(struct sip_addr *addr, struct pl s)
{
	const char *p, *gt;
	size_t n, i = 0;

	memset(addr, 0, sizeof(*addr));
	s = sip_trim(s);
	p = s.p;
	n = s.l;
	if (!n)
		return EBADMSG;
	if (n == 1 && p[0] == '*') {
		addr->star = true;
		return 0;
	}

	if (p[0] == '"') {
		size_t q = sip_qstr_len(p, n);

		if (!q)
			return EBADMSG;
		addr->dname = (struct pl){ p, q };
		i = sip_skip_lws(p, q, n);
		if (i == n || p[i] != '<')
			return EBADMSG;
	} else if (p[0] != '<') {
		/* tokens [LWS tokens]... then '<'; or a scheme then ':' */
		bool lws = false;
		size_t last = 0;

		while (i < n) {
			if (sip_is(p[i], C_TOKEN)) {
				last = ++i;
			} else if (sip_is(p[i], C_LWS)) {
				lws = true;
				i++;
			} else {
				break;
			}
		}
		if (i == n)
			return EBADMSG;
		if (p[i] == ':' && !lws) {
			/* addr-spec: the URI runs to ';' or LWS */
			size_t e = 0;

			while (e < n && p[e] != ';' && !sip_is(p[e], C_LWS))
				e++;
			if (memchr(p, '?', e) || memchr(p, ',', e))
				return EBADMSG;
			addr->uri_str = (struct pl){ p, e };
			if (sip_uri_parse(&addr->uri, addr->uri_str))
				return EBADMSG;
			return addr_params(addr, p + e, n - e);
		}
		if (p[i] != '<')
			return EBADMSG;
		addr->dname = (struct pl){ p, last };
	}

	/* p[i] == '<' */
	gt = memchr(p + i, '>', n - i);
	if (!gt)
		return EBADMSG;
	addr->angle = true;
	addr->uri_str = (struct pl){ p + i + 1, (size_t)(gt - p) - i - 1 };
	if (sip_uri_parse(&addr->uri, addr->uri_str))
		return EBADMSG;
	i = (size_t)(gt - p) + 1;
	return addr_params(addr, p + i, n - i);
}
