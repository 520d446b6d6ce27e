/* image/ref.c — image reference normalisation, as Docker's reference
 * grammar: [domain[:port]/]path[:tag][@sha256:hex]. "busybox" becomes
 * "docker.io/library/busybox:latest". */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "img_internal.h"

static bool is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* One path component: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)* */
static bool component_valid(const char *s, size_t n)
{
	size_t i = 0;
	if (n == 0 || !is_lower_alnum(s[0]) || !is_lower_alnum(s[n - 1]))
		return false;
	while (i < n) {
		if (is_lower_alnum(s[i])) {
			i++;
			continue;
		}
		size_t j = i;
		if (s[i] == '.') {
			j++;
		} else if (s[i] == '_') {
			j++;
			if (j < n && s[j] == '_')
				j++;
		} else if (s[i] == '-') {
			while (j < n && s[j] == '-')
				j++;
		} else {
			return false;
		}
		if (j >= n || !is_lower_alnum(s[j]))
			return false;
		i = j;
	}
	return true;
}

/* host[:port], host = labels of [A-Za-z0-9-] separated by dots. */
static bool domain_valid(const char *s, size_t n)
{
	const char *colon = memchr(s, ':', n);
	size_t hn = colon ? (size_t)(colon - s) : n;
	if (hn == 0)
		return false;
	size_t lab = 0;
	for (size_t i = 0; i <= hn; i++) {
		if (i == hn || s[i] == '.') {
			if (lab == 0 || s[i - 1] == '-' || s[i - lab] == '-')
				return false;
			lab = 0;
			continue;
		}
		if (!isalnum((unsigned char)s[i]) && s[i] != '-')
			return false;
		lab++;
	}
	if (colon) {
		size_t pn = n - hn - 1;
		if (pn == 0 || pn > 5)
			return false;
		for (size_t i = hn + 1; i < n; i++)
			if (!isdigit((unsigned char)s[i]))
				return false;
	}
	return true;
}

/* [A-Za-z0-9_][A-Za-z0-9_.-]{0,127} */
static bool tag_valid(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 128 || !(isalnum((unsigned char)s[0]) || s[0] == '_'))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' &&
		    s[i] != '.' && s[i] != '-')
			return false;
	return true;
}

int kb_image_normalize(const char *ref, char *out, size_t outlen)
{
	char buf[512];
	if (ref == NULL || out == NULL || *ref == '\0' ||
	    strlen(ref) >= sizeof(buf))
		return KB_EINVAL;
	strcpy(buf, ref);

	char *digest = strchr(buf, '@');
	if (digest) {
		*digest++ = '\0';
		if (!img_digest_valid(digest))
			return KB_EINVAL;
	}
	/* A tag is a ':' after the last '/' (a ':' before it is a port). */
	char *tag = NULL, *slash = strrchr(buf, '/');
	char *colon = strrchr(slash ? slash : buf, ':');
	if (colon) {
		*colon = '\0';
		tag = colon + 1;
		if (!tag_valid(tag))
			return KB_EINVAL;
	}
	const char *name = buf, *domain = "docker.io";
	size_t dlen = strlen(domain);
	char *first = strchr(buf, '/');
	if (first) {
		size_t n = (size_t)(first - buf);
		bool is_domain = memchr(buf, '.', n) || memchr(buf, ':', n) ||
		    (n == 9 && !memcmp(buf, "localhost", 9));
		/* Domains may have capitals; repository paths may not. */
		for (size_t i = 0; i < n && !is_domain; i++)
			if (isupper((unsigned char)buf[i]))
				is_domain = true;
		if (is_domain) {
			if (!domain_valid(buf, n))
				return KB_EINVAL;
			domain = buf;
			dlen = n;
			name = first + 1;
			if (dlen == 15 &&
			    !memcmp(domain, "index.docker.io", 15)) {
				domain = "docker.io";
				dlen = 9;
			}
		}
	}
	/* Path components. */
	const char *p = name;
	size_t ncomp = 0;
	for (;;) {
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (!component_valid(p, n))
			return KB_EINVAL;
		ncomp++;
		if (!e)
			break;
		p = e + 1;
	}
	bool library = dlen == 9 && !memcmp(domain, "docker.io", 9) &&
	    ncomp == 1;
	int w;
	if (digest)
		w = snprintf(out, outlen, "%.*s/%s%s@%s", (int)dlen, domain,
		    library ? "library/" : "", name, digest);
	else
		w = snprintf(out, outlen, "%.*s/%s%s:%s", (int)dlen, domain,
		    library ? "library/" : "", name, tag ? tag : "latest");
	if (w < 0 || (size_t)w >= outlen)
		return KB_EINVAL;
	/* Docker's limit on the name part. */
	if (dlen + 1 + (library ? 8 : 0) + strlen(name) > 255)
		return KB_EINVAL;
	return 0;
}
