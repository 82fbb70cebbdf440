/*
 * lex.h - character classes and small scanners shared by the parsers in
 * src/sip/ (private to this folder: nothing outside src/sip/ includes it).
 * Everything here is static inline so the hot loops stay in one unit.
 */
#ifndef PINHOLE_SIP_LEX_H
#define PINHOLE_SIP_LEX_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "util/pl.h"

enum {
	C_TOKEN = 1 << 0,	/* RFC 3261 token */
	C_URIC = 1 << 1,	/* sip/sips URI chars, but '%'; '#' too */
	C_HOST = 1 << 2,	/* hostname / IPv4 ('_' tolerated) */
	C_WORD = 1 << 3,	/* Call-ID word */
	C_LWS = 1 << 4,		/* SP HT CR LF (CR LF only as folding) */
	C_HEX = 1 << 5,
	C_SCHEME = 1 << 6,	/* scheme chars after the first ALPHA */
	C_DIGIT = 1 << 7,
	C_PVAL = 1 << 8,	/* gen-value: token / host (IPv6 incl.) */
	C_ALPHA = 1 << 9,
	C_PNSTOP = 1 << 10,	/* ends a param name: ';' '=' LWS */
	C_PVSTOP = 1 << 11,	/* ends a param value: ';' LWS */
};

