/* core/tokens.c — the token file: reading, parsing, and `kubus token …`.
 *
 * The format is kube-apiserver's static token file, one CSV record a line:
 *
 *     token,user,uid,"group1,group2"
 *
 * The groups field is optional and quoted when it holds commas; blank lines
 * and lines starting with '#' are skipped. The file holds secrets, so it is
 * refused when group or others may read or write it, its text is wiped
 * before it is freed, and no message ever quotes a token.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "auth.h"

/* A token file larger than this is surely not one. */
#define TOKFILE_MAX (16u << 20)
#define TOKEN_BYTES 32
/* What `kubus token list` shows of a token: enough to tell them apart. */
#define TOKEN_SHOWN 8

/* Shared with auth.c, which declares them the same way. */
typedef int (
    *kb_tokline_fn)(void *arg, int line, char *const f[4], const char **why);
KB_HIDDEN int kb_tokfile_read(const char *path, bool check_mode, char **text,
    size_t *len, struct stat *st, char *err, size_t errlen);
KB_HIDDEN int kb_tokfile_parse(const char *path, char *text, size_t len,
    kb_tokline_fn fn, void *arg, char *err, size_t errlen);
KB_HIDDEN void kb_tokfile_wipe(char *text, size_t len);

/* --- reading ------------------------------------------------------------- */

void kb_tokfile_wipe(char *text, size_t len)
{
	if (text)
		OPENSSL_cleanse(text, len);
	free(text);
}

static int check_mode(const char *path, const struct stat *st, char *err,
    size_t errlen)
{
	if ((st->st_mode & 077) == 0)
		return 0;
	snprintf(err, errlen,
	    "token file %s is %s by others (mode %04o); chmod 600 it", path,
	    st->st_mode & 044 ? "readable" : "writable",
	    (unsigned)(st->st_mode & 07777));
	return KB_EFORBIDDEN;
}

/* Read to EOF rather than trusting st_size: the file may grow meanwhile. */
static int read_fd(int fd, const char *path, char **text, size_t *len,
    char *err, size_t errlen)
{
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap + 1);
	if (buf == NULL)
		return KB_ENOMEM;
	for (;;) {
		if (n == cap) {
			if (cap > TOKFILE_MAX) {
				kb_tokfile_wipe(buf, n);
				snprintf(err, errlen,
				    "token file %s is larger than %u bytes",
				    path, TOKFILE_MAX);
				return KB_ETOOLARGE;
			}
			char *bigger = malloc(2 * cap + 1);
			if (bigger == NULL) {
				kb_tokfile_wipe(buf, n);
				return KB_ENOMEM;
			}
			memcpy(bigger, buf, n);
			kb_tokfile_wipe(buf, n);
			buf = bigger;
			cap *= 2;
		}
		ssize_t got = read(fd, buf + n, cap - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			snprintf(err, errlen, "cannot read token file %s: %s",
			    path, strerror(errno));
			kb_tokfile_wipe(buf, n);
			return KB_ESYS;
		}
		if (got == 0)
			break;
		n += (size_t)got;
	}
	buf[n] = '\0';
	*text = buf;
	*len = n;
	return 0;
}

/* The whole file, NUL-terminated. KB_ENOENT (and a message) when it does
 * not exist, which callers may take for an empty file. */
int kb_tokfile_read(const char *path, bool mode_matters, char **text,
    size_t *len, struct stat *st, char *err, size_t errlen)
{
	*text = NULL;
	*len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "cannot open token file %s: %s", path,
		    strerror(e));
		return e == ENOENT ? KB_ENOENT : KB_ESYS;
	}
	int rc = KB_ESYS;
	if (fstat(fd, st) != 0) {
		snprintf(err, errlen, "cannot stat token file %s: %s", path,
		    strerror(errno));
		goto out_close;
	}
	rc = KB_EINVAL;
	if (!S_ISREG(st->st_mode)) {
		snprintf(err, errlen, "token file %s is not a regular file",
		    path);
		goto out_close;
	}
	rc = mode_matters ? check_mode(path, st, err, errlen) : 0;
	if (rc == 0)
		rc = read_fd(fd, path, text, len, err, errlen);
out_close:
	close(fd);
	return rc;
}

/* --- parsing ------------------------------------------------------------- */

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* One quoted field starting at *p (on the quote), unquoted in place into
 * *out. "" inside quotes is one quote, as in RFC 4180. */
