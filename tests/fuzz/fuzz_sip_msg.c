/*
 * fuzz_sip_msg.c - libFuzzer target for the SIP parser (src/sip/): each
 * input is parsed as a datagram and as a stream (then the rest of the
 * stream, as the transport would), and every accessor is run over what
 * came out: header walk, Via, name-addr, URI, params, URI comparison and
 * credentials. The input is copied to a buffer of exactly its size so
 * ASan sees any read past the end. Seeds: tests/fuzz/corpus/.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sip/msg.h"

static struct sip_msg msg;
static volatile size_t sink;

static void touch(struct pl x)
{
	/* read every byte of a view: out-of-buffer views crash here */
	for (size_t i = 0; i < x.l; i++)
		sink += (unsigned char)x.p[i];
}

static void check_uri(const struct sip_uri *u)
{
	struct pl v;

	touch(u->scheme);
	touch(u->user);
	touch(u->password);
	touch(u->host);
	touch(u->params);
	touch(u->headers);
	touch(u->opaque);
	if (sip_param_get(u->params, "transport", &v))
		touch(v);
	if (!sip_uri_equal(u, u) && u->scheme.l)
		abort();	/* a parsed URI equals itself */
}

static void check_addr(struct pl value)
{
	struct sip_addr a;
	struct sip_uri u;
	struct pl v;

	if (sip_addr_parse(&a, value))
		return;
	touch(a.dname);
	touch(a.uri_str);
	touch(a.params);
	check_uri(&a.uri);
	if (sip_param_get(a.params, "tag", &v))
		touch(v);
	if (sip_param_get(a.params, "expires", &v))
		touch(v);
	if (!a.star && sip_uri_parse(&u, a.uri_str) == 0)
		sink += sip_uri_equal(&u, &a.uri);
}

static void check_msg(const struct sip_msg *m)
{
	struct sip_via via;
	struct sip_auth au;

	if (m->nhdrs > SIP_MAX_HDRS)
		abort();
	for (unsigned i = 0; i < m->nhdrs; i++) {
		const struct sip_hdr *h = &m->hdrs[i];

		touch(h->name);
		touch(h->value);
		if (h->line_off + h->line_len > m->len ||
		    h->index >= h->nvalues)
			abort();
		if (sip_hdr_find_name(m, h->name) == NULL)
			abort();
		switch (h->id) {
		case SIP_HDR_VIA:
			if (sip_via_parse(&via, h->value) == 0) {
				touch(via.branch);
				touch(via.received);
				touch(via.rport);
				touch(via.host);
			}
			break;
		case SIP_HDR_FROM: case SIP_HDR_TO: case SIP_HDR_CONTACT:
		case SIP_HDR_ROUTE: case SIP_HDR_RECORD_ROUTE:
		case SIP_HDR_PATH: case SIP_HDR_REFER_TO:
			check_addr(h->value);
			break;
		case SIP_HDR_AUTHORIZATION: case SIP_HDR_PROXY_AUTHORIZATION:
			if (sip_auth_parse(&au, h->value) == 0) {
				touch(au.username);
				touch(au.realm);
				touch(au.nonce);
				touch(au.uri);
				touch(au.response);
				touch(au.cnonce);
				touch(au.opaque);
			}
			break;
		default:
			break;
		}
	}
	for (int id = 0; id < SIP_HDR_COUNT; id++) {
		int n = 0;

		for (int i = sip_hdr_next(m, -1, (enum sip_hdr_id)id); i >= 0;
		     i = sip_hdr_next(m, i, (enum sip_hdr_id)id))
			if (++n > SIP_MAX_HDRS || (int)m->hdrs[i].id != id)
				abort();
	}
	touch(m->method);
	touch(m->ruri_str);
	touch(m->reason);
	touch(m->call_id);
	touch(m->cseq_method);
	touch(m->content_type);
	touch(m->body);
	touch(m->from_tag);
	touch(m->to_tag);
	touch(m->via.value);
	check_uri(&m->ruri);
	check_uri(&m->from.uri);
	check_uri(&m->to.uri);
	sink += strlen(sip_method_name(m->method_id));
	/* the standalone parser agrees with what the message parse kept */
	if (m->is_request) {
		struct sip_uri u;

		if (sip_uri_parse(&u, m->ruri_str) != 0 ||
		    !sip_uri_equal(&u, &m->ruri))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size ? size : 1);
	size_t off = 0;
	int err;

	if (!buf)
		return 0;
	if (size)
		memcpy(buf, data, size);

	err = sip_msg_parse(&msg, buf, size, false);
	if (err == 0 || err == EBADMSG || err == ENODATA) {
		if (msg.buf < buf || (size_t)(msg.buf - buf) + msg.len > size)
			abort();
		if (err == 0)
			check_msg(&msg);
	}

	/* as a stream: consume message after message */
	for (int rounds = 0; rounds < 64 && off <= size; rounds++) {
		size_t used;

		err = sip_msg_parse(&msg, buf + off, size - off, true);
		if (err == EAGAIN)
			break;
		/* consumed = skipped keepalives + the message */
		used = (size_t)(msg.buf - (buf + off)) + msg.len;
		if (msg.buf < buf + off || used > size - off)
			abort();
		if (err == 0) {
			unsigned nhdrs = msg.nhdrs;
			size_t mlen = msg.len;

			check_msg(&msg);
			if (msg.body.p + msg.body.l > buf + size)
				abort();
			/* with a Content-Length, stream and datagram framing
			 * must agree on exactly the same bytes */
			if (sip_msg_parse(&msg, buf + off, used, false) != 0 ||
			    msg.len != mlen || msg.nhdrs != nhdrs)
				abort();
		}
		if (err == EBADMSG || used == 0)
			break;
		off += used;
	}

	/* the accessors on raw input, too */
	{
		struct pl in = { buf, size };
		struct sip_uri u;
		struct sip_via v;
		struct sip_auth au;

		check_addr(in);
		if (sip_uri_parse(&u, in) == 0)
			check_uri(&u);
		if (sip_via_parse(&v, in) == 0)
			touch(v.params);
		if (sip_auth_parse(&au, in) == 0)
			touch(au.scheme);
		sink += sip_param_get(in, "tag", NULL);
		sink += sip_method_from_pl(in);
	}
	free(buf);
	return 0;
}
