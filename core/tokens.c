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
#include <libgen.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/random.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "tokens.h"

#define TOKFILE_MAX (16 << 20) /* larger is surely not a token file */
#define TOKEN_BYTES 32
#define TOKEN_SHOWN 8 /* what `kubus token list` shows of a token */

void kb_errf_(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	int e = errno;
	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	errno = e;
}

static void wipe(char *text, size_t len)
{
	if (text)
		OPENSSL_cleanse(text, len);
	free(text);
}

bool kb_auth_streq_ct(const char *a, const char *b)
{
	unsigned char sa[KB_SUM_LEN], sb[KB_SUM_LEN];
	if (a == NULL || b == NULL)
		return false;
	/* Digests have one length: no early exit at a length difference. */
	kb_token_sum(a, sa);
	kb_token_sum(b, sb);
	return CRYPTO_memcmp(sa, sb, KB_SUM_LEN) == 0;
}

/* --- reading and parsing ------------------------------------------------- */

static int check_mode(const char *path, mode_t mode, char *err, size_t errlen)
{
	if ((mode & 077) == 0)
		return 0;
	return kb_errf(err, errlen, KB_EFORBIDDEN,
	    "token file %s is %s by others (mode %04o); chmod 600 it", path,
	    mode & 044 ? "readable" : "writable", (unsigned)(mode & 07777));
}

/* The whole file at `path`, or open as `fd` when fd >= 0, NUL-terminated.
 * `check`: refuse it when others may use it. */
static int read_text(const char *path, int fd, bool check, char **text,
    size_t *len, struct stat *st, char *err, size_t errlen)
{
	int rc = 0, own = fd < 0;
	ssize_t got = 1;
	*text = NULL;
	*len = 0;
	if (own)
		fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return kb_errf(err, errlen,
		    errno == ENOENT ? KB_ENOENT : KB_ESYS,
		    "cannot open token file %s: %s", path, strerror(errno));
	if (fstat(fd, st) != 0)
		rc = kb_errf(err, errlen, KB_ESYS,
		    "cannot stat token file %s: %s", path, strerror(errno));
	else if (!S_ISREG(st->st_mode))
		rc = kb_errf(err, errlen, KB_EINVAL,
		    "token file %s is not a regular file", path);
	else if (check)
		rc = check_mode(path, st->st_mode, err, errlen);
	if (rc == 0 && st->st_size > TOKFILE_MAX)
		rc = kb_errf(err, errlen, KB_ETOOLARGE,
		    "token file %s is larger than %d bytes", path, TOKFILE_MAX);
	else if (rc == 0 && (*text = malloc((size_t)st->st_size + 1)) == NULL)
		rc = KB_ENOMEM;
	while (rc == 0 && got != 0 && *len < (size_t)st->st_size) {
		got = read(fd, *text + *len, (size_t)st->st_size - *len);
		*len += got > 0 ? (size_t)got : 0;
		if (got < 0 && errno != EINTR)
			rc = kb_errf(err, errlen, KB_ESYS,
			    "cannot read token file %s: %s", path,
			    strerror(errno));
	}
	if (rc == 0)
		(*text)[*len] = '\0';
	if (own)
		close(fd);
	return rc;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* Split one record (NUL-terminated, modified in place) into up to four
 * fields, each trimmed of blanks. A quoted field may hold commas, and ""
 * inside quotes is one quote, as in RFC 4180. NULL or what is wrong. */
static const char *split(char *p, char *f[4])
{
	for (int n = 0;; n++, p++) {
		while (is_blank(*p))
			p++;
		if (n == 4)
			return "more than 4 fields; quote the groups: "
			       "token,user,uid,\"group1,group2\"";
		char *w = f[n] = p, *end = p, c;
		if (*p == '"') {
			for (p++; *p != '"' || p[1] == '"'; p++) {
				if (*p == '\0')
					return "unterminated quoted field";
				p += *p == '"';
				*w++ = *p;
			}
			for (end = w, p++; is_blank(*p); p++)
				;
			if (*p != '\0' && *p != ',')
				return "unexpected text after a closing quote";
		}
		for (; *p != '\0' && *p != ','; p++) {
			if (*p == '"')
				return "a quote inside an unquoted field "
				       "(quote the whole field)";
			end = is_blank(*p) ? end : p + 1;
		}
		c = *p;
		*end = '\0';
		if (c == '\0' && n < 2)
			return "expected token,user,uid[,\"group1,group2\"]";
		if (c == '\0')
			break;
	}
	return !*f[0] ? "empty token" : !*f[1] ? "empty user name" : NULL;
}

/* Call fn for every line of `text`. Errors read "PATH:LINE: what". */
static int parse(const char *path, const char *text, size_t len,
    kb_tokline_fn fn, void *arg, char *err, size_t errlen)
{
	struct kb_tokline l = { 0 };
	int rc = 0;
	if (memchr(text, '\0', len))
		return kb_errf(err, errlen, KB_EINVAL,
		    "%s: contains a NUL byte", path);
	char *copy = malloc(len + 1);
	if (copy == NULL)
		return KB_ENOMEM;
	memcpy(copy, text, len + 1);
	for (char *p = copy, *end = copy + len; rc == 0 && p < end;) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		char *eol = nl ? nl : end, *next = nl ? nl + 1 : end;
		const char *why = NULL;
		l = (struct kb_tokline){ .no = l.no + 1,
			.raw = text + (p - copy),
			.rawlen = (size_t)(next - p) };
		eol -= eol > p && eol[-1] == '\r';
		*eol = '\0';
		while (is_blank(*p))
			p++;
		if (*p != '\0' && *p != '#' && (why = split(p, l.f)) != NULL)
			rc = KB_EINVAL;
		else
			rc = fn(arg, &l, &why);
		if (rc != 0)
			kb_errf_(err, errlen, "%s:%d: %s", path, l.no,
			    why ? why : kb_strerror(rc));
		p = next;
	}
	wipe(copy, len);
	return rc;
}

