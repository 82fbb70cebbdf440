/*
 * stun.h - the few STUN (RFC 5389) messages pinhole needs: a Binding
 * request, optionally with CHANGE-REQUEST (RFC 5780), and the parse of its
 * success response (XOR-MAPPED-ADDRESS or MAPPED-ADDRESS, OTHER-ADDRESS).
 * IPv4 only, as the near-end NAT support is. No state.
 */
#ifndef PINHOLE_NAT_STUN_H
#define PINHOLE_NAT_STUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define STUN_CHANGE_IP 0x04
#define STUN_CHANGE_PORT 0x02

/* Writes the request into buf (>= 28 bytes); returns its length. */
size_t stun_binding_request(uint8_t *buf, const uint8_t txid[12],
			    unsigned change_flags);
void stun_new_txid(uint8_t txid[12]);

/* A Binding success response to txid? Fills mapped (port included) and,
 * when the server sent OTHER-ADDRESS, other (else other->ss_family = 0). */
bool stun_parse_response(const uint8_t *buf, size_t len,
			 const uint8_t txid[12],
			 struct sockaddr_storage *mapped,
			 struct sockaddr_storage *other);

#endif