static const char *parse_quoted(char **p, char *end, char **out)
{
	char *r = *p + 1, *w = r;
	*out = w;
	for (;;) {
		if (r == end)
			return "unterminated quoted field";
		if (*r == '"' && r + 1 < end && r[1] == '"') {
			*w++ = '"';
			r += 2;
			continue;
		}
		if (*r == '"')
			break;
		*w++ = *r++;
	}
	*w = '\0';
	r++;
	while (r < end && is_blank(*r))
		r++;
	if (r < end && *r != ',')
		return "unexpected text after a closing quote";
	*p = r;
	return NULL;
}

static const char *parse_bare(char **p, char *end, char **out)
{
	char *r = *p, *last = r;
	*out = r;
	for (; r < end && *r != ','; r++) {
		if (*r == '"')
			return "a quote inside an unquoted field (quote the "
			       "whole field)";
		if (!is_blank(*r))
			last = r + 1;
	}
	*p = r;
	*last = '\0';
	return NULL;
}

/* Split one line (already without its newline) into up to four fields,
 * in place. Returns NULL or what is wrong with it. */
static const char *split_line(char *s, char *end, char *f[4])
{
	int n = 0;
	f[0] = f[1] = f[2] = f[3] = NULL;
	for (char *p = s;;) {
		while (p < end && is_blank(*p))
			p++;
		if (n == 4)
			return "more than 4 fields; quote the groups: "
			       "token,user,uid,\"group1,group2\"";
		const char *why = p < end && *p == '"' ?
		    parse_quoted(&p, end, &f[n]) :
		    parse_bare(&p, end, &f[n]);
		if (why)
			return why;
		n++;
		if (p == end)
			break;
		*p++ = '\0'; /* the comma */
	}
	if (n < 3)
		return "expected token,user,uid[,\"group1,group2\"]";
	if (*f[0] == '\0')
		return "empty token";
	if (*f[1] == '\0')
		return "empty user name";
	return NULL;
}

/* Call fn for each record of `text` (modified in place). Errors read
 * "PATH:LINE: what". */
int kb_tokfile_parse(const char *path, char *text, size_t len, kb_tokline_fn fn,
    void *arg, char *err, size_t errlen)
{
	if (memchr(text, '\0', len)) {
		snprintf(err, errlen, "%s: contains a NUL byte", path);
		return KB_EINVAL;
	}
	char *p = text, *end = text + len;
	for (int line = 1; p < end; line++) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		char *eol = nl ? nl : end;
		char *next = nl ? nl + 1 : end;
		if (eol > p && eol[-1] == '\r')
			eol--;
		*eol = '\0';
		while (p < eol && is_blank(*p))
			p++;
		if (p == eol || *p == '#') {
			p = next;
			continue;
		}
		char *f[4];
		const char *why = split_line(p, eol, f);
		int rc = why ? KB_EINVAL : fn(arg, line, f, &why);
		if (rc != 0) {
			snprintf(err, errlen, "%s:%d: %s", path, line,
			    why ? why : kb_strerror(rc));
			return rc;
		}
		p = next;
	}
	return 0;
}

/* --- creating ------------------------------------------------------------ */

/* What may go into an unquoted field we write: nothing that the parser
 * would split or unquote differently. */
static bool field_ok(const char *s, bool commas)
{
	for (; *s; s++)
		if (*s == '"' || *s == '\n' || *s == '\r' ||
		    (*s == ',' && !commas))
			return false;
	return true;
}

static int random_hex(char *out, size_t outlen)
{
	unsigned char raw[TOKEN_BYTES];
	size_t got = 0;
	if (outlen < 2 * TOKEN_BYTES + 1)
		return KB_EINVAL;
	while (got < sizeof(raw)) {
		ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return KB_ESYS;
		got += (size_t)n;
	}
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(out + 2 * i, 3, "%02x", raw[i]);
	OPENSSL_cleanse(raw, sizeof(raw));
	return 0;
}

/* Open and lock the file, making sure the lock is on the file that `path`
 * names now: a revoke may have renamed a new file over the one we opened
 * while we waited for its lock. */
