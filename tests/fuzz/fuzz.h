/* tests/fuzz/fuzz.h — what the fuzz targets share: the check that stops
 * a target (libFuzzer keeps the input that made it fail), and copies of
 * exactly the bytes a decoder is given, so that ASan sees a read past
 * them. */
#ifndef KUBUS_TESTS_FUZZ_H
#define KUBUS_TESTS_FUZZ_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__,     \
			    #cond);                                            \
			abort();                                               \
		}                                                              \
	} while (0)

/* len bytes at b in a block of exactly that size (one byte for none). */
static inline char *exact_copy(const void *b, size_t len)
{
	char *c = malloc(len ? len : 1);

	CHECK(c != NULL);
	if (len)
		memcpy(c, b, len);
	return c;
}

#endif
