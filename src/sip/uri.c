/*
 * uri.c - SIP URIs (RFC 3261 19.1, RFC 5118 IPv6 references): parsing
 * into views, param lookup, and comparison per RFC 3261 19.1.4.
 *
 * sip: and sips: URIs are parsed in full and checked character by
 * character; any other scheme is kept opaque (scheme + the rest), because a
 * proxy must be able to carry and answer (416) what it does not understand.
 * The user part is located by the first '@': user, password, params and
 * headers cannot hold an unescaped '@', so this is unambiguous and lets
 * user parts carry '?', ';' and ',' (RFC 4475 3.1.1.2, 3.1.1.9).
 * One liberty: an unescaped '#' is accepted (phones put it in feature
 * codes such as sip:*72#1234@host); it can never end up in a host.
 */
#include <errno.h>
#include <string.h>

#include "sip/lex.h"
#include "sip/msg.h"

static bool is_sip_scheme(struct pl scheme)
{
	return (scheme.l == 3 && sip_ieq(scheme.p, "sip", 3)) ||
	       (scheme.l == 4 && sip_ieq(scheme.p, "sips", 4));
}

/* Every byte a URI character, every '%' a full escape. */
static bool uri_chars_ok(struct pl s)
{
	for (size_t i = 0; i < s.l; i++) {
		if (sip_is(s.p[i], C_URIC))
			continue;
		if (s.p[i] != '%' || i + 2 >= s.l ||
		    !sip_is(s.p[i + 1], C_HEX) || !sip_is(s.p[i + 2], C_HEX))
			return false;
		i += 2;
	}
	return true;
}

/* Non-sip schemes: printable, no LWS, nothing that ends a URI in a
 * header ('<', '>', '"'). */
static bool opaque_chars_ok(struct pl s)
{
	for (size_t i = 0; i < s.l; i++) {
		unsigned char c = (unsigned char)s.p[i];

		if (c <= 0x20 || c == 0x7f || c == '<' || c == '>' ||
		    c == '"')
			return false;
	}
	return true;
}

/* URI params ";a=b;lr": no empty names. */
static bool uri_params_ok(struct pl s)
{
	for (size_t i = 0; i < s.l; i++)
		if (s.p[i] == ';' &&
		    (i + 1 == s.l || s.p[i + 1] == ';' || s.p[i + 1] == '='))
			return false;
	return true;
}

int sip_uri_parse(struct sip_uri *uri, struct pl s)
{
	const char *p = s.p, *at;
	size_t n = s.l, i = 0;
	struct pl rest;

	memset(uri, 0, sizeof(*uri));
	if (!n || !sip_is(p[0], C_ALPHA))
		return EBADMSG;
	while (i < n && sip_is(p[i], C_SCHEME))
		i++;
	if (i == n || p[i] != ':')
		return EBADMSG;
	uri->scheme = (struct pl){ p, i };
	rest = (struct pl){ p + i + 1, n - i - 1 };
	uri->opaque = rest;
	if (!rest.l)
		return EBADMSG;
	if (!is_sip_scheme(uri->scheme))
		return opaque_chars_ok(rest) ? 0 : EBADMSG;

	p = rest.p;
	n = rest.l;
	i = 0;
	/* characters are checked part by part: userinfo and what follows the
	 * port here, the host by its own scan (one pass over each byte) */
	at = memchr(p, '@', n);
	if (at) {
		size_t ul = (size_t)(at - p);
		const char *colon = memchr(p, ':', ul);

		if (!uri_chars_ok((struct pl){ p, ul }))
			return EBADMSG;
		if (colon) {
			uri->user = (struct pl){ p, (size_t)(colon - p) };
			uri->password = (struct pl){ colon + 1,
						     ul - uri->user.l - 1 };
		} else {
			uri->user = (struct pl){ p, ul };
		}
		if (!uri->user.l)
			return EBADMSG;
		i = ul + 1;
	}
	if (sip_hostport_parse(p, n, &i, &uri->host, &uri->port,
			   &uri->host_is_ipv6))
		return EBADMSG;
	if (i < n && !uri_chars_ok((struct pl){ p + i, n - i }))
		return EBADMSG;
	if (i < n && p[i] == ';') {
		const char *q = memchr(p + i, '?', n - i);
		size_t e = q ? (size_t)(q - p) : n;

		uri->params = (struct pl){ p + i, e - i };
		if (!uri_params_ok(uri->params))
			return EBADMSG;
		i = e;
	}
	if (i < n && p[i] == '?') {
		uri->headers = (struct pl){ p + i + 1, n - i - 1 };
		if (!uri->headers.l)
			return EBADMSG;
		i = n;
	}
	return i == n ? 0 : EBADMSG;
}

bool sip_param_get(struct pl params, const char *name, struct pl *value)
{
	size_t nl = strlen(name);
	struct pl pn, pv;

	while (sip_param_next(&params, &pn, &pv) == 0) {
		if (pn.l == nl && pl_caseeq(pn, (struct pl){ name, nl })) {
			/* a bare name: an empty view right after it */
			if (value && !pl_isset(pv))
				*value = (struct pl){ pn.p + pn.l, 0 };
			else if (value)
				*value = pv;
			return true;
		}
	}
	return false;
}

