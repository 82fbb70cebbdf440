/*
 * sdp.c - SDP parsing for the relay (see sdp.h).
 *
 * One pass over the lines; only the fields the relay rewrites are kept,
 * everything else is passed through untouched by the editor. Lines may end
 * with CRLF or a bare LF (both are seen in the field).
 */
#include "sdp/sdp.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static struct pl next_line(const char **pos, const char *end, struct pl *whole)
{
	const char *s = *pos, *e = memchr(s, '\n', (size_t)(end - s));
	const char *next = e ? e + 1 : end;
	struct pl line = { s, (size_t)((e ? e : end) - s) };

	if (line.l && line.p[line.l - 1] == '\r')
		line.l--;
	*whole = (struct pl){ s, (size_t)(next - s) };
	*pos = next;
	return line;
}

/* Split "a b c" into up to n space-separated words. */
static unsigned words(struct pl s, struct pl *w, unsigned n)
{
	unsigned k = 0;
	size_t i = 0;

	while (i < s.l && k < n) {
		size_t j;
		while (i < s.l && s.p[i] == ' ')
			i++;
		if (i >= s.l)
			break;
		j = i;
		while (j < s.l && s.p[j] != ' ')
			j++;
		w[k++] = (struct pl){ s.p + i, j - i };
		i = j;
	}
	return k;
}

static enum sdp_dir dir_of(struct pl attr, bool *found)
{
	*found = true;
	if (pl_eq_str(attr, "sendonly"))
		return SDP_SENDONLY;
	if (pl_eq_str(attr, "recvonly"))
		return SDP_RECVONLY;
	if (pl_eq_str(attr, "inactive"))
		return SDP_INACTIVE;
	if (pl_eq_str(attr, "sendrecv"))
		return SDP_SENDRECV;
	*found = false;
	return SDP_SENDRECV;
}

static bool is_ice_attr(struct pl attr)
{
	static const char *const names[] = {
		"candidate:", "ice-ufrag:", "ice-pwd:", "ice-options:",
		"remote-candidates:", "end-of-candidates", "ice-lite",
		"ice-mismatch",
	};
	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		size_t n = strlen(names[i]);
		if (attr.l >= n && memcmp(attr.p, names[i], n) == 0)
			return true;
	}
	return false;
}

int sdp_parse(struct sdp *sdp, struct pl body)
{
	const char *pos = body.p, *end = body.p + body.l;
	struct sdp_media *m = NULL;
	bool saw_v = false;

	memset(sdp, 0, sizeof(*sdp));
	sdp->body = body;
	while (pos < end) {
		struct pl whole, line = next_line(&pos, end, &whole);
		struct pl val, w[6];
		unsigned n;

		if (line.l < 2 || line.p[1] != '=')
			continue;	/* tolerate blank or odd lines */
		val = (struct pl){ line.p + 2, line.l - 2 };
		switch (line.p[0]) {
		case 'v':
			saw_v = true;
			break;
		case 'o':
			if (words(val, w, 6) == 6)
				sdp->origin_addr = w[5];
			break;
		case 'c':
			n = words(val, w, 3);
			if (n == 3) {
				/* strip a multicast /ttl suffix */
				const char *slash = pl_chr(w[2], '/');
				if (slash)
					w[2].l = (size_t)(slash - w[2].p);
				if (m)
					m->conn_addr = w[2];
				else {
					sdp->conn_addr = w[2];
					sdp->conn_ipv6 = pl_eq_str(w[1], "IP6");
				}
			}
			break;
		case 'm':
			if (sdp->nmedia == SDP_MAX_MEDIA)
				return EBADMSG;
			if (m)
				m->end = whole.p;
			m = &sdp->media[sdp->nmedia++];
			n = words(val, w, 3);
			if (n < 3)
				return EBADMSG;
			m->media = w[0];
			m->port_str = w[1];
			{
				const char *slash = pl_chr(w[1], '/');
				uint64_t port;
				if (slash)
					m->port_str.l = (size_t)(slash - w[1].p);
				if (pl_u64(m->port_str, 65535, &port))
					return EBADMSG;
				m->port = (uint16_t)port;
			}
			m->proto = w[2];
			break;
		case 'a': {
			bool found;
			enum sdp_dir d;

			if (is_ice_attr(val)) {
				if (sdp->ndrop < SDP_MAX_DROP)
					sdp->drop[sdp->ndrop++] = whole;
				break;
			}
			d = dir_of(val, &found);
			if (found) {
				if (m) {
					m->dir = d;
					m->dir_explicit = true;
				} else {
					sdp->dir = d;
				}
				break;
			}
			if (!m)
				break;
			if (pl_eq_str(val, "rtcp-mux")) {
				m->rtcp_mux = true;
			} else if (val.l > 5 && memcmp(val.p, "rtcp:", 5) == 0) {
				uint64_t port;
				m->rtcp_value = (struct pl){ val.p + 5, val.l - 5 };
				n = words(m->rtcp_value, w, 4);
				if (n >= 1 && pl_u64(w[0], 65535, &port) == 0)
					m->rtcp_port = (uint16_t)port;
				if (n == 4)
					m->rtcp_addr = w[3];
			}
			break;
		}
		default:
			break;
		}
	}
	if (m)
		m->end = end;
	return saw_v ? 0 : EBADMSG;
}