int kb_tokfile_load(const char *path, kb_tokline_fn fn, void *arg,
    struct stat *st, char *err, size_t errlen)
{
	char *text;
	size_t len;
	int rc = read_text(path, -1, true, &text, &len, st, err, errlen);
	if (rc == 0)
		rc = parse(path, text, len, fn, arg, err, errlen);
	wipe(text, len);
	return rc;
}

char *kb_tokfile_groups(char *csv)
{
	char *w = csv;
	if (csv == NULL)
		return NULL;
	for (char *s = csv; *s;) {
		while (*s == ',' || is_blank(*s))
			s++;
		char *e = s, *last = s;
		for (; *e && *e != ','; e++)
			last = is_blank(*e) ? last : e + 1;
		if (last > s && w > csv)
			*w++ = ',';
		memmove(w, s, (size_t)(last - s));
		w += last - s;
		s = e;
	}
	*w = '\0';
	return csv;
}

/* --- kubus token create | list | revoke ---------------------------------- */

/* Open and lock the file, making sure the lock is on the file that `path`
 * names now: a revoke may have renamed a new file over the one we opened
 * while we waited for its lock. */
static int open_locked(const char *path, int flags, int *fdp, char *err,
    size_t errlen)
{
	struct stat a, b;
	for (int tries = 0; tries < 100; tries++) {
		int rc = 0, fd = *fdp = open(path, flags | O_CLOEXEC, 0600);
		if (fd < 0)
			return kb_errf(err, errlen,
			    errno == ENOENT ? KB_ENOENT : KB_ESYS,
			    "cannot open token file %s: %s", path,
			    strerror(errno));
		if (flock(fd, LOCK_EX) != 0 || fstat(fd, &a) != 0)
			rc = kb_errf(err, errlen, KB_ESYS,
			    "cannot lock token file %s: %s", path,
			    strerror(errno));
		else if (stat(path, &b) == 0 && a.st_dev == b.st_dev &&
		    a.st_ino == b.st_ino)
			return 0;
		close(fd);
		if (rc != 0)
			return rc;
	}
	return kb_errf(err, errlen, KB_ESYS,
	    "token file %s keeps being replaced", path);
}

static int write_all(int fd, const char *s, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, s, len);
		if (n < 0 && errno != EINTR)
			return -1;
		s += n > 0 ? n : 0;
		len -= n > 0 ? (size_t)n : 0;
	}
	return 0;
}

/* Add `line` to a file only its owner may use, on a line of its own: a
 * hand-edited file may lack its last newline. */
static int append(int fd, const char *path, const char *line, size_t len,
    char *err, size_t errlen)
{
	struct stat st;
	char last = '\n';
	if (fstat(fd, &st) != 0 ||
	    (st.st_size > 0 && pread(fd, &last, 1, st.st_size - 1) != 1))
		return kb_errf(err, errlen, KB_ESYS,
		    "cannot read token file %s: %s", path, strerror(errno));
	if (check_mode(path, st.st_mode, err, errlen) != 0)
		return KB_EFORBIDDEN;
	if ((last != '\n' && write_all(fd, "\n", 1) != 0) ||
	    write_all(fd, line, len) != 0 || fsync(fd) != 0)
		return kb_errf(err, errlen, KB_ESYS,
		    "cannot write token file %s: %s", path, strerror(errno));
	return 0;
}

