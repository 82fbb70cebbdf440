/*
 * auth.c - credentials of Authorization / Proxy-Authorization
 * (RFC 3261 25.1 credentials, RFC 2617 digest-response): the scheme and
 * the params the digest check uses. Quoted values are returned without
 * their quotes (escapes, which no real client sends, stay as written).
 * Unknown params and unknown schemes parse fine (RFC 4475 3.3.7): the
 * registrar decides what to do with them.
 */
#include <errno.h>
#include <string.h>

#include "sip/lex.h"
#include "sip/msg.h"

static void auth_set(struct sip_auth *auth, struct pl name, struct pl value)
{
	struct pl *dst = NULL;

	switch (name.l) {
	case 2:
		if (sip_ieq(name.p, "nc", 2))
			dst = &auth->nc;
		break;
	case 3:
		if (sip_ieq(name.p, "uri", 3))
			dst = &auth->uri;
		else if (sip_ieq(name.p, "qop", 3))
			dst = &auth->qop;
		break;
	case 5:
		if (sip_ieq(name.p, "realm", 5))
			dst = &auth->realm;
		else if (sip_ieq(name.p, "nonce", 5))
			dst = &auth->nonce;
		break;
	case 6:
		if (sip_ieq(name.p, "cnonce", 6))
			dst = &auth->cnonce;
		else if (sip_ieq(name.p, "opaque", 6))
			dst = &auth->opaque;
		break;
	case 8:
		if (sip_ieq(name.p, "username", 8))
			dst = &auth->username;
		else if (sip_ieq(name.p, "response", 8))
			dst = &auth->response;
		break;
	case 9:
		if (sip_ieq(name.p, "algorithm", 9))
			dst = &auth->algorithm;
		break;
	}
	if (dst)
		*dst = value;
}

int sip_auth_parse(struct sip_auth *auth, struct pl value)
{
	const char *p;
	size_t n, i = 0, st;

	memset(auth, 0, sizeof(*auth));
	value = sip_trim(value);
	p = value.p;
	n = value.l;
	while (i < n && sip_is(p[i], C_TOKEN))
		i++;
	if (!i)
		return EBADMSG;
	auth->scheme = (struct pl){ p, i };
	if (i < n && !sip_is(p[i], C_LWS))
		return EBADMSG;

	/* auth-param *(COMMA auth-param); COMMA = SWS "," SWS */
	for (;;) {
		struct pl name, val;

		i = sip_skip_lws(p, i, n);
		if (i == n)
			return 0;
		st = i;
		while (i < n && sip_is(p[i], C_TOKEN))
			i++;
		if (i == st)
			return EBADMSG;
		name = (struct pl){ p + st, i - st };
		i = sip_skip_lws(p, i, n);
		if (i == n || p[i] != '=')
			return EBADMSG;
		i = sip_skip_lws(p, i + 1, n);
		if (i < n && p[i] == '"') {
			size_t q = sip_qstr_len(p + i, n - i);

			if (!q)
				return EBADMSG;
			val = (struct pl){ p + i + 1, q - 2 };
			i += q;
		} else {
			st = i;
			while (i < n && sip_is(p[i], C_TOKEN))
				i++;
			if (i == st)
				return EBADMSG;
			val = (struct pl){ p + st, i - st };
		}
		auth_set(auth, name, val);
		i = sip_skip_lws(p, i, n);
		if (i == n)
			return 0;
		if (p[i] != ',')
			return EBADMSG;
		i++;
	}
}