static const uint16_t sip_ctab[256] = {
	['\t'] = C_LWS|C_PNSTOP|C_PVSTOP,
	['\n'] = C_LWS|C_PNSTOP|C_PVSTOP,
	['\r'] = C_LWS|C_PNSTOP|C_PVSTOP,
	[' '] = C_LWS|C_PNSTOP|C_PVSTOP,
	['!'] = C_TOKEN|C_URIC|C_WORD|C_PVAL,
	['"'] = C_WORD,
	['#'] = C_URIC,
	['$'] = C_URIC,
	['%'] = C_TOKEN|C_WORD|C_PVAL,
	['&'] = C_URIC,
	['\''] = C_TOKEN|C_URIC|C_WORD|C_PVAL,
	['('] = C_URIC|C_WORD,
	[')'] = C_URIC|C_WORD,
	['*'] = C_TOKEN|C_URIC|C_WORD|C_PVAL,
	['+'] = C_TOKEN|C_URIC|C_WORD|C_SCHEME|C_PVAL,
	[','] = C_URIC,
	['-'] = C_TOKEN|C_URIC|C_HOST|C_WORD|C_SCHEME|C_PVAL,
	['.'] = C_TOKEN|C_URIC|C_HOST|C_WORD|C_SCHEME|C_PVAL,
	['/'] = C_URIC|C_WORD,
	['0'] = C_TOKEN|C_URIC|C_HOST|C_WORD|C_HEX|C_SCHEME|C_DIGIT|C_PVAL,
	['1'] = C_TOKEN|C_URIC|C_HOST|C_WORD|C_HEX|C_SCHEME|C_DIGIT|C_PVAL,
	['2'] = C_TOKEN|C_URIC|C_HOST|C_WORD|C_HEX|C_SCHEME|C_DIGIT|C_PVAL,
	['3'] = C_TOKEN|C_URIC|C_HOST|C_WORD|C_HEX|C_SCHEME|C_DIGIT|C_PVAL,
	['4'] = C_TOKEN|C_URIC|C_HOST|C_WORD|C_HEX|C_SCHEME|C_DIGIT|C_PVAL,
	['5'] = C_TOKEN|C_URIC|C_HOST|C_WORD|C_HEX|C_SCHEME|C_DIGIT|C_PVAL,
	['6'] = C_TOKEN|C_URIC|C_HOST|C_WORD|C_HEX|C_SCHEME|C_DIGIT|C_PVAL,
	['7'] = C_TOKEN|C_URIC|C_HOST|C_WORD|C_HEX|C_SCHEME|C_DIGIT|C_PVAL,
	['8'] = C_TOKEN|C_URIC|C_HOST|C_WORD|C_HEX|C_SCHEME|C_DIGIT|C_PVAL,
	['9'] = C_TOKEN|C_URIC|C_HOST|C_WORD|C_HEX|C_SCHEME|C_DIGIT|C_PVAL,
	[':'] = C_URIC|C_WORD|C_PVAL,
	[';'] = C_URIC|C_PNSTOP|C_PVSTOP,
	['<'] = C_WORD,
	['='] = C_URIC|C_PNSTOP,
	['>'] = C_WORD,
	['?'] = C_URIC|C_WORD,
	['@'] = C_URIC,
	['A'] = C_TOKEN|C_URIC|C_HOST|C_WORD|C_HEX|C_SCHEME|C_PVAL|C_ALPHA,
	['B'] = C_TOKEN|C_URIC|C_HOST|C_WORD|C_HEX|C_SCHEME|C_PVAL|C_ALPHA,
	['C'] = C_TOKEN|C_URIC|C_HOST|C_WORD|C_HEX|C_SCHEME|C_PVAL|C_ALPHA,
	['D'] = C_TOKEN|C_URIC|C_HOST|C_WORD|C_HEX|C_SCHEME|C_PVAL|C_ALPHA,
	['E'] = C_TOKEN|C_URIC|C_HOST|C_WORD|C_HEX|C_SCHEME|C_PVAL|C_ALPHA,
	['F'] = C_TOKEN|C_URIC|C_HOST|C_WORD|C_HEX|C_SCHEME|C_PVAL|C_ALPHA,
	['G'] = C_TOKEN|C_URIC|C_HOST|C_WORD|C_SCHEME|C_PVAL|C_ALPHA,
	['H'] = C_TOKEN|C_URIC|C_HOST|C_WORD|C_SCHEME|C_PVAL|C_ALPHA,
	['I'] = C_TOKEN|C_URIC|C_HOST|C_WORD|C_SCHEME|C_PVAL|C_ALPHA,
	['J'] = C_TOKEN|C_URIC|C_HOST|C_WORD|C_SCHEME|C_PVAL|C_ALPHA,
	['K'] = C_TOKEN|C_URIC|C_HOST|C_WORD|C_SCHEME|C_PVAL|C_ALPHA,
	['L'] = C_TOKEN|C_URIC|C_HOST|C_WORD|C_SCHEME|C_PVAL|C_ALPHA,
	['M'] = C_TOKEN|C_URIC|C_HOST|C_WORD|C_SCHEME|C_PVAL|C_ALPHA,
	['N'] = C_TOKEN|C_URIC|C_HOST|C_WORD|C_SCHEME|C_PVAL|C_ALPHA,
	['O'] = C_TOKEN|C_URIC|C_HOST|C_WORD|C_SCHEME|C_PVAL|C_ALPHA,
	['P'] = C_TOKEN|C_URIC|C_HOST|C_WORD|C_SCHEME|C_PVAL|C_ALPHA,
	['Q'] = C_TOKEN|C_URIC|C_HOST|C_WORD|C_SCHEME|C_PVAL|C_ALPHA,
	['R'] = C_TOKEN|C_URIC|C_HOST|C_WORD|C_SCHEME|C_PVAL|C_ALPHA,
	['S'] = C_TOKEN|C_URIC|C_HOST|C_WORD|C_SCHEME|C_PVAL|C_ALPHA,
	['T'] = C_TOKEN|C_URIC|C_HOST|C_WORD|C_SCHEME|C_PVAL|C_ALPHA,
	['U'] = C_TOKEN|C_URIC|C_HOST|C_WORD|C_SCHEME|C_PVAL|C_ALPHA,
	['V'] = C_TOKEN|C_URIC|C_HOST|C_WORD|C_SCHEME|C_PVAL|C_ALPHA,
	['W'] = C_TOKEN|C_URIC|C_HOST|C_WORD|C_SCHEME|C_PVAL|C_ALPHA,
	['X'] = C_TOKEN|C_URIC|C_HOST|C_WORD|C_SCHEME|C_PVAL|C_ALPHA,
	['Y'] = C_TOKEN|C_URIC|C_HOST|C_WORD|C_SCHEME|C_PVAL|C_ALPHA,
	['Z'] = C_TOKEN|C_URIC|C_HOST|C_WORD|C_SCHEME|C_PVAL|C_ALPHA,
	['['] = C_URIC|C_WORD|C_PVAL,
	['\\'] = C_WORD,
	[']'] = C_URIC|C_WORD|C_PVAL,
	['_'] = C_TOKEN|C_URIC|C_HOST|C_WORD|C_PVAL,
	['`'] = C_TOKEN|C_WORD|C_PVAL,
	['a'] = C_TOKEN|C_URIC|C_HOST|C_WORD|C_HEX|C_SCHEME|C_PVAL|C_ALPHA,
	['b'] = C_TOKEN|C_URIC|C_HOST|C_WORD|C_HEX|C_SCHEME|C_PVAL|C_ALPHA,
	['c'] = C_TOKEN|C_URIC|C_HOST|C_WORD|C_HEX|C_SCHEME|C_PVAL|C_ALPHA,
	['d'] = C_TOKEN|C_URIC|C_HOST|C_WORD|C_HEX|C_SCHEME|C_PVAL|C_ALPHA,
	['e'] = C_TOKEN|C_URIC|C_HOST|C_WORD|C_HEX|C_SCHEME|C_PVAL|C_ALPHA,
	['f'] = C_TOKEN|C_URIC|C_HOST|C_WORD|C_HEX|C_SCHEME|C_PVAL|C_ALPHA,
	['g'] = C_TOKEN|C_URIC|C_HOST|C_WORD|C_SCHEME|C_PVAL|C_ALPHA,
	['h'] = C_TOKEN|C_URIC|C_HOST|C_WORD|C_SCHEME|C_PVAL|C_ALPHA,
	['i'] = C_TOKEN|C_URIC|C_HOST|C_WORD|C_SCHEME|C_PVAL|C_ALPHA,
	['j'] = C_TOKEN|C_URIC|C_HOST|C_WORD|C_SCHEME|C_PVAL|C_ALPHA,
	['k'] = C_TOKEN|C_URIC|C_HOST|C_WORD|C_SCHEME|C_PVAL|C_ALPHA,
	['l'] = C_TOKEN|C_URIC|C_HOST|C_WORD|C_SCHEME|C_PVAL|C_ALPHA,
	['m'] = C_TOKEN|C_URIC|C_HOST|C_WORD|C_SCHEME|C_PVAL|C_ALPHA,
	['n'] = C_TOKEN|C_URIC|C_HOST|C_WORD|C_SCHEME|C_PVAL|C_ALPHA,
	['o'] = C_TOKEN|C_URIC|C_HOST|C_WORD|C_SCHEME|C_PVAL|C_ALPHA,
	['p'] = C_TOKEN|C_URIC|C_HOST|C_WORD|C_SCHEME|C_PVAL|C_ALPHA,
	['q'] = C_TOKEN|C_URIC|C_HOST|C_WORD|C_SCHEME|C_PVAL|C_ALPHA,
	['r'] = C_TOKEN|C_URIC|C_HOST|C_WORD|C_SCHEME|C_PVAL|C_ALPHA,
	['s'] = C_TOKEN|C_URIC|C_HOST|C_WORD|C_SCHEME|C_PVAL|C_ALPHA,
	['t'] = C_TOKEN|C_URIC|C_HOST|C_WORD|C_SCHEME|C_PVAL|C_ALPHA,
	['u'] = C_TOKEN|C_URIC|C_HOST|C_WORD|C_SCHEME|C_PVAL|C_ALPHA,
	['v'] = C_TOKEN|C_URIC|C_HOST|C_WORD|C_SCHEME|C_PVAL|C_ALPHA,
	['w'] = C_TOKEN|C_URIC|C_HOST|C_WORD|C_SCHEME|C_PVAL|C_ALPHA,
	['x'] = C_TOKEN|C_URIC|C_HOST|C_WORD|C_SCHEME|C_PVAL|C_ALPHA,
	['y'] = C_TOKEN|C_URIC|C_HOST|C_WORD|C_SCHEME|C_PVAL|C_ALPHA,
	['z'] = C_TOKEN|C_URIC|C_HOST|C_WORD|C_SCHEME|C_PVAL|C_ALPHA,
	['{'] = C_WORD,
	['}'] = C_WORD,
	['~'] = C_TOKEN|C_URIC|C_WORD|C_PVAL,
};