/* What we write unquoted must read back the same. */
static bool field_ok(const char *s, bool commas)
{
	return s[strcspn(s, commas ? "\"\r\n" : "\"\r\n,")] == '\0';
}

int kb_tokens_create(const char *path, const char *user, const char *uid,
    const char *groups, char *token, size_t tokenlen, char *err, size_t errlen)
{
	unsigned char raw[TOKEN_BYTES];
	char tok[2 * TOKEN_BYTES + 1], *line;
	int fd, len;
	/* The uid defaults to the user name, as kube's token files have it. */
	uid = uid && *uid ? uid : user;
	groups = groups ? groups : "";
	if (user == NULL || *user == '\0')
		return kb_errf(err, errlen, KB_EINVAL,
		    "a token needs a user name");
	if (!field_ok(user, false) || !field_ok(uid, false) ||
	    !field_ok(groups, true))
		return kb_errf(err, errlen, KB_EINVAL,
		    "user, uid and groups may not hold quotes or newlines, "
		    "nor user and uid commas");
	if (tokenlen < sizeof(tok))
		return kb_errf(err, errlen, KB_EINVAL,
		    "token buffer too small (%zu bytes, need %zu)", tokenlen,
		    sizeof(tok));
	/* Up to 256 bytes, getrandom() neither falls short nor is
	 * interrupted. */
	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
		return kb_errf(err, errlen, KB_ESYS,
		    "cannot get random bytes: %s", strerror(errno));
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(tok + 2 * i, 3, "%02x", raw[i]);
	OPENSSL_cleanse(raw, sizeof(raw));
	len = *groups ?
	    asprintf(&line, "%s,%s,%s,\"%s\"\n", tok, user, uid, groups) :
	    asprintf(&line, "%s,%s,%s\n", tok, user, uid);
	int rc = len < 0 ?
	    KB_ENOMEM :
	    open_locked(path, O_RDWR | O_APPEND | O_CREAT, &fd, err, errlen);
	if (rc == 0) {
		rc = append(fd, path, line, (size_t)len, err, errlen);
		close(fd);
	}
	if (rc == 0)
		memcpy(token, tok, sizeof(tok));
	if (len >= 0)
		wipe(line, (size_t)len);
	OPENSSL_cleanse(tok, sizeof(tok));
	return rc;
}

/* Two passes: the first (out NULL) measures the columns. */
struct listing {
	FILE *out;
	int w[3];
};

static int list_line(void *arg, struct kb_tokline *l, const char **why)
{
	struct listing *ls = arg;
	if (l->f[0] == NULL)
		return 0;
	const char *g = kb_tokfile_groups(l->f[3]);
	const char *col[3] = { l->f[1], l->f[2], g && *g ? g : "<none>" };
	/* Never more than a quarter of a token: a short hand-made one must
	 * not be printed nearly whole. */
	size_t shown = strlen(l->f[0]) / 4;
	for (int i = 0; i < 3 && ls->out == NULL; i++)
		if ((int)strlen(col[i]) > ls->w[i])
			ls->w[i] = (int)strlen(col[i]);
	if (ls->out)
		fprintf(ls->out, "%-*s   %-*s   %-*s   %.*s...\n", ls->w[0],
		    col[0], ls->w[1], col[1], ls->w[2], col[2],
		    (int)(shown < TOKEN_SHOWN ? shown : TOKEN_SHOWN), l->f[0]);
	return 0;
}

int kb_tokens_list(const char *path, FILE *out, char *err, size_t errlen)
{
	struct listing ls = { .w = { 4, 3, 6 } };
	struct stat st;
	char *text;
	size_t len;
	/* Listing a file with a bad mode still helps whoever is fixing it. */
	int rc = read_text(path, -1, false, &text, &len, &st, err, errlen);
	if (rc == KB_ENOENT)
		rc = 0;
	else if (rc == 0)
		rc = parse(path, text, len, list_line, &ls, err, errlen);
	if (rc == 0)
		fprintf(out, "%-*s   %-*s   %-*s   %s\n", ls.w[0], "USER",
		    ls.w[1], "UID", ls.w[2], "GROUPS", "TOKEN");
	ls.out = out;
	if (rc == 0 && text)
		rc = parse(path, text, len, list_line, &ls, err, errlen);
	wipe(text, len);
	return rc;
}