static int open_locked(const char *path, int flags, int *fdp, char *err,
    size_t errlen)
{
	for (int tries = 0; tries < 100; tries++) {
		int fd = open(path, flags | O_CLOEXEC, 0600);
		if (fd < 0) {
			int e = errno;
			snprintf(err, errlen, "cannot open token file %s: %s",
			    path, strerror(e));
			return e == ENOENT ? KB_ENOENT : KB_ESYS;
		}
		struct stat a, b;
		if (flock(fd, LOCK_EX) != 0 || fstat(fd, &a) != 0) {
			snprintf(err, errlen, "cannot lock token file %s: %s",
			    path, strerror(errno));
			close(fd);
			return KB_ESYS;
		}
		if (stat(path, &b) == 0 && a.st_dev == b.st_dev &&
		    a.st_ino == b.st_ino) {
			*fdp = fd;
			return 0;
		}
		close(fd);
	}
	snprintf(err, errlen, "token file %s keeps being replaced", path);
	return KB_ESYS;
}

static int write_all(int fd, const char *s, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, s, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		s += n;
		len -= (size_t)n;
	}
	return 0;
}

/* A hand-edited file may lack its last newline; we must not glue our
 * record onto its last line. */
static bool ends_open(int fd, const struct stat *st)
{
	char c;
	return st->st_size > 0 && pread(fd, &c, 1, st->st_size - 1) == 1 &&
	    c != '\n';
}

static int check_create_args(const char *user, const char *uid,
    const char *groups, size_t tokenlen, char *err, size_t errlen)
{
	if (user == NULL || *user == '\0') {
		snprintf(err, errlen, "a token needs a user name");
		return KB_EINVAL;
	}
	if (!field_ok(user, false) || !field_ok(uid, false) ||
	    !field_ok(groups, true)) {
		snprintf(err, errlen,
		    "user, uid and groups may not hold quotes or newlines, "
		    "nor user and uid commas");
		return KB_EINVAL;
	}
	if (tokenlen < 2 * TOKEN_BYTES + 1) {
		snprintf(err, errlen,
		    "token buffer too small (%zu bytes, "
		    "need %d)",
		    tokenlen, 2 * TOKEN_BYTES + 1);
		return KB_EINVAL;
	}
	return 0;
}

static int append_line(const char *path, const char *line, size_t len,
    char *err, size_t errlen)
{
	int fd,
	    rc = open_locked(path, O_RDWR | O_APPEND | O_CREAT, &fd, err,
		errlen);
	if (rc != 0)
		return rc;
	struct stat st;
	rc = KB_ESYS;
	if (fstat(fd, &st) != 0)
		goto out_close;
	/* Adding a secret to a file others can read would leak it too. */
	rc = check_mode(path, &st, err, errlen);
	if (rc != 0)
		goto out_close;
	rc = KB_ESYS;
	if ((ends_open(fd, &st) && write_all(fd, "\n", 1) != 0) ||
	    write_all(fd, line, len) != 0 || fsync(fd) != 0) {
		snprintf(err, errlen, "cannot write token file %s: %s", path,
		    strerror(errno));
		goto out_close;
	}
	rc = 0;
out_close:
	close(fd);
	return rc;
}

int kb_tokens_create(const char *path, const char *user, const char *uid,
    const char *groups_csv, char *token, size_t tokenlen, char *err,
    size_t errlen)
{
	/* The uid defaults to the user name, as users of kube's static token
	 * file usually write it. */
	if (uid == NULL || *uid == '\0')
		uid = user;
	if (groups_csv == NULL)
		groups_csv = "";
	int rc =
	    check_create_args(user, uid, groups_csv, tokenlen, err, errlen);
	if (rc != 0)
		return rc;
	char tok[2 * TOKEN_BYTES + 1];
	if (random_hex(tok, sizeof(tok)) != 0) {
		snprintf(err, errlen, "cannot get random bytes: %s",
		    strerror(errno));
		return KB_ESYS;
	}
	char *line = NULL;
	int len = *groups_csv ?
	    asprintf(&line, "%s,%s,%s,\"%s\"\n", tok, user, uid, groups_csv) :
	    asprintf(&line, "%s,%s,%s\n", tok, user, uid);
	if (len < 0) {
		OPENSSL_cleanse(tok, sizeof(tok));
		return KB_ENOMEM;
	}
	rc = append_line(path, line, (size_t)len, err, errlen);
	if (rc == 0)
		memcpy(token, tok, sizeof(tok));
	kb_tokfile_wipe(line, (size_t)len);
	OPENSSL_cleanse(tok, sizeof(tok));
	return rc;
}