static inline bool sip_is(char c, unsigned cls)
{
	return (sip_ctab[(unsigned char)c] & cls) != 0;
}

/* ASCII lowercase by table: one load, no branch, exact for every byte. */
#define SIP_LC8(b) (b), (b) + 1, (b) + 2, (b) + 3, (b) + 4, (b) + 5, \
		   (b) + 6, (b) + 7
#define SIP_LC32(b) SIP_LC8(b), SIP_LC8((b) + 8), SIP_LC8((b) + 16), \
		    SIP_LC8((b) + 24)
static const unsigned char sip_lctab[256] = {
	SIP_LC32(0), SIP_LC32(32),
	'@', SIP_LC8('a'), SIP_LC8('i'), SIP_LC8('q'), 'y', 'z',
	'[', '\\', ']', '^', '_',
	SIP_LC32(96), SIP_LC32(128), SIP_LC32(160), SIP_LC32(192),
	SIP_LC32(224),
};

static inline unsigned char sip_lower(char c)
{
	return sip_lctab[(unsigned char)c];
}

/* s[0..n) equals the lowercase literal lname, ignoring ASCII case. */
static inline bool sip_ieq(const char *s, const char *lname, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (sip_lower(s[i]) != (unsigned char)lname[i])
			return false;
	return true;
}

static inline size_t sip_skip_lws(const char *p, size_t i, size_t n)
{
	while (i < n && sip_is(p[i], C_LWS))
		i++;
	return i;
}

static inline struct pl sip_trim(struct pl x)
{
	while (x.l && sip_is(x.p[0], C_LWS)) {
		x.p++;
		x.l--;
	}
	while (x.l && sip_is(x.p[x.l - 1], C_LWS))
		x.l--;
	return x;
}

/* Length of the quoted-string starting at p[0] == '"', both quotes
 * included; 0 when it is not terminated. A backslash escapes any byte. */
