/*
 * edit.c - edits over original bytes and response building (see edit.h).
 *
 * Edits are collected unordered (each caller knows only its own spans),
 * stably sorted by offset at apply time, and must not overlap. Inserted
 * text lives in the editor's scratch area so that building an outgoing
 * message allocates nothing.
 */
#include "sip/edit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sip_ed_init(struct sip_editor *ed, const char *base, size_t len)
{
	ed->base = base;
	ed->base_len = len;
	ed->n = 0;
	ed->err = 0;
	ed->scratch_len = 0;
}

static void add(struct sip_editor *ed, size_t off, size_t del,
		const char *fmt, va_list ap)
{
	struct sip_edit *e;
	int r = 0;

	if (ed->err)
		return;
	if (ed->n == SIP_EDIT_MAX || off + del > ed->base_len) {
		ed->err = ENOSPC;
		return;
	}
	e = &ed->edits[ed->n];
	e->off = (uint32_t)off;
	e->del = (uint32_t)del;
	e->ins_off = (uint32_t)ed->scratch_len;
	e->seq = ed->n;
	if (fmt) {
		size_t room = SIP_EDIT_SCRATCH - ed->scratch_len;
		r = vsnprintf(ed->scratch + ed->scratch_len, room, fmt, ap);
		if (r < 0 || (size_t)r >= room) {
			ed->err = ENOSPC;
			return;
		}
	}
	e->ins_len = (uint32_t)r;
	ed->scratch_len += (size_t)r;
	ed->n++;
}

void sip_ed_replace(struct sip_editor *ed, struct pl span, const char *fmt,
		    ...)
{
	va_list ap;

	va_start(ap, fmt);
	add(ed, (size_t)(span.p - ed->base), span.l, fmt, ap);
	va_end(ap);
}

void sip_ed_insert(struct sip_editor *ed, size_t off, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	add(ed, off, 0, fmt, ap);
	va_end(ap);
}

void sip_ed_delete(struct sip_editor *ed, size_t off, size_t len)
{
	va_list ap;

	memset(&ap, 0, sizeof(ap));
	add(ed, off, len, NULL, ap);
}

void sip_ed_delete_hdr(struct sip_editor *ed, const struct sip_msg *msg,
		       unsigned idx)
{
	const struct sip_hdr *h = &msg->hdrs[idx];
	size_t start, end;

	if (h->nvalues <= 1) {
		sip_ed_delete(ed, h->line_off, h->line_len);
		return;
	}
	/* One value of a list line: remove it with its comma. Entries of a
	 * line are consecutive in msg->hdrs. */
	if (h->index + 1 < h->nvalues) {
		start = (size_t)(h->value.p - msg->buf);
		end = (size_t)(msg->hdrs[idx + 1].value.p - msg->buf);
	} else {
		const struct sip_hdr *prev = &msg->hdrs[idx - 1];
		start = (size_t)(prev->value.p + prev->value.l - msg->buf);
		end = (size_t)(h->value.p + h->value.l - msg->buf);
	}
	sip_ed_delete(ed, start + (size_t)(msg->buf - ed->base), end - start);
}

static bool listed(const int *idx, unsigned n, unsigned i)
{
	for (unsigned k = 0; k < n; k++)
		if (idx[k] == (int)i)
			return true;
	return false;
}

void sip_ed_delete_hdrs(struct sip_editor *ed, const struct sip_msg *msg,
			const int *idx, unsigned n)
{
	uint32_t done_lines[16];
	unsigned ndone = 0;

	for (unsigned k = 0; k < n; k++) {
		const struct sip_hdr *h = &msg->hdrs[idx[k]];
		unsigned first = (unsigned)idx[k] - h->index, dropped = 0;
		bool seen = false;

		for (unsigned d = 0; d < ndone; d++)
			seen |= done_lines[d] == h->line_off;
		if (seen)
			continue;
		if (ndone < 16)
			done_lines[ndone++] = h->line_off;
		for (unsigned v = 0; v < h->nvalues; v++)
			dropped += listed(idx, n, first + v);
		if (dropped == h->nvalues) {
			sip_ed_delete(ed, h->line_off, h->line_len);
			continue;
		}
		{
			/* Rewrite the line with the values that stay. */
			char line[2048];
			size_t len = 0;
			int r = snprintf(line, sizeof(line), "%.*s: ",
					 PL_FMT(h->name));
			bool any = false;

			len = r > 0 ? (size_t)r : 0;
			for (unsigned v = 0; v < h->nvalues && len < sizeof(line); v++) {
				const struct sip_hdr *hv = &msg->hdrs[first + v];
				if (listed(idx, n, first + v))
					continue;
				r = snprintf(line + len, sizeof(line) - len, "%s%.*s",
					     any ? ", " : "", PL_FMT(hv->value));
				len += r > 0 ? (size_t)r : 0;
				any = true;
			}
			if (len >= sizeof(line)) {
				ed->err = ENOSPC;
				return;
			}
			sip_ed_replace(ed, (struct pl){ msg->buf + h->line_off,
							h->line_len },
				       "%.*s\r\n", (int)len, line);
		}
	}
}

size_t sip_ed_hdr_start(const struct sip_msg *msg)
{
	const char *eol = memchr(msg->buf, '\n', msg->len);

	return eol ? (size_t)(eol - msg->buf) + 1 : 0;
}

