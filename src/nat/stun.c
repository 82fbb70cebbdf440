/*
 * stun.c - Binding requests and responses (see stun.h).
 */
#include "nat/stun.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#define STUN_MAGIC 0x2112a442u
#define ATTR_MAPPED 0x0001
#define ATTR_CHANGE_REQUEST 0x0003
#define ATTR_XOR_MAPPED 0x0020
#define ATTR_OTHER_ADDRESS 0x802c

size_t stun_binding_request(uint8_t *buf, const uint8_t txid[12],
			    unsigned change_flags)
{
	uint32_t magic = htonl(STUN_MAGIC);
	size_t len = 20;

	buf[0] = 0x00;
	buf[1] = 0x01;		/* Binding request */
	memcpy(buf + 4, &magic, 4);
	memcpy(buf + 8, txid, 12);
	if (change_flags) {
		buf[20] = ATTR_CHANGE_REQUEST >> 8;
		buf[21] = ATTR_CHANGE_REQUEST & 0xff;
		buf[22] = 0;
		buf[23] = 4;
		buf[24] = buf[25] = buf[26] = 0;
		buf[27] = (uint8_t)change_flags;
		len += 8;
	}
	buf[2] = (uint8_t)((len - 20) >> 8);
	buf[3] = (uint8_t)(len - 20);
	return len;
}

void stun_new_txid(uint8_t txid[12])
{
	for (int i = 0; i < 12; i++)
		txid[i] = (uint8_t)rand();
}

/* An IPv4 address attribute value (family 0x01); xor for XOR-MAPPED. */
static bool v4_attr(const uint8_t *v, size_t alen, bool xor,
		    struct sockaddr_storage *out)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)out;
	uint16_t port;
	uint32_t ip;

	if (alen < 8 || v[1] != 0x01)
		return false;
	port = (uint16_t)(v[2] << 8 | v[3]);
	memcpy(&ip, v + 4, 4);
	if (xor) {
		port ^= (uint16_t)(STUN_MAGIC >> 16);
		ip ^= htonl(STUN_MAGIC);
	}
	memset(out, 0, sizeof(*out));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = ip;
	sin->sin_port = htons(port);
	return true;
}

bool stun_parse_response(const uint8_t *buf, size_t len,
			 const uint8_t txid[12],
			 struct sockaddr_storage *mapped,
			 struct sockaddr_storage *other)
{
	size_t off = 20, mlen;
	bool found = false, xor_found = false;

	memset(other, 0, sizeof(*other));
	if (len < 20 || buf[0] != 0x01 || buf[1] != 0x01 ||
	    memcmp(buf + 8, txid, 12) != 0)
		return false;	/* not a Binding success for us */
	mlen = (size_t)buf[2] << 8 | buf[3];
	if (mlen + 20 > len)
		return false;
	while (off + 4 <= 20 + mlen) {
		unsigned type = (unsigned)buf[off] << 8 | buf[off + 1];
		size_t alen = (size_t)buf[off + 2] << 8 | buf[off + 3];
		const uint8_t *v = buf + off + 4;

		if (off + 4 + alen > 20 + mlen)
			break;
		if (type == ATTR_XOR_MAPPED && v4_attr(v, alen, true, mapped))
			found = xor_found = true;
		else if (type == ATTR_MAPPED && !xor_found &&
			 v4_attr(v, alen, false, mapped))
			found = true;	/* XOR-MAPPED wins over MAPPED */
		else if (type == ATTR_OTHER_ADDRESS)
			v4_attr(v, alen, false, other);
		off += 4 + ((alen + 3) & ~(size_t)3);
	}
	return found;
}