static inline size_t sip_qstr_len(const char *p, size_t n)
{
	const char *q = n > 1 ? memchr(p + 1, '"', n - 1) : NULL;

	/* the usual case: no backslash before the first '"' */
	if (q && !memchr(p + 1, '\\', (size_t)(q - p) - 1))
		return (size_t)(q - p) + 1;
	if (!q)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if (p[i] == '\\')
			i++;
		else if (p[i] == '"')
			return i + 1;
	}
	return 0;
}

/*
 * Iterate ";name[=value]" params, with LWS allowed around ';' and '='.
 * *s is what is left; returns 0 with name (and value: unset when there is
 * no '=', quoted values keep their quotes), ENOENT at the end, EBADMSG
 * when the next thing is not a ';' or a quoted value is not closed. It
 * checks the framing only; callers check the characters they need.
 */
static inline int sip_param_next(struct pl *s, struct pl *name,
				 struct pl *value)
{
	const char *p = s->p;
	size_t n = s->l, i, st;

	if (!n)
		return ENOENT;	/* and never offset a NULL view */
	i = sip_skip_lws(p, 0, n);
	if (i == n) {
		s->p += n;
		s->l = 0;
		return ENOENT;
	}
	if (p[i] != ';')
		return EBADMSG;
	i = sip_skip_lws(p, i + 1, n);
	st = i;
	while (i < n && !sip_is(p[i], C_PNSTOP))
		i++;
	*name = (struct pl){ p + st, i - st };
	*value = PL_NULL;
	i = sip_skip_lws(p, i, n);
	if (i < n && p[i] == '=') {
		i = sip_skip_lws(p, i + 1, n);
		st = i;
		if (i < n && p[i] == '"') {
			size_t q = sip_qstr_len(p + i, n - i);

			if (!q)
				return EBADMSG;
			i += q;
		} else {
			while (i < n && !sip_is(p[i], C_PVSTOP))
				i++;
		}
		*value = (struct pl){ p + st, i - st };
	}
	s->p += i;
	s->l -= i;
	return 0;
}

/* A header param as the grammar wants it: token name, and a value that is
 * a token, a host or a quoted-string when there is an '='. */
static inline bool sip_param_valid(struct pl name, struct pl value)
{
	if (!name.l)
		return false;
	for (size_t i = 0; i < name.l; i++)
		if (!sip_is(name.p[i], C_TOKEN))
			return false;
	if (!pl_isset(value))
		return true;
	if (!value.l)
		return false;
	if (value.p[0] == '"')
		return true;	/* sip_param_next saw the closing quote */
	for (size_t i = 0; i < value.l; i++)
		if (!sip_is(value.p[i], C_PVAL))
			return false;
	return true;
}

/* Unsigned decimal of 1.. digits, at most max; false otherwise. */
static inline bool sip_u64(struct pl x, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (!x.l)
		return false;
	for (size_t i = 0; i < x.l; i++) {
		unsigned d = (unsigned char)x.p[i] - '0';

		if (d > 9 || d > max || v > (max - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

/* The inside of [...]: hex digits, ':' and '.', at least one ':'. The
 * RFC 3261 ABNF bug form "2001:db8:::192.0.2.1" passes (RFC 5118 4.10). */
static inline bool sip_ipv6_ref_ok(const char *p, size_t n)
{
	bool colon = false;

	if (n < 2 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (p[i] == ':')
			colon = true;
		else if (p[i] != '.' && !sip_is(p[i], C_HEX))
			return false;
	}
	return colon;
}

/* "host" or "[v6]" at p[*ip], then ":port"; *ip moves past them.
 * Shared by URIs and Via sent-by. */
static inline int sip_hostport_parse(const char *p, size_t n, size_t *ip,
				     struct pl *host, uint16_t *port,
				     bool *v6)
{
	size_t i = *ip, st = i;

	*v6 = false;
	if (i < n && p[i] == '[') {
		const char *close = memchr(p + i, ']', n - i);

		if (!close ||
		    !sip_ipv6_ref_ok(p + i + 1, (size_t)(close - p) - i - 1))
			return EBADMSG;
		i = (size_t)(close - p) + 1;
		*v6 = true;
	} else {
		while (i < n && sip_is(p[i], C_HOST))
			i++;
	}
	if (i == st)
		return EBADMSG;
	*host = (struct pl){ p + st, i - st };
	*port = 0;
	if (i < n && p[i] == ':') {
		uint32_t v = 0;
		size_t d = ++i;

		while (i < n && sip_is(p[i], C_DIGIT) && i - d < 5)
			v = v * 10 + (uint32_t)(p[i++] - '0');
		if (i == d || v > 65535 || (i < n && sip_is(p[i], C_DIGIT)))
			return EBADMSG;
		*port = (uint16_t)v;
	}
	*ip = i;
	return 0;
}

#endif