void sip_ed_fix_content_length(struct sip_editor *ed, const struct sip_msg *msg)
{
	size_t start = (size_t)(msg->body.p - ed->base);
	size_t end = start + msg->body.l;
	long delta = 0;
	int cl;

	if (!msg->body.p)
		return;
	for (unsigned i = 0; i < ed->n; i++) {
		const struct sip_edit *e = &ed->edits[i];
		if (e->off >= start && e->off + e->del <= end)
			delta += (long)e->ins_len - (long)e->del;
	}
	if (!delta)
		return;
	cl = msg->first[SIP_HDR_CONTENT_LENGTH];
	if (cl >= 0)
		sip_ed_replace(ed, msg->hdrs[cl].value, "%ld",
			       (long)msg->body.l + delta);
	else
		sip_ed_insert(ed, sip_ed_hdr_start(msg), "Content-Length: %ld\r\n",
			      (long)msg->body.l + delta);
}

static int cmp_edit(const void *a, const void *b)
{
	const struct sip_edit *x = a, *y = b;

	if (x->off != y->off)
		return x->off < y->off ? -1 : 1;
	/* deletions/replacements before pure inserts at the same offset
	 * would be ambiguous; keep call order */
	return x->seq < y->seq ? -1 : (x->seq > y->seq);
}

int sip_ed_apply(struct sip_editor *ed, char *out, size_t cap,
		 size_t *outlen)
{
	size_t pos = 0, o = 0;

	if (ed->err)
		return ed->err;
	qsort(ed->edits, ed->n, sizeof(ed->edits[0]), cmp_edit);
	for (unsigned i = 0; i < ed->n; i++) {
		const struct sip_edit *e = &ed->edits[i];
		size_t keep;

		if (e->off < pos)
			return EINVAL;
		keep = e->off - pos;
		if (o + keep + e->ins_len > cap)
			return ENOSPC;
		memcpy(out + o, ed->base + pos, keep);
		o += keep;
		memcpy(out + o, ed->scratch + e->ins_off, e->ins_len);
		o += e->ins_len;
		pos = e->off + e->del;
	}
	if (o + (ed->base_len - pos) > cap)
		return ENOSPC;
	memcpy(out + o, ed->base + pos, ed->base_len - pos);
	o += ed->base_len - pos;
	*outlen = o;
	return 0;
}

const char *sip_reason_phrase(unsigned status)
{
	switch (status) {
	case 100: return "Trying";
	case 180: return "Ringing";
	case 183: return "Session Progress";
	case 200: return "OK";
	case 202: return "Accepted";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 407: return "Proxy Authentication Required";
	case 408: return "Request Timeout";
	case 415: return "Unsupported Media Type";
	case 416: return "Unsupported URI Scheme";
	case 420: return "Bad Extension";
	case 423: return "Interval Too Brief";
	case 480: return "Temporarily Unavailable";
	case 481: return "Call/Transaction Does Not Exist";
	case 482: return "Loop Detected";
	case 483: return "Too Many Hops";
	case 484: return "Address Incomplete";
	case 486: return "Busy Here";
	case 487: return "Request Terminated";
	case 488: return "Not Acceptable Here";
	case 500: return "Server Internal Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Server Time-out";
	case 505: return "Version Not Supported";
	case 513: return "Message Too Large";
	case 600: return "Busy Everywhere";
	case 603: return "Decline";
	default: return status < 200 ? "Progress" : status < 300 ? "OK" :
		 status < 400 ? "Redirect" : status < 500 ? "Client Error" :
		 status < 600 ? "Server Error" : "Global Failure";
	}
}

struct outbuf {
	char *p;
	size_t len, cap;
	int err;
};

static void put(struct outbuf *b, const char *s, size_t n)
{
	if (b->err || b->len + n > b->cap) {
		b->err = ENOSPC;
		return;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static void putf(struct outbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void putf(struct outbuf *b, const char *fmt, ...)
{
	va_list ap;
	int r;

	if (b->err)
		return;
	va_start(ap, fmt);
	r = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (r < 0 || (size_t)r >= b->cap - b->len) {
		b->err = ENOSPC;
		return;
	}
	b->len += (size_t)r;
}

static void put_line(struct outbuf *b, const struct sip_msg *msg,
		     enum sip_hdr_id id)
{
	int i = msg->first[id];

	if (i >= 0)
		put(b, msg->buf + msg->hdrs[i].line_off, msg->hdrs[i].line_len);
}

int sip_reply_build(const struct sip_msg *msg, unsigned status,
		    const char *reason, const char *top_via,
		    const char *to_tag, const char *extra,
		    const char *body, size_t body_len,
		    char *out, size_t cap, size_t *outlen)
{
	struct outbuf b = { out, 0, cap, 0 };
	bool first = true;

	putf(&b, "SIP/2.0 %u %s\r\n", status,
	     reason ? reason : sip_reason_phrase(status));
	for (int i = msg->first[SIP_HDR_VIA]; i >= 0;
	     i = sip_hdr_next(msg, i, SIP_HDR_VIA)) {
		if (first && top_via)
			putf(&b, "Via: %s\r\n", top_via);
		else
			putf(&b, "Via: %.*s\r\n", PL_FMT(msg->hdrs[i].value));
		first = false;
	}
	put_line(&b, msg, SIP_HDR_FROM);
	if (msg->first[SIP_HDR_TO] >= 0) {
		const struct sip_hdr *to = &msg->hdrs[msg->first[SIP_HDR_TO]];
		if (!pl_isset(msg->to_tag) && to_tag && status > 100)
			putf(&b, "To: %.*s;tag=%s\r\n", PL_FMT(to->value),
			     to_tag);
		else
			put_line(&b, msg, SIP_HDR_TO);
	}
	put_line(&b, msg, SIP_HDR_CALL_ID);
	put_line(&b, msg, SIP_HDR_CSEQ);
	if (extra)
		put(&b, extra, strlen(extra));
	putf(&b, "Server: pinhole\r\nContent-Length: %zu\r\n\r\n", body_len);
	if (body_len)
		put(&b, body, body_len);
	if (b.err)
		return b.err;
	*outlen = b.len;
	return 0;
}
