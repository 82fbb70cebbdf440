/*
 * msg.h - the SIP message parser: zero-copy views over a receive buffer.
 * Owns the wire grammar of RFC 3261 (requests, responses, headers, URIs,
 * Via, name-addr, params); it allocates nothing and includes only util/.
 */
#ifndef PINHOLE_SIP_MSG_H
#define PINHOLE_SIP_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/pl.h"

/* Hard bound on header entries kept per message (a comma list counts one per
 * value). A message with more is rejected with 400: nothing grows unbounded. */
#define SIP_MAX_HDRS 256

enum sip_method {
	SIP_METHOD_OTHER = 0,
	SIP_INVITE, SIP_ACK, SIP_BYE, SIP_CANCEL, SIP_REGISTER, SIP_OPTIONS,
	SIP_INFO, SIP_PRACK, SIP_UPDATE, SIP_SUBSCRIBE, SIP_NOTIFY,
	SIP_MESSAGE, SIP_REFER, SIP_PUBLISH,
};

/* Header ids. Names are compared in full, case-insensitively, long and
 * compact forms (i m e l c f s k t v o u r x b y); anything else is
 * SIP_HDR_OTHER and passes through untouched. */
enum sip_hdr_id {
	SIP_HDR_OTHER = 0,
	SIP_HDR_VIA,		/* v */
	SIP_HDR_FROM,		/* f */
	SIP_HDR_TO,		/* t */
	SIP_HDR_CALL_ID,	/* i */
	SIP_HDR_CSEQ,
	SIP_HDR_CONTACT,	/* m */
	SIP_HDR_MAX_FORWARDS,
	SIP_HDR_CONTENT_LENGTH,	/* l */
	SIP_HDR_CONTENT_TYPE,	/* c */
	SIP_HDR_ROUTE,
	SIP_HDR_RECORD_ROUTE,
	SIP_HDR_PATH,
	SIP_HDR_EXPIRES,
	SIP_HDR_MIN_EXPIRES,
	SIP_HDR_AUTHORIZATION,
	SIP_HDR_PROXY_AUTHORIZATION,
	SIP_HDR_WWW_AUTHENTICATE,
	SIP_HDR_PROXY_AUTHENTICATE,
	SIP_HDR_REQUIRE,
	SIP_HDR_PROXY_REQUIRE,
	SIP_HDR_SUPPORTED,	/* k */
	SIP_HDR_UNSUPPORTED,
	SIP_HDR_ALLOW,
	SIP_HDR_USER_AGENT,
	SIP_HDR_SERVER,
	SIP_HDR_EVENT,		/* o */
	SIP_HDR_REFER_TO,	/* r */
	SIP_HDR_REFERRED_BY,	/* b */
	SIP_HDR_REPLACES,
	SIP_HDR_SUBJECT,	/* s */
	SIP_HDR_CONTENT_ENCODING, /* e */
	SIP_HDR_DATE,
	SIP_HDR_ACCEPT,
	SIP_HDR_SUBSCRIPTION_STATE,
	SIP_HDR_SESSION_EXPIRES, /* x */
	SIP_HDR_COUNT
};

/* One header value. For the list headers (Via, Contact, Route,
 * Record-Route, Path, Require, Proxy-Require, Supported, Unsupported,
 * Allow) each comma-separated value is its own entry; the entries of one
 * header line share line_off/line_len. Entries are in wire order. */
struct sip_hdr {
	enum sip_hdr_id id;
	struct pl name;		/* as on the wire */
	struct pl value;	/* this value, LWS-trimmed (may contain folding) */
	uint32_t line_off;	/* offset of the header line in the message */
	uint32_t line_len;	/* whole line(s) including the final CRLF */
	uint16_t nvalues;	/* values on this header line (1 if not a list) */
	uint16_t index;		/* this value's position on its line, from 0 */
};

struct sip_uri {
	struct pl scheme;	/* "sip", "sips", "tel", ... (any scheme kept) */
	struct pl user;		/* may contain escapes and ';' params (9.1.1.9) */
	struct pl password;
	struct pl host;		/* IPv6 references keep their [] */
	uint16_t port;		/* 0 if absent */
	struct pl params;	/* ";a=b;lr" incl. the leading ';', or empty */
	struct pl headers;	/* "?x=y" without '?', or unset */
	bool host_is_ipv6;
	struct pl opaque;	/* all after "scheme:"; the only part kept
				 * for schemes other than sip/sips */
};

struct sip_via {
	struct pl value;	/* the whole Via value */
	struct pl protocol;	/* "SIP/2.0" */
	struct pl transport;	/* "UDP", "TCP", ... */
	struct pl host;		/* sent-by host (IPv6 in []) */
	uint16_t port;		/* sent-by port, 0 if absent */
	struct pl params;	/* ";branch=..;rport" incl. leading ';' */
	struct pl branch;	/* unset when absent */
	struct pl received;	/* unset when absent */
	bool has_rport;
	struct pl rport;	/* value if "rport=1234", empty if bare */
};

