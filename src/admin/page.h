/*
 * page.h - the diagnostics web page's files (HTML, CSS, JS), compiled
 * into the binary from src/admin/page/ by src/admin/embed.sh (page.c is
 * generated and committed). The admin server serves them at their path.
 */
#ifndef PINHOLE_ADMIN_PAGE_H
#define PINHOLE_ADMIN_PAGE_H

#include <stddef.h>

struct admin_asset {
	const char *path;		/* "/", "/app.js", ... */
	const char *content_type;
	const char *body;
	size_t len;
};

/* Ends with an entry whose path is NULL. */
extern const struct admin_asset admin_page_assets[];

#endif
