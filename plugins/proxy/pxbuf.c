/* plugins/proxy/pxbuf.c — see pxbuf.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pxbuf.h"

static bool grow(struct pxbuf *b, size_t need)
{
	if (b->oom)
		return false;
	if (b->cap - b->n > need)
		return true;
	size_t cap = b->cap ? b->cap : 4096;
	while (cap - b->n <= need)
		cap *= 2;
	char *p = realloc(b->p, cap);
	if (p == NULL) {
		b->oom = true;
		return false;
	}
	b->p = p;
	b->cap = cap;
	return true;
}

void pxbuf_add(struct pxbuf *b, const char *fmt, ...)
{
	va_list ap;
	if (!grow(b, 256))
		return;
	va_start(ap, fmt);
	int w = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
	va_end(ap);
	if (w < 0) {
		b->oom = true;
		return;
	}
	if ((size_t)w >= b->cap - b->n) {
		if (!grow(b, (size_t)w + 1))
			return;
		va_start(ap, fmt);
		vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
		va_end(ap);
	}
	b->n += (size_t)w;
}

void pxbuf_addn(struct pxbuf *b, const char *s, size_t n)
{
	if (!grow(b, n + 1))
		return;
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = '\0';
}

void pxbuf_reset(struct pxbuf *b)
{
	b->n = 0;
	b->oom = false;
	if (b->p)
		b->p[0] = '\0';
}

void pxbuf_free(struct pxbuf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

char *pxbuf_take(struct pxbuf *b)
{
	if (b->oom || !grow(b, 1)) {
		pxbuf_free(b);
		return NULL;
	}
	b->p[b->n] = '\0';
	char *p = b->p;
	memset(b, 0, sizeof(*b));
	return p;
}