/* --- listing ------------------------------------------------------------- */

struct row {
	char *user, *uid, *groups, *token;
};

struct rows {
	struct row *v;
	size_t n, cap;
	int w[3]; /* column widths: user, uid, groups */
};

static void rows_free(struct rows *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free(r->v[i].user);
		free(r->v[i].uid);
		free(r->v[i].groups);
		free(r->v[i].token);
	}
	free(r->v);
}

/* "a, b,,c" -> "a,b,c", or "<none>" as kubectl shows an empty column. */
static char *groups_tidy(const char *s)
{
	char *out = malloc(strlen(s) + sizeof("<none>")), *w = out;
	if (out == NULL)
		return NULL;
	while (*s) {
		while (*s == ',' || is_blank(*s))
			s++;
		const char *e = s, *last = s;
		for (; *e && *e != ','; e++)
			if (!is_blank(*e))
				last = e + 1;
		if (last > s) {
			if (w > out)
				*w++ = ',';
			memcpy(w, s, (size_t)(last - s));
			w += last - s;
		}
		s = e;
	}
	if (w == out)
		w = stpcpy(out, "<none>");
	*w = '\0';
	return out;
}

static char *token_shown(const char *tok)
{
	/* Never more than a quarter of a token: a short hand-made one must
	 * not be printed nearly whole. */
	size_t n = strlen(tok) / 4;
	if (n > TOKEN_SHOWN)
		n = TOKEN_SHOWN;
	char *s = malloc(n + 4);
	if (s)
		snprintf(s, n + 4, "%.*s...", (int)n, tok);
	return s;
}

static void widen(int *w, const char *s)
{
	int n = (int)strlen(s);
	if (n > *w)
		*w = n;
}

static int row_add(void *arg, int line, char *const f[4], const char **why)
{
	struct rows *r = arg;
	(void)line;
	if (r->n == r->cap) {
		size_t cap = r->cap ? 2 * r->cap : 16;
		struct row *v = realloc(r->v, cap * sizeof(*v));
		if (v == NULL)
			return KB_ENOMEM;
		r->v = v;
		r->cap = cap;
	}
	struct row *w = &r->v[r->n];
	w->user = strdup(f[1]);
	w->uid = strdup(f[2]);
	w->groups = groups_tidy(f[3] ? f[3] : "");
	w->token = token_shown(f[0]);
	r->n++;
	if (!w->user || !w->uid || !w->groups || !w->token) {
		*why = "out of memory";
		return KB_ENOMEM;
	}
	widen(&r->w[0], w->user);
	widen(&r->w[1], w->uid);
	widen(&r->w[2], w->groups);
	return 0;
}

static void rows_print(const struct rows *r, FILE *out)
{
	fprintf(out, "%-*s   %-*s   %-*s   %s\n", r->w[0], "USER", r->w[1],
	    "UID", r->w[2], "GROUPS", "TOKEN");
	for (size_t i = 0; i < r->n; i++)
		fprintf(out, "%-*s   %-*s   %-*s   %s\n", r->w[0], r->v[i].user,
		    r->w[1], r->v[i].uid, r->w[2], r->v[i].groups,
		    r->v[i].token);
}

int kb_tokens_list(const char *path, FILE *out, char *err, size_t errlen)
{
	struct rows r = { .w = { 4, 3, 6 } };
	struct stat st;
	char *text;
	size_t len;
	/* Listing a file with a bad mode still helps whoever is fixing it. */
	int rc = kb_tokfile_read(path, false, &text, &len, &st, err, errlen);
	if (rc == KB_ENOENT)
		rc = 0;
	else if (rc == 0)
		rc =
		    kb_tokfile_parse(path, text, len, row_add, &r, err, errlen);
	kb_tokfile_wipe(text, len);
	if (rc == 0)
		rows_print(&r, out);
	rows_free(&r);
	return rc;
}

/* --- revoking ------------------------------------------------------------ */

struct revoke {
	const char *what;
	bool *drop; /* by line number */
	size_t nlines;
	size_t dropped;
};

static int revoke_mark(void *arg, int line, char *const f[4], const char **why)
{
	struct revoke *rv = arg;
	(void)why;
	if (kb_auth_streq_ct(f[0], rv->what) || strcmp(f[1], rv->what) == 0) {
		rv->drop[line] = true;
		rv->dropped++;
	}
	return 0;
}