/* name-addr / addr-spec with header params (From, To, Contact, Route...). */
struct sip_addr {
	struct pl dname;	/* display name, may be quoted, may be empty */
	struct pl uri_str;	/* the URI text without <> */
	struct sip_uri uri;
	struct pl params;	/* header params after the URI, incl. ';' */
	bool angle;		/* the URI was in <> */
	bool star;		/* Contact: * */
};

struct sip_msg {
	const char *buf;	/* start of the message */
	size_t len;		/* bytes of this message, headers and body */

	bool is_request;
	/* request line */
	struct pl method;
	enum sip_method method_id;
	struct pl ruri_str;
	struct sip_uri ruri;
	/* status line */
	unsigned status;
	struct pl reason;

	struct sip_hdr hdrs[SIP_MAX_HDRS];
	unsigned nhdrs;
	int16_t first[SIP_HDR_COUNT];	/* first entry of each id, -1 if none */
	uint32_t hdrs_end;	/* offset of the empty line ending the headers */

	/* Parsed once because every layer needs them. */
	struct sip_via via;	/* top Via */
	unsigned nvia;
	struct sip_addr from, to;
	struct pl from_tag, to_tag;	/* unset when absent */
	struct pl call_id;
	uint32_t cseq;
	struct pl cseq_method;
	enum sip_method cseq_method_id;
	int max_forwards;	/* -1 when absent */
	int64_t expires;	/* Expires header, -1 when absent */
	struct pl content_type;
	bool has_content_length;
	size_t content_length;
	struct pl body;

	/* On a parse error: the status to answer (400 or 505), a short
	 * reason for the reason phrase / log, and whether enough was read to
	 * build a response (top Via, From, To, Call-ID, CSeq). */
	unsigned err_status;
	const char *err_reason;
	bool can_reply;
};

/*
 * Parse one message at buf[0..len).
 * stream=false (UDP): the datagram is one message; a missing Content-Length
 *   means the body runs to the end; a Content-Length larger than what is
 *   left is an error; octets after the body are ignored (msg->len tells).
 * stream=true (TCP): Content-Length is mandatory; returns EAGAIN when the
 *   headers or the body are not all there yet (nothing is stored).
 * Leading CRLFs (keepalives) are skipped: msg->buf points past them and
 * msg->len does NOT include them, so the bytes consumed from buf are
 * (msg->buf - buf) + msg->len. A buffer holding only CRLFs returns ENODATA
 * with msg->buf = buf and msg->len set to the CRLF count.
 * Returns 0, EAGAIN, ENODATA, or EBADMSG (see err_status/err_reason).
 */
int sip_msg_parse(struct sip_msg *msg, const char *buf, size_t len,
		  bool stream);

/* Index of the next entry with the same id after entry idx, or -1.
 * sip_hdr_next(msg, -1, id) gives the first. */
int sip_hdr_next(const struct sip_msg *msg, int idx, enum sip_hdr_id id);
/* First entry of an id, or NULL. */
const struct sip_hdr *sip_hdr_get(const struct sip_msg *msg,
				  enum sip_hdr_id id);
/* Find a header by name (for SIP_HDR_OTHER ones; full, case-insensitive). */
const struct sip_hdr *sip_hdr_find_name(const struct sip_msg *msg,
					struct pl name);

enum sip_method sip_method_from_pl(struct pl method);
const char *sip_method_name(enum sip_method m);

/* Parse a URI (no surrounding <>). Returns 0 or EBADMSG. */
int sip_uri_parse(struct sip_uri *uri, struct pl s);
/* Parse name-addr / addr-spec with params (From/To/Contact/Route value). */
int sip_addr_parse(struct sip_addr *addr, struct pl s);
/* Parse one Via value. */
int sip_via_parse(struct sip_via *via, struct pl s);

/* Look up ";name" or ";name=value" in a param list such as ";a=b;lr"
 * (case-insensitive name). Returns true if present; *value gets the value
 * (empty when the param has none). value may be NULL. */
bool sip_param_get(struct pl params, const char *name, struct pl *value);

/* Compare two SIP URIs per RFC 3261 19.1.4 (scheme, user, password
 * case-sensitive after unescaping, host case-insensitive, port, and the
 * transport/user/ttl/method/maddr params). */
bool sip_uri_equal(const struct sip_uri *a, const struct sip_uri *b);

/* Parse auth params of an Authorization/Proxy-Authorization value:
 * scheme and the params we use. Missing ones stay unset. */
struct sip_auth {
	struct pl scheme;	/* "Digest" */
	struct pl username, realm, nonce, uri, response, algorithm;
	struct pl cnonce, opaque, qop, nc;
};
int sip_auth_parse(struct sip_auth *auth, struct pl value);

#endif