/* -- comparison (RFC 3261 19.1.4) ---------------------------------------*/

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	return (sip_lower(c) - 'a') + 10;
}

/* Next octet of an escaped string: "%41" and "A" are the same octet. */
static unsigned unesc_next(const char **pp, const char *e)
{
	const char *p = *pp;

	if (*p == '%' && e - p >= 3 && sip_is(p[1], C_HEX) &&
	    sip_is(p[2], C_HEX)) {
		*pp = p + 3;
		return (unsigned)(hexval(p[1]) * 16 + hexval(p[2]));
	}
	*pp = p + 1;
	return (unsigned char)*p;
}

static bool esc_eq(struct pl a, struct pl b, bool icase)
{
	const char *pa, *ea, *pb, *eb;

	if (!a.l || !b.l)
		return a.l == b.l;
	pa = a.p;
	ea = a.p + a.l;
	pb = b.p;
	eb = b.p + b.l;
	while (pa < ea && pb < eb) {
		unsigned ca = unesc_next(&pa, ea), cb = unesc_next(&pb, eb);

		if (icase) {
			ca = sip_lower((char)ca);
			cb = sip_lower((char)cb);
		}
		if (ca != cb)
			return false;
	}
	return pa == ea && pb == eb;
}

/* URI params (no LWS): find a param by (escaped) name. */
static bool uparam_find(struct pl params, struct pl name, struct pl *value)
{
	struct pl pn, pv;

	while (sip_param_next(&params, &pn, &pv) == 0) {
		if (esc_eq(pn, name, true)) {
			*value = pv;
			return true;
		}
	}
	return false;
}

static bool param_must_match(struct pl name)
{
	static const char *const names[] = { "user", "ttl", "method",
					     "maddr" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (esc_eq(name, pl_from_str(names[i]), true))
			return true;
	return false;
}

/* Every param in a: equal in b when there, and present in b when it is
 * one that must match. A name repeated counts by its first occurrence,
 * the one sip_param_get() returns. */
static bool params_match_one_way(struct pl a, struct pl b)
{
	struct pl all = a, pn, pv, bv, first;

	while (sip_param_next(&a, &pn, &pv) == 0) {
		if (uparam_find(all, pn, &first) && first.p != pv.p)
			continue;	/* a repeat: already compared */
		if (uparam_find(b, pn, &bv)) {
			if (pl_isset(pv) != pl_isset(bv) ||
			    !esc_eq(pv, bv, true))
				return false;
		} else if (param_must_match(pn)) {
			return false;
		}
	}
	return true;
}

/* Next "name=value" of a URI headers part ("a=b&c=d"). */
static bool uhdr_next(struct pl *s, struct pl *name, struct pl *value)
{
	const char *amp, *eq;
	size_t l;

	if (!s->l)
		return false;
	amp = memchr(s->p, '&', s->l);
	l = amp ? (size_t)(amp - s->p) : s->l;
	eq = memchr(s->p, '=', l);
	*name = (struct pl){ s->p, eq ? (size_t)(eq - s->p) : l };
	*value = eq ? (struct pl){ eq + 1, l - name->l - 1 } : PL_NULL;
	s->p += amp ? l + 1 : l;
	s->l -= amp ? l + 1 : l;
	return true;
}

static unsigned uhdr_count(struct pl s)
{
	struct pl hn, hv;
	unsigned cnt = 0;

	while (uhdr_next(&s, &hn, &hv))
		cnt++;
	return cnt;
}

/* Every header of a is in b. */
static bool headers_in(struct pl a, struct pl b)
{
	struct pl an, av, bn, bv, bs;

	while (uhdr_next(&a, &an, &av)) {
		bool found = false;

		bs = b;
		while (!found && uhdr_next(&bs, &bn, &bv))
			found = esc_eq(an, bn, true) && esc_eq(av, bv, false);
		if (!found)
			return false;
	}
	return true;
}

/* Headers are never ignored: same set of name=value on both sides. */
static bool headers_match(struct pl a, struct pl b)
{
	return uhdr_count(a) == uhdr_count(b) && headers_in(a, b) &&
	       headers_in(b, a);
}

bool sip_uri_equal(const struct sip_uri *a, const struct sip_uri *b)
{
	if (!pl_caseeq(a->scheme, b->scheme))
		return false;
	if (!is_sip_scheme(a->scheme))
		return pl_eq(a->opaque, b->opaque);
	if (!esc_eq(a->user, b->user, false) ||
	    pl_isset(a->password) != pl_isset(b->password) ||
	    !esc_eq(a->password, b->password, false))
		return false;
	if (!pl_caseeq(a->host, b->host) || a->port != b->port)
		return false;
	if (!params_match_one_way(a->params, b->params) ||
	    !params_match_one_way(b->params, a->params))
		return false;
	return headers_match(a->headers, b->headers);
}
