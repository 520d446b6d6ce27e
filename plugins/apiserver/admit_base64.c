/* admit_base64.c — decoding []byte fields as Go's encoding/json does
 * (base64.StdEncoding: padded, '\r' and '\n' ignored), so secret sizes
 * and "illegal base64 data at input byte N" match Kubernetes. */
#include <stdlib.h>
#include <string.h>

#include "admit.h"

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* One quantum of four symbols from s[*i]: bytes into out (may be NULL),
 * the count written, or -1 with *bad set. */
static int quantum(const char *s, size_t n, size_t *i, unsigned char *out,
    long *bad)
{
	size_t start = *i;
	unsigned v[4];
	int j = 0, pad = 0;

	while (j < 4) {
		if (*i >= n) {
			if (j == 0)
				return 0;
			*bad = (long)start;
			return -1;
		}
		unsigned char c = (unsigned char)s[(*i)++];
		if (c == '\r' || c == '\n')
			continue;
		if (c == '=' && j >= 2) {
			if (!pad)
				pad = 4 - j;
			v[j++] = 0;
			continue;
		}
		if (pad || b64_value(c) < 0) {
			*bad = (long)(*i - 1);
			return -1;
		}
		v[j++] = (unsigned)b64_value(c);
	}
	unsigned w = v[0] << 18 | v[1] << 12 | v[2] << 6 | v[3];
	unsigned char b[3] = { (unsigned char)(w >> 16),
		(unsigned char)(w >> 8), (unsigned char)w };
	if (out)
		memcpy(out, b, (size_t)(3 - pad));
	return 3 - pad;
}

long adm_base64_decode(const char *s, unsigned char *out, long *bad)
{
	size_t n = strlen(s), i = 0;
	long len = 0;
	int q;

	*bad = -1;
	while ((q = quantum(s, n, &i, out ? out + len : NULL, bad)) > 0) {
		len += q;
		if (q < 3) {
			/* padding ends the data: only newlines may follow */
			for (; i < n; i++)
				if (s[i] != '\r' && s[i] != '\n') {
					*bad = (long)i;
					return -1;
				}
			break;
		}
	}
	return q < 0 ? -1 : len;
}
