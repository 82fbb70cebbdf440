/*
 * addr.h - socket address helpers: print, parse, compare, classify.
 * Owns no state.
 */
#ifndef PINHOLE_UTIL_ADDR_H
#define PINHOLE_UTIL_ADDR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include "util/pl.h"

#define ADDR_STRLEN 64	/* "[ffff:...]:65535" fits */

/* "1.2.3.4:5060" / "[2001:db8::1]:5060" into buf; returns buf. */
char *addr_str(const struct sockaddr_storage *sa, char *buf, size_t cap);
/* IP only, no brackets. */
char *addr_ip_str(const struct sockaddr_storage *sa, char *buf, size_t cap);
/* IP for a URI host: IPv6 in brackets. */
char *addr_host_str(const struct sockaddr_storage *sa, char *buf, size_t cap);
uint16_t addr_port(const struct sockaddr_storage *sa);
void addr_set_port(struct sockaddr_storage *sa, uint16_t port);
socklen_t addr_len(const struct sockaddr_storage *sa);
/* Parse an IP literal (IPv6 with or without brackets) and a port. */
int addr_from_ip(struct sockaddr_storage *sa, struct pl ip, uint16_t port);
/* Parse "ip:port" / "[ip6]:port" / "ip" (port = default_port). */
int addr_parse(struct sockaddr_storage *sa, const char *s,
	       uint16_t default_port);
bool addr_eq(const struct sockaddr_storage *a,
	     const struct sockaddr_storage *b);	/* ip and port */
bool addr_ip_eq(const struct sockaddr_storage *a,
		const struct sockaddr_storage *b);
/* Hash of the IP alone (util/hash.h seed): tables keyed by address. */
uint64_t addr_ip_hash(const struct sockaddr_storage *sa);
/* RFC 1918 / RFC 6598 / loopback / link-local / ULA. */
bool addr_is_private(const struct sockaddr_storage *sa);
bool addr_is_any(const struct sockaddr_storage *sa);
/* Broadcast, multicast or unspecified: never a destination. */
bool addr_is_unusable(const struct sockaddr_storage *sa);

#endif
