/* core/tokens.h — the token file as auth.c and tokens.c both read it.
 *
 * Private to the core: what tokens.c lends auth.c, declared once.
 */
#ifndef KUBUS_CORE_TOKENS_H
#define KUBUS_CORE_TOKENS_H

#include <string.h>
#include <sys/stat.h>

#include <openssl/sha.h>

#include "auth.h"

#define KB_SUM_LEN SHA256_DIGEST_LENGTH

/* One line of a token file. Fields point into a scratch copy that the
 * callback may modify and that is wiped after the parse. */
struct kb_tokline {
	int no;          /* 1-based line number */
	char *f[4];      /* token, user, uid, groups (NULL when absent);
			    f[0] NULL: a blank or comment line */
	const char *raw; /* the line as written, its newline included */
	size_t rawlen;
};

/* Return 0, or an error and what is wrong in *why (never a token). */
typedef int (*kb_tokline_fn)(void *arg, struct kb_tokline *l, const char **why);

/* Read the file at `path` (refused when group or others may use it) and
 * call fn for each line; *st describes what was read. KB_ENOENT when the
 * file does not exist. Errors read "PATH:LINE: what". */
KB_HIDDEN int kb_tokfile_load(const char *path, kb_tokline_fn fn, void *arg,
    struct stat *st, char *err, size_t errlen);

/* The groups column as kube-apiserver reads it, tidied in place:
 * "a, b,,c" -> "a,b,c". NULL stays NULL. */
KB_HIDDEN char *kb_tokfile_groups(char *csv);

/* Format into err (if any; errno is kept) and yield rc. A macro, so that
 * readers and analyzers see which code a failing path returns. */
#define kb_errf(err, errlen, rc, ...)                                          \
	(kb_errf_((err), (errlen), __VA_ARGS__), (rc))
KB_HIDDEN void kb_errf_(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Tokens are held and compared as digests: one length, no plain text. */
static inline void kb_token_sum(const char *token,
    unsigned char sum[KB_SUM_LEN])
{
	SHA256((const unsigned char *)token, strlen(token), sum);
}

#endif