static size_t count_lines(const char *s, size_t len)
{
	size_t n = 1;
	for (const char *p = s; (p = memchr(p, '\n', len - (size_t)(p - s)));
	     p++)
		n++;
	return n;
}

/* The lines of `text` not marked in rv->drop, as they were. */
static int write_kept(int fd, const char *text, size_t len,
    const struct revoke *rv)
{
	const char *p = text, *end = text + len;
	for (size_t line = 1; p < end; line++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *next = nl ? nl + 1 : end;
		if (!rv->drop[line] && write_all(fd, p, (size_t)(next - p)))
			return -1;
		p = next;
	}
	return 0;
}

static int fsync_dir(const char *path)
{
	char *dir = strdup(path);
	if (dir == NULL)
		return -1;
	char *slash = strrchr(dir, '/');
	const char *d = slash == NULL ? "." : slash == dir ? "/" : dir;
	if (slash && slash != dir)
		*slash = '\0';
	int fd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = fd < 0 ? -1 : fsync(fd);
	if (fd >= 0)
		close(fd);
	free(dir);
	return rc;
}

/* Write the kept lines to a temporary file beside `path` and rename it
 * over: readers see the old file or the new one, never half of it. */
static int rewrite(const char *path, const struct stat *st, const char *text,
    size_t len, const struct revoke *rv, char *err, size_t errlen)
{
	char *tmp;
	if (asprintf(&tmp, "%s.XXXXXX", path) < 0)
		return KB_ENOMEM;
	int rc = KB_ESYS;
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "cannot create %s: %s", tmp,
		    strerror(errno));
		goto out_free;
	}
	/* Keep the owner when root revokes someone else's file; EPERM just
	 * means we are that owner already, or not root. */
	if (fchown(fd, st->st_uid, st->st_gid) != 0 && errno != EPERM)
		goto out_fail;
	if (fchmod(fd, 0600) != 0 || write_kept(fd, text, len, rv) != 0 ||
	    fsync(fd) != 0 || rename(tmp, path) != 0)
		goto out_fail;
	fsync_dir(path);
	rc = 0;
	goto out_close;
out_fail:
	snprintf(err, errlen, "cannot rewrite token file %s: %s", path,
	    strerror(errno));
	unlink(tmp);
out_close:
	close(fd);
out_free:
	free(tmp);
	return rc;
}

static int revoke_in(int fd, const char *path, const char *what, char *err,
    size_t errlen)
{
	struct revoke rv = { .what = what };
	struct stat st;
	char *text = NULL, *scratch = NULL;
	size_t len = 0;
	int rc = KB_ESYS;
	if (fstat(fd, &st) != 0)
		goto out;
	rc = read_fd(fd, path, &text, &len, err, errlen);
	if (rc != 0)
		goto out;
	rc = KB_ENOMEM;
	rv.nlines = count_lines(text, len);
	rv.drop = calloc(rv.nlines + 1, sizeof(bool));
	scratch = malloc(len + 1);
	if (rv.drop == NULL || scratch == NULL)
		goto out;
	/* Parsing unquotes in place; the rewrite needs the lines as they
	 * were. */
	memcpy(scratch, text, len + 1);
	rc =
	    kb_tokfile_parse(path, scratch, len, revoke_mark, &rv, err, errlen);
	if (rc == 0 && rv.dropped == 0) {
		snprintf(err, errlen, "no token or user in %s matches", path);
		rc = KB_ENOTFOUND;
	}
	if (rc == 0)
		rc = rewrite(path, &st, text, len, &rv, err, errlen);
out:
	free(rv.drop);
	kb_tokfile_wipe(scratch, len);
	kb_tokfile_wipe(text, len);
	return rc;
}

int kb_tokens_revoke(const char *path, const char *what, char *err,
    size_t errlen)
{
	if (what == NULL || *what == '\0') {
		snprintf(err, errlen, "revoke needs a token or a user name");
		return KB_EINVAL;
	}
	int fd;
	/* The lock keeps a concurrent create from appending to the file we
	 * are about to replace. */
	int rc = open_locked(path, O_RDONLY, &fd, err, errlen);
	if (rc == KB_ENOENT) {
		snprintf(err, errlen, "no token file %s", path);
		return KB_ENOTFOUND;
	}
	if (rc != 0)
		return rc;
	rc = revoke_in(fd, path, what, err, errlen);
	close(fd);
	return rc;
}
