/*
 * pl.c - pointer/length view helpers (see pl.h).
 */
#include "util/pl.h"

#include <errno.h>

bool pl_eq(struct pl a, struct pl b)
{
	return a.l == b.l && (a.l == 0 || memcmp(a.p, b.p, a.l) == 0);
}

bool pl_eq_str(struct pl a, const char *s)
{
	return pl_eq(a, pl_from_str(s));
}

static inline unsigned char lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

bool pl_caseeq(struct pl a, struct pl b)
{
	if (a.l != b.l)
		return false;
	for (size_t i = 0; i < a.l; i++)
		if (lower((unsigned char)a.p[i]) != lower((unsigned char)b.p[i]))
			return false;
	return true;
}

bool pl_caseeq_str(struct pl a, const char *s)
{
	return pl_caseeq(a, pl_from_str(s));
}

int pl_u64(struct pl x, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (x.l == 0)
		return EINVAL;
	for (size_t i = 0; i < x.l; i++) {
		unsigned char c = (unsigned char)x.p[i];
		if (c < '0' || c > '9')
			return EINVAL;
		if (v > (max - (uint64_t)(c - '0')) / 10)
			return ERANGE;
		v = v * 10 + (uint64_t)(c - '0');
	}
	*out = v;
	return 0;
}

char *pl_strcpy(char *dst, size_t cap, struct pl x)
{
	size_t n;

	if (cap == 0)
		return dst;
	n = x.l < cap - 1 ? x.l : cap - 1;
	if (n)
		memcpy(dst, x.p, n);
	dst[n] = '\0';
	return dst;
}

static inline bool is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

struct pl pl_trim(struct pl x)
{
	while (x.l && is_ws(x.p[0])) {
		x.p++;
		x.l--;
	}
	while (x.l && is_ws(x.p[x.l - 1]))
		x.l--;
	return x;
}

const char *pl_chr(struct pl x, char c)
{
	return x.l ? memchr(x.p, c, x.l) : NULL;
}
