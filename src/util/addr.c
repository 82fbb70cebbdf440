/*
 * addr.c - socket address helpers (see addr.h).
 */
#include "util/addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "util/hash.h"

char *addr_ip_str(const struct sockaddr_storage *sa, char *buf, size_t cap)
{
	buf[0] = '\0';
	if (sa->ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr,
			  buf, (socklen_t)cap);
	else if (sa->ss_family == AF_INET6)
		inet_ntop(AF_INET6,
			  &((const struct sockaddr_in6 *)sa)->sin6_addr, buf,
			  (socklen_t)cap);
	return buf;
}

char *addr_host_str(const struct sockaddr_storage *sa, char *buf, size_t cap)
{
	char ip[INET6_ADDRSTRLEN];

	addr_ip_str(sa, ip, sizeof(ip));
	if (sa->ss_family == AF_INET6)
		snprintf(buf, cap, "[%s]", ip);
	else
		snprintf(buf, cap, "%s", ip);
	return buf;
}

char *addr_str(const struct sockaddr_storage *sa, char *buf, size_t cap)
{
	char host[INET6_ADDRSTRLEN + 2];

	addr_host_str(sa, host, sizeof(host));
	snprintf(buf, cap, "%s:%u", host, addr_port(sa));
	return buf;
}

uint16_t addr_port(const struct sockaddr_storage *sa)
{
	if (sa->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	if (sa->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return 0;
}

void addr_set_port(struct sockaddr_storage *sa, uint16_t port)
{
	if (sa->ss_family == AF_INET)
		((struct sockaddr_in *)sa)->sin_port = htons(port);
	else if (sa->ss_family == AF_INET6)
		((struct sockaddr_in6 *)sa)->sin6_port = htons(port);
}

socklen_t addr_len(const struct sockaddr_storage *sa)
{
	return sa->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
					 : sizeof(struct sockaddr_in);
}

int addr_from_ip(struct sockaddr_storage *sa, struct pl ip, uint16_t port)
{
	char buf[INET6_ADDRSTRLEN + 2];

	memset(sa, 0, sizeof(*sa));
	if (ip.l >= 2 && ip.p[0] == '[' && ip.p[ip.l - 1] == ']') {
		ip.p++;
		ip.l -= 2;
	}
	if (ip.l == 0 || ip.l >= sizeof(buf))
		return EINVAL;
	pl_strcpy(buf, sizeof(buf), ip);
	if (inet_pton(AF_INET, buf,
		      &((struct sockaddr_in *)sa)->sin_addr) == 1) {
		sa->ss_family = AF_INET;
	} else if (inet_pton(AF_INET6, buf,
			     &((struct sockaddr_in6 *)sa)->sin6_addr) == 1) {
		sa->ss_family = AF_INET6;
	} else {
		return EINVAL;
	}
	addr_set_port(sa, port);
	return 0;
}

int addr_parse(struct sockaddr_storage *sa, const char *s,
	       uint16_t default_port)
{
	struct pl x = pl_from_str(s), ip = x;
	const char *colon = NULL;
	uint64_t port = default_port;

	if (x.l && x.p[0] == '[') {
		const char *end = pl_chr(x, ']');
		if (!end)
			return EINVAL;
		ip = (struct pl){ x.p, (size_t)(end - x.p) + 1 };
		if ((size_t)(end - x.p) + 1 < x.l) {
			if (end[1] != ':')
				return EINVAL;
			colon = end + 1;
		}
	} else {
		colon = pl_chr(x, ':');
		if (colon && memchr(colon + 1, ':', x.l - (size_t)(colon - x.p) - 1))
			colon = NULL;	/* bare IPv6 without port */
		if (colon)
			ip.l = (size_t)(colon - x.p);
	}
	if (colon) {
		struct pl p = { colon + 1, x.l - (size_t)(colon + 1 - x.p) };
		if (pl_u64(p, 65535, &port))
			return EINVAL;
	}
	return addr_from_ip(sa, ip, (uint16_t)port);
}

bool addr_ip_eq(const struct sockaddr_storage *a,
		const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	if (a->ss_family == AF_INET6)
		return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
			      &((const struct sockaddr_in6 *)b)->sin6_addr,
			      16) == 0;
	return false;
}

bool addr_eq(const struct sockaddr_storage *a,
	     const struct sockaddr_storage *b)
{
	return addr_ip_eq(a, b) && addr_port(a) == addr_port(b);
}

bool addr_is_private(const struct sockaddr_storage *sa)
{
	if (sa->ss_family == AF_INET) {
		uint32_t a = ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr);
		return (a >> 24) == 10 || (a >> 20) == (172 << 4 | 1) ||
		       (a >> 16) == (192 << 8 | 168) || (a >> 24) == 127 ||
		       (a >> 16) == (169 << 8 | 254) ||
		       (a >> 22) == ((100u << 2) | 1);	/* 100.64/10 */
	}
	if (sa->ss_family == AF_INET6) {
		const uint8_t *b = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
		static const uint8_t loop6[16] = { [15] = 1 };
		return (b[0] & 0xfe) == 0xfc || (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) ||
		       memcmp(b, loop6, 16) == 0;
	}
	return false;
}

bool addr_is_any(const struct sockaddr_storage *sa)
{
	if (sa->ss_family == AF_INET)
		return ((const struct sockaddr_in *)sa)->sin_addr.s_addr == 0;
	if (sa->ss_family == AF_INET6) {
		static const uint8_t zero[16];
		return memcmp(&((const struct sockaddr_in6 *)sa)->sin6_addr,
			      zero, 16) == 0;
	}
	return true;
}

bool addr_is_unusable(const struct sockaddr_storage *sa)
{
	if (addr_is_any(sa))
		return true;
	if (sa->ss_family == AF_INET) {
		uint32_t a = ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr);
		return a == 0xffffffffu || (a >> 28) == 0xe;
	}
	if (sa->ss_family == AF_INET6)
		return ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr[0] == 0xff;
	return true;
}

uint64_t addr_ip_hash(const struct sockaddr_storage *sa)
{
	if (sa->ss_family == AF_INET)
		return hash_bytes(HASH_SEED,
				  &((const struct sockaddr_in *)sa)->sin_addr, 4);
	return hash_bytes(HASH_SEED,
			  &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
}
