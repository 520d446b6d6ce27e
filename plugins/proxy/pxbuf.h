/* plugins/proxy/pxbuf.h — a growing text buffer, shared (as source) by
 * the proxy and its backends, which write rulesets as text. */
#ifndef KUBUS_PXBUF_H
#define KUBUS_PXBUF_H

#include <stdbool.h>
#include <stddef.h>

struct pxbuf {
	char *p; /* NUL-terminated once anything was added */
	size_t n, cap;
	bool oom; /* an add failed: the text is incomplete */
};

void pxbuf_add(struct pxbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void pxbuf_addn(struct pxbuf *b, const char *s, size_t n);
void pxbuf_reset(struct pxbuf *b);
void pxbuf_free(struct pxbuf *b);
/* The text, malloc'd, and the buffer emptied; NULL after an oom. */
char *pxbuf_take(struct pxbuf *b);

#endif
