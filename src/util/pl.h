/*
 * pl.h - pointer/length views over a buffer (zero-copy strings).
 * Owns nothing: a pl never frees and is valid as long as its buffer lives.
 * Every parser in pinhole takes and returns pl views instead of copies.
 */
#ifndef PINHOLE_UTIL_PL_H
#define PINHOLE_UTIL_PL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct pl {
	const char *p;
	size_t l;
};

#define PL(s) ((struct pl){ (s), sizeof(s) - 1 })
#define PL_NULL ((struct pl){ NULL, 0 })
/* printf("%.*s", PL_FMT(x)) */
#define PL_FMT(x) (int)(x).l, (x).p

static inline struct pl pl_from_str(const char *s)
{
	return (struct pl){ s, s ? strlen(s) : 0 };
}

static inline bool pl_isset(struct pl x)
{
	return x.p != NULL;
}

/* Exact, case-sensitive comparison. */
bool pl_eq(struct pl a, struct pl b);
bool pl_eq_str(struct pl a, const char *s);
/* ASCII case-insensitive comparison. */
bool pl_caseeq(struct pl a, struct pl b);
bool pl_caseeq_str(struct pl a, const char *s);
/* Parse an unsigned decimal; 0 on success, EINVAL (not all digits / empty)
 * or ERANGE (above max). */
int pl_u64(struct pl x, uint64_t max, uint64_t *out);
/* Copy into a NUL-terminated buffer; truncates; returns dst. */
char *pl_strcpy(char *dst, size_t cap, struct pl x);
/* Trim leading/trailing SP, HTAB, CR, LF. */
struct pl pl_trim(struct pl x);
/* Find a character; NULL if absent. */
const char *pl_chr(struct pl x, char c);

/* The value of one hex digit, or -1. */
static inline int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

#endif