struct pl sdp_media_addr(const struct sdp *sdp, unsigned i)
{
	return pl_isset(sdp->media[i].conn_addr) ? sdp->media[i].conn_addr
						  : sdp->conn_addr;
}

enum sdp_dir sdp_media_dir(const struct sdp *sdp, unsigned i)
{
	return sdp->media[i].dir_explicit ? sdp->media[i].dir : sdp->dir;
}

bool sdp_media_on_hold(const struct sdp *sdp, unsigned i)
{
	enum sdp_dir d = sdp_media_dir(sdp, i);

	return d == SDP_SENDONLY || d == SDP_INACTIVE ||
	       pl_eq_str(sdp_media_addr(sdp, i), "0.0.0.0");
}

/* Content-Type value without parameters, and the boundary parameter. */
static struct pl ctype_base(struct pl ct)
{
	const char *semi = pl_chr(ct, ';');

	if (semi)
		ct.l = (size_t)(semi - ct.p);
	return pl_trim(ct);
}

static const char *find_mem(const char *h, size_t hl, const char *n, size_t nl)
{
	if (nl == 0 || hl < nl)
		return NULL;
	return memmem(h, hl, n, nl);
}

int sdp_find(const struct sip_msg *msg, struct pl *sdp_body)
{
	struct pl ct = ctype_base(msg->content_type), boundary;
	char delim[80];
	const char *p, *end;
	int dl;

	if (!msg->body.l)
		return ENOENT;
	if (pl_caseeq_str(ct, "application/sdp")) {
		*sdp_body = msg->body;
		return 0;
	}
	if (!pl_caseeq_str(ct, "multipart/mixed") &&
	    !pl_caseeq_str(ct, "multipart/alternative"))
		return ENOENT;
	{
		const char *semi = pl_chr(msg->content_type, ';');
		struct pl params;
		if (!semi)
			return ENOENT;
		params = (struct pl){ semi, msg->content_type.l -
					    (size_t)(semi - msg->content_type.p) };
		if (!sip_param_get(params, "boundary", &boundary) ||
		    !boundary.l || boundary.l > 70)
			return ENOENT;
		if (boundary.l >= 2 && boundary.p[0] == '"') {
			boundary.p++;
			boundary.l -= 2;
		}
	}
	dl = snprintf(delim, sizeof(delim), "--%.*s", PL_FMT(boundary));
	p = msg->body.p;
	end = msg->body.p + msg->body.l;
	/* Walk the parts: each starts after a delimiter line. */
	while ((p = find_mem(p, (size_t)(end - p), delim, (size_t)dl))) {
		const char *hdr_start = p + dl, *hdr_end, *next;
		if (hdr_start + 2 <= end && hdr_start[0] == '-' && hdr_start[1] == '-')
			break;	/* closing delimiter */
		hdr_start = memchr(hdr_start, '\n', (size_t)(end - hdr_start));
		if (!hdr_start)
			break;
		hdr_start++;
		hdr_end = find_mem(hdr_start, (size_t)(end - hdr_start), "\r\n\r\n", 4);
		if (!hdr_end)
			break;
		next = find_mem(hdr_end, (size_t)(end - hdr_end), delim, (size_t)dl);
		if (!next)
			next = end;
		{
			/* part headers: look for Content-Type application/sdp */
			struct pl h = { hdr_start, (size_t)(hdr_end - hdr_start) };
			const char *c = h.p;
			bool is_sdp = false;
			while (c < h.p + h.l) {
				const char *eol = memchr(c, '\n', (size_t)(h.p + h.l - c));
				struct pl line = { c, (size_t)((eol ? eol : h.p + h.l) - c) };
				const char *colon = pl_chr(line, ':');
				if (colon) {
					struct pl name = pl_trim((struct pl){ line.p,
						(size_t)(colon - line.p) });
					struct pl v = pl_trim((struct pl){ colon + 1,
						line.l - (size_t)(colon + 1 - line.p) });
					if ((pl_caseeq_str(name, "Content-Type") ||
					     pl_caseeq_str(name, "c")) &&
					    pl_caseeq_str(ctype_base(v), "application/sdp"))
						is_sdp = true;
				}
				c = eol ? eol + 1 : h.p + h.l;
			}
			if (is_sdp) {
				const char *b = hdr_end + 4, *e = next;
				/* the CRLF before the delimiter belongs to it */
				if (e - b >= 2 && e[-2] == '\r' && e[-1] == '\n')
					e -= 2;
				*sdp_body = (struct pl){ b, (size_t)(e - b) };
				return 0;
			}
		}
		p = next;
	}
	return ENOENT;
}