struct find {
	const char *user;
	char *token;
	size_t cap;
	bool found;
};

static int find_line(void *arg, struct kb_tokline *l, const char **why)
{
	struct find *f = arg;
	if (!f->found && l->f[0] && strcmp(l->f[1], f->user) == 0) {
		snprintf(f->token, f->cap, "%s", l->f[0]);
		f->found = true;
	}
	return 0;
}

int kb_tokens_find_user(const char *path, const char *user, char *token,
    size_t tokenlen, char *err, size_t errlen)
{
	struct find f = { .user = user, .token = token, .cap = tokenlen };
	struct stat st;
	int rc = kb_tokfile_load(path, find_line, &f, &st, err, errlen);
	if (rc == 0 && !f.found)
		rc = kb_errf(err, errlen, KB_ENOTFOUND, "%s has no token for %s", path, user);
	return rc;
}

/* Matches are counted; the other lines go to `fd` (if >= 0) as they were. */
struct revoke {
	const char *what;
	int fd;
	size_t dropped;
};

static int revoke_line(void *arg, struct kb_tokline *l, const char **why)
{
	struct revoke *rv = arg;
	if (l->f[0] &&
	    (kb_auth_streq_ct(l->f[0], rv->what) ||
		strcmp(l->f[1], rv->what) == 0))
		rv->dropped++;
	else if (rv->fd >= 0 && write_all(rv->fd, l->raw, l->rawlen) != 0) {
		*why = strerror(errno);
		return KB_ESYS;
	}
	return 0;
}

/* Write the kept lines to a temporary file beside `path` and rename it
 * over: readers see the old file or the new one, never half of it. */
static int rewrite(const char *path, const struct stat *st, const char *text,
    size_t len, struct revoke *rv, char *err, size_t errlen)
{
	char *tmp, *dir;
	int rc = 0;
	if (asprintf(&tmp, "%s.XXXXXX", path) < 0)
		return KB_ENOMEM;
	if ((rv->fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
		rc = kb_errf(err, errlen, KB_ESYS, "cannot create %s: %s", tmp,
		    strerror(errno));
		free(tmp);
		return rc;
	}
	/* Keep the owner when root revokes someone else's file; EPERM just
	 * means we are that owner already, or not root. -1: errno says. */
	if ((fchown(rv->fd, st->st_uid, st->st_gid) != 0 && errno != EPERM) ||
	    fchmod(rv->fd, 0600) != 0)
		rc = -1;
	else
		rc = parse(path, text, len, revoke_line, rv, err, errlen);
	if (rc == 0 && (fsync(rv->fd) != 0 || rename(tmp, path) != 0))
		rc = -1;
	if (rc == -1)
		rc = kb_errf(err, errlen, KB_ESYS,
		    "cannot rewrite token file %s: %s", path, strerror(errno));
	if (rc != 0)
		unlink(tmp);
	else if ((dir = strdup(path)) != NULL) {
		int dfd =
		    open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			fsync(dfd); /* the rename, durably */
			close(dfd);
		}
		free(dir);
	}
	close(rv->fd);
	free(tmp);
	return rc;
}

int kb_tokens_revoke(const char *path, const char *what, char *err,
    size_t errlen)
{
	struct revoke rv = { .what = what, .fd = -1 };
	struct stat st;
	char *text;
	size_t len;
	int fd, rc;
	if (what == NULL || *what == '\0')
		return kb_errf(err, errlen, KB_EINVAL,
		    "revoke needs a token or a user name");
	/* The lock keeps a concurrent create from appending to the file we
	 * are about to replace. */
	if ((rc = open_locked(path, O_RDONLY, &fd, err, errlen)) == KB_ENOENT)
		return kb_errf(err, errlen, KB_ENOTFOUND, "no token file %s",
		    path);
	if (rc != 0)
		return rc;
	rc = read_text(path, fd, false, &text, &len, &st, err, errlen);
	if (rc == 0) /* first only look: the file must parse, and match */
		rc = parse(path, text, len, revoke_line, &rv, err, errlen);
	if (rc == 0 && rv.dropped == 0)
		rc = kb_errf(err, errlen, KB_ENOTFOUND,
		    "no token or user in %s matches", path);
	if (rc == 0)
		rc = rewrite(path, &st, text, len, &rv, err, errlen);
	wipe(text, len);
	close(fd);
	return rc;
}
