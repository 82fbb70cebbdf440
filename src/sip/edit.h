/*
 * edit.h - rewrite a message as edits over its original bytes: replace,
 * insert and delete spans, then write the result once. Unknown headers
 * and bodies pass untouched, and nothing is re-serialised. Also builds
 * responses to a parsed request (RFC 3261 8.2.6).
 */
#ifndef PINHOLE_SIP_EDIT_H
#define PINHOLE_SIP_EDIT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "sip/msg.h"

#define SIP_EDIT_MAX 64
#define SIP_EDIT_SCRATCH 8192

struct sip_edit {
	uint32_t off;		/* where in the original */
	uint32_t del;		/* bytes of the original removed there */
	uint32_t ins_off;	/* inserted text: scratch[ins_off..+ins_len) */
	uint32_t ins_len;
	uint32_t seq;		/* keeps inserts at one offset in call order */
};

struct sip_editor {
	const char *base;	/* the original message */
	size_t base_len;
	struct sip_edit edits[SIP_EDIT_MAX];
	unsigned n;
	int err;		/* first error (ENOSPC), sticky */
	size_t scratch_len;
	char scratch[SIP_EDIT_SCRATCH];
};

void sip_ed_init(struct sip_editor *ed, const char *base, size_t len);
/* Replace the span (which must point into base) with formatted text. */
void sip_ed_replace(struct sip_editor *ed, struct pl span, const char *fmt,
		    ...) __attribute__((format(printf, 3, 4)));
void sip_ed_insert(struct sip_editor *ed, size_t off, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void sip_ed_delete(struct sip_editor *ed, size_t off, size_t len);
/* Delete one header value; the whole line when it is the only value. */
void sip_ed_delete_hdr(struct sip_editor *ed, const struct sip_msg *msg,
		       unsigned idx);
/* Delete several header values at once (e.g. our own Route entries).
 * Values sharing a line are handled together: the line is dropped when
 * all its values go, else rewritten with the values that stay, so edits
 * never overlap. idx lists entry indexes into msg->hdrs. */
void sip_ed_delete_hdrs(struct sip_editor *ed, const struct sip_msg *msg,
			const int *idx, unsigned n);
/* Offset where new header lines go: right after the start line. */
size_t sip_ed_hdr_start(const struct sip_msg *msg);

/* Call after every body edit: sets Content-Length to the new body length
 * (edits inside msg->body change it), inserting the header if missing. */
void sip_ed_fix_content_length(struct sip_editor *ed, const struct sip_msg *msg);

/* Write base with all edits into out. Returns 0, ENOSPC (out or scratch
 * too small) or EINVAL (overlapping edits). */
int sip_ed_apply(struct sip_editor *ed, char *out, size_t cap,
		 size_t *outlen);

/* Build a response to request msg into out:
 * status line, every Via (the top one replaced by top_via when given, to
 * carry received/rport), From, To (with ";tag=to_tag" added when the
 * request had no To tag and to_tag is given), Call-ID, CSeq, then extra
 * (complete header lines, may be NULL), Server, Content-Length and body. */
int sip_reply_build(const struct sip_msg *msg, unsigned status,
		    const char *reason, const char *top_via,
		    const char *to_tag, const char *extra,
		    const char *body, size_t body_len,
		    char *out, size_t cap, size_t *outlen);

const char *sip_reason_phrase(unsigned status);

#endif
