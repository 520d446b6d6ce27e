/* core/auth.c — who a peer is (tokens) and what it may do (bus ACL, RBAC).
 *
 * One lock guards the token tables and both rule sets: checks take it for
 * reading on every message, so writers (a token file reload, a policy
 * load) build their new tables first and only swap pointers under it.
 * Tokens are kept as SHA-256 digests: the plain text lives only in the
 * file and, briefly, in the buffer that parses it.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "auth.h"
#include "log.h"

#define GROUP_AUTHENTICATED "system:authenticated"
/* How often kb_auth_authenticate() looks at the token file's mtime. */
#define RELOAD_EVERY_NS 1000000000LL
#define SUM_LEN SHA256_DIGEST_LENGTH

/* From tokens.c, which declares them the same way. */
typedef int (
    *kb_tokline_fn)(void *arg, int line, char *const f[4], const char **why);
KB_HIDDEN int kb_tokfile_read(const char *path, bool check_mode, char **text,
    size_t *len, struct stat *st, char *err, size_t errlen);
KB_HIDDEN int kb_tokfile_parse(const char *path, char *text, size_t len,
    kb_tokline_fn fn, void *arg, char *err, size_t errlen);
KB_HIDDEN void kb_tokfile_wipe(char *text, size_t len);

struct tok {
	unsigned char sum[SUM_LEN];
	char *user, *uid;
	char **groups; /* always ends with system:authenticated */
	size_t ngroups;
	int line; /* in the token file; 0 for in-memory tokens */
};

struct toktab {
	struct tok *v;
	size_t n, cap;
};

/* A pattern list as written, "!" included. `set` tells an absent key from
 * an empty list. */
struct pats {
	char **v;
	size_t n;
	bool set;
};

/* ACL and RBAC rules share one shape; each uses its own fields. */
enum {
	F_USERS,
	F_GROUPS,
	F_CALL,
	F_OPS,
	F_PUBLISH,
	F_SUBSCRIBE,
	F_VERBS,
	F_APIGROUPS,
	F_RESOURCES,
	F_NAMESPACES,
	F_NAMES,
	F_MAX
};

struct rule {
	struct pats f[F_MAX];
};

struct rules {
	struct rule *v;
	size_t n;
};

/* What identifies a version of the token file. */
struct stamp {
	bool exists;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtim, ctim;
};

struct kb_auth {
	pthread_rwlock_t lock; /* file, mem, acl, rbac */
	struct toktab file, mem;
	struct rules acl, rbac;
	pthread_mutex_t reload_mu; /* path, stamp */
	char *path;
	struct stamp stamp;
	atomic_llong next_check; /* kb_now_ns(); LLONG_MAX: no file */
};

/* --- built-in defaults (core/auth.h spells them out) ---------------------- */

#define L(...) ((const char *const[]){ __VA_ARGS__, NULL })

struct rule_src {
	const char *const *f[F_MAX];
};

static const struct rule_src default_acl[] = {
	{ .f = { [F_GROUPS] = L("kubus:plugins"),
	      [F_CALL] = L("*", "!store"),
	      [F_OPS] = L("*"),
	      [F_PUBLISH] = L("*", "!store/*"),
	      [F_SUBSCRIBE] = L("*", "!store/*") } },
	{ .f = { [F_GROUPS] = L("kubus:kind:frontend"),
	      [F_CALL] = L("store"),
	      [F_OPS] = L("*"),
	      [F_PUBLISH] = L("store/*"),
	      [F_SUBSCRIBE] = L("store/*") } },
	{ .f = { [F_GROUPS] = L("kubus:kind:store"),
	      [F_PUBLISH] = L("store/*") } },
	{ .f = { [F_GROUPS] = L("system:masters"),
	      [F_CALL] = L("*"),
	      [F_OPS] = L("*"),
	      [F_PUBLISH] = L("*"),
	      [F_SUBSCRIBE] = L("*") } },
	{ .f = { [F_GROUPS] = L("system:nodes"),
	      [F_CALL] = L("*", "!store"),
	      [F_OPS] = L("*"),
	      [F_PUBLISH] = L("*", "!store/*"),
	      [F_SUBSCRIBE] = L("*", "!store/*") } },
};

static const struct rule_src default_rbac[] = {
	{ .f = { [F_GROUPS] = L("system:masters"),
	      [F_VERBS] = L("*"),
	      [F_APIGROUPS] = L("*"),
	      [F_RESOURCES] = L("*") } },
	{ .f = { [F_GROUPS] = L("kubus:plugins"),
	      [F_VERBS] = L("*"),
	      [F_APIGROUPS] = L("*"),
	      [F_RESOURCES] = L("*") } },
	/* nodes/status too: a kubelet reports its node's status there. */
	{ .f = { [F_GROUPS] = L("system:nodes"),
	      [F_VERBS] = L("*"),
	      [F_APIGROUPS] = L("*"),
	      [F_RESOURCES] = L("nodes", "nodes/status", "leases", "pods",
		  "pods/status", "events", "configmaps", "secrets", "services",
		  "endpoints", "endpointslices") } },
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* --- pattern lists -------------------------------------------------------- */

bool kb_auth_glob(const char *pattern, const char *s)
{
	size_t n = strlen(pattern);
	if (n > 0 && pattern[n - 1] == '*')
		return strncmp(pattern, s, n - 1) == 0;
	return strcmp(pattern, s) == 0;
}

/* RBAC resources also know "*\/status": that subresource of anything. */
static bool resource_glob(const char *pattern, const char *s)
{
	if (pattern[0] == '*' && pattern[1] == '/') {
		const char *slash = strchr(s, '/');
		return slash && strcmp(slash + 1, pattern + 2) == 0;
	}
	return kb_auth_glob(pattern, s);
}

typedef bool (*glob_fn)(const char *pattern, const char *s);

/* Some entry matches and no "!" entry does. */
static bool pats_match(const struct pats *ps, const char *s, glob_fn glob)
{
	bool hit = false;
	for (size_t i = 0; i < ps->n; i++) {
		const char *p = ps->v[i];
		if (p[0] == '!' && glob(p + 1, s))
			return false;
		if (p[0] != '!' && !hit)
			hit = glob(p, s);
	}
	return hit;
}

static bool starts_with(const char *s, const char *prefix, size_t n)
{
	return strncmp(s, prefix, n) == 0;
}

/* Could a topic matched by `stem*` also match pattern `p`? */
static bool overlaps(const char *p, const char *stem)
{
	size_t pn = strlen(p), sn = strlen(stem);
	if (pn > 0 && p[pn - 1] == '*')
		return starts_with(stem, p, pn - 1) || starts_with(p, stem, sn);
	return starts_with(p, stem, sn);
}

/* Does the list allow every name that `pattern` (a subscription: exact or
 * "prefix*") can match? "*" is not allowed by ["*", "!store/\*"], since it
 * would deliver store topics too. */
static bool pats_cover(const struct pats *ps, const char *pattern)
{
	size_t n = strlen(pattern);
	if (n == 0 || pattern[n - 1] != '*')
		return pats_match(ps, pattern, kb_auth_glob);
	char stem[256];
	if (n > sizeof(stem))
		return false;
	memcpy(stem, pattern, n - 1);
	stem[n - 1] = '\0';
	bool covered = false;
	for (size_t i = 0; i < ps->n; i++) {
		const char *p = ps->v[i];
		size_t pn = strlen(p);
		if (p[0] == '!' && overlaps(p + 1, stem))
			return false;
		if (p[0] != '!' && pn > 0 && p[pn - 1] == '*' &&
		    starts_with(stem, p, pn - 1))
			covered = true;
	}
	return covered;
}

static void pats_free(struct pats *ps)
{
	for (size_t i = 0; i < ps->n; i++)
		free(ps->v[i]);
	free(ps->v);
	*ps = (struct pats){ 0 };
}

static int pats_push(struct pats *ps, const char *s)
{
	char **v = realloc(ps->v, (ps->n + 1) * sizeof(*v));
	if (v == NULL)
		return KB_ENOMEM;
	ps->v = v;
	if ((v[ps->n] = strdup(s)) == NULL)
		return KB_ENOMEM;
	ps->n++;
	return 0;
}

/* --- rules ---------------------------------------------------------------- */

static void rules_free(struct rules *rs)
{
	for (size_t i = 0; i < rs->n; i++)
		for (int f = 0; f < F_MAX; f++)
			pats_free(&rs->v[i].f[f]);
	free(rs->v);
	*rs = (struct rules){ 0 };
}

static struct rule *rules_add(struct rules *rs)
{
	struct rule *v = realloc(rs->v, (rs->n + 1) * sizeof(*v));
	if (v == NULL)
		return NULL;
	rs->v = v;
	memset(&v[rs->n], 0, sizeof(v[rs->n]));
	return &v[rs->n++];
}

static int rules_from_src(struct rules *rs, const struct rule_src *src,
    size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct rule *r = rules_add(rs);
		if (r == NULL)
			return KB_ENOMEM;
		for (int f = 0; f < F_MAX; f++) {
			const char *const *s = src[i].f[f];
			r->f[f].set = s != NULL;
			for (; s && *s; s++)
				if (pats_push(&r->f[f], *s) != 0)
					return KB_ENOMEM;
		}
	}
	return 0;
}

/* The rule names this principal: by user or by one of its groups, and no
 * "!" entry excludes the user or any of its groups. */
static bool rule_names(const struct rule *r, const char *user,
    const char *const *groups, size_t ngroups)
{
	const struct pats *us = &r->f[F_USERS], *gs = &r->f[F_GROUPS];
	bool hit = false;
	for (size_t i = 0; i < us->n; i++) {
		const char *p = us->v[i];
		if (p[0] == '!' && kb_auth_glob(p + 1, user))
			return false;
		hit = hit || (p[0] != '!' && kb_auth_glob(p, user));
	}
	for (size_t i = 0; i < gs->n; i++) {
		const char *p = gs->v[i];
		for (size_t g = 0; g < ngroups; g++) {
			if (p[0] == '!' && kb_auth_glob(p + 1, groups[g]))
				return false;
			hit = hit ||
			    (p[0] != '!' && kb_auth_glob(p, groups[g]));
		}
	}
	return hit;
}

static bool rule_names_ident(const struct rule *r, const struct kb_ident *who)
{
	return rule_names(r, who->user ? who->user : "",
	    (const char *const *)who->groups, who->ngroups);
}

/* --- reading rules from config -------------------------------------------- */

#define EMPTY_OK 1u /* "" means something: the core API group, all namespaces */
#define REQUIRED 2u
#define SUBRES 4u /* "*\/status" allowed */
#define ALL_NS 8u /* "" means every namespace: stored as "*" */

struct field {
	const char *key;
	int f;
	unsigned flags;
};

static const struct field acl_fields[] = {
	{ "users", F_USERS, 0 },
	{ "groups", F_GROUPS, 0 },
	{ "call", F_CALL, 0 },
	{ "ops", F_OPS, 0 },
	{ "publish", F_PUBLISH, 0 },
	{ "subscribe", F_SUBSCRIBE, 0 },
	{ NULL, 0, 0 },
};

static const struct field rbac_fields[] = {
	{ "users", F_USERS, 0 },
	{ "groups", F_GROUPS, 0 },
	{ "verbs", F_VERBS, REQUIRED },
	{ "apiGroups", F_APIGROUPS, REQUIRED | EMPTY_OK },
	{ "resources", F_RESOURCES, REQUIRED | SUBRES },
	{ "namespaces", F_NAMESPACES, EMPTY_OK | ALL_NS },
	{ "names", F_NAMES, 0 },
	{ NULL, 0, 0 },
};

static int conf_err(const kb_conf *n, char *err, size_t errlen, const char *fmt,
    ...) __attribute__((format(printf, 4, 5)));

/* "FILE:LINE:COL: what", as every config error reads. */
static int conf_err(const kb_conf *n, char *err, size_t errlen, const char *fmt,
    ...)
{
	const char *file = kb_conf_file(n);
	int k = snprintf(err, errlen, "%s:%d:%d: ", file ? file : "config",
	    kb_conf_line(n), kb_conf_col(n));
	if (k >= 0 && (size_t)k < errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err + k, errlen - (size_t)k, fmt, ap);
		va_end(ap);
	}
	return KB_EINVAL;
}

static const struct field *field_find(const struct field *fs, const char *key)
{
	for (; fs->key; fs++)
		if (strcmp(fs->key, key) == 0)
			return fs;
	return NULL;
}

/* "users, groups, call, ops, publish or subscribe" */
static const char *field_names(const struct field *fs, char *buf, size_t cap)
{
	size_t n = 0;
	buf[0] = '\0';
	for (const struct field *f = fs; f->key && n < cap; f++) {
		const char *sep = f == fs ? "" : f[1].key ? ", " : " or ";
		int k = snprintf(buf + n, cap - n, "%s%s", sep, f->key);
		n += k > 0 ? (size_t)k : 0;
	}
	return buf;
}

static const char *pattern_problem(const char *s, unsigned flags)
{
	const char *p = s[0] == '!' ? s + 1 : s;
	if (p[0] == '!')
		return "only one '!' may lead a pattern";
	if (p[0] == '\0' && p != s)
		return "'!' needs a pattern after it";
	if (p[0] == '\0' && !(flags & EMPTY_OK))
		return "empty pattern";
	if ((flags & SUBRES) && p[0] == '*' && p[1] == '/') {
		if (p[2] == '\0' || strchr(p + 2, '*'))
			return "\"*/\" must be followed by a subresource name";
		return NULL;
	}
	const char *star = strchr(p, '*');
	if (star && star[1] != '\0')
		return "'*' may only end a pattern";
	return NULL;
}

static int pats_load(struct pats *ps, const kb_conf *list,
    const struct field *fd, char *err, size_t errlen)
{
	ps->set = true;
	if (kb_conf_type(list) == KB_CONF_NULL)
		return 0;
	if (kb_conf_type(list) != KB_CONF_SEQ)
		return conf_err(list, err, errlen,
		    "`%s` in %s must be a list of strings, e.g. [\"*\"]",
		    fd->key, kb_conf_where(list));
	for (size_t i = 0; i < kb_conf_len(list); i++) {
		const kb_conf *item = kb_conf_at(list, i);
		const char *s = kb_conf_str(item);
		if (s == NULL)
			return conf_err(item, err, errlen,
			    "%s must be a string", kb_conf_where(item));
		const char *why = pattern_problem(s, fd->flags);
		if (why)
			return conf_err(item, err, errlen, "`%s` in %s: %s", s,
			    kb_conf_where(list), why);
		if ((fd->flags & ALL_NS) && s[0] == '\0')
			s = "*";
		if (pats_push(ps, s) != 0)
			return KB_ENOMEM;
	}
	return 0;
}

static int rule_check(const struct rule *r, const kb_conf *m,
    const struct field *fs, char *err, size_t errlen)
{
	for (const struct field *f = fs; f->key; f++)
		if ((f->flags & REQUIRED) && !r->f[f->f].set)
			return conf_err(m, err, errlen, "%s needs `%s`",
			    kb_conf_where(m), f->key);
	if (r->f[F_USERS].n + r->f[F_GROUPS].n == 0)
		return conf_err(m, err, errlen,
		    "%s names no users or groups, so it applies to no one",
		    kb_conf_where(m));
	return 0;
}

static int rule_load(struct rule *r, const kb_conf *m, const struct field *fs,
    char *err, size_t errlen)
{
	char names[128];
	if (kb_conf_type(m) != KB_CONF_MAP)
		return conf_err(m, err, errlen,
		    "%s must be a rule: a map of %s", kb_conf_where(m),
		    field_names(fs, names, sizeof(names)));
	for (size_t i = 0; i < kb_conf_len(m); i++) {
		const char *key = kb_conf_key_at(m, i);
		const kb_conf *val = kb_conf_at(m, i);
		const struct field *fd = field_find(fs, key);
		if (fd == NULL)
			return conf_err(val, err, errlen,
			    "unknown key `%s` in %s; expected %s", key,
			    kb_conf_where(m),
			    field_names(fs, names, sizeof(names)));
		int rc = pats_load(&r->f[fd->f], val, fd, err, errlen);
		if (rc != 0)
			return rc;
	}
	/* Leaving out `ops` means every op of the services in `call`. */
	if (fs == acl_fields && !r->f[F_OPS].set &&
	    pats_push(&r->f[F_OPS], "*") != 0)
		return KB_ENOMEM;
	return rule_check(r, m, fs, err, errlen);
}

/* A config list of rules, or the defaults when the key is absent. */
static int rules_load(struct rules *rs, const kb_conf *list,
    const struct field *fs, const struct rule_src *defaults, size_t ndefaults,
    char *err, size_t errlen)
{
	if (kb_conf_type(list) == KB_CONF_NULL)
		return rules_from_src(rs, defaults, ndefaults);
	if (kb_conf_type(list) != KB_CONF_SEQ)
		return conf_err(list, err, errlen, "%s must be a list of rules",
		    kb_conf_where(list));
	for (size_t i = 0; i < kb_conf_len(list); i++) {
		struct rule *r = rules_add(rs);
		if (r == NULL)
			return KB_ENOMEM;
		int rc = rule_load(r, kb_conf_at(list, i), fs, err, errlen);
		if (rc != 0)
			return rc;
	}
	return 0;
}

int kb_auth_load_policy(struct kb_auth *a, const kb_conf *policy,
    const kb_conf *rbac, char *err, size_t errlen)
{
	struct rules acl = { 0 }, rb = { 0 };
	int rc = rules_load(&acl, policy, acl_fields, default_acl,
	    NELEM(default_acl), err, errlen);
	if (rc == 0)
		rc = rules_load(&rb, rbac, rbac_fields, default_rbac,
		    NELEM(default_rbac), err, errlen);
	if (rc == KB_ENOMEM)
		snprintf(err, errlen, "out of memory loading the auth policy");
	if (rc != 0)
		goto out;
	/* Swap, then free the old rules outside the lock. */
	pthread_rwlock_wrlock(&a->lock);
	struct rules old_acl = a->acl, old_rb = a->rbac;
	a->acl = acl;
	a->rbac = rb;
	pthread_rwlock_unlock(&a->lock);
	acl = old_acl;
	rb = old_rb;
out:
	rules_free(&acl);
	rules_free(&rb);
	return rc;
}

/* --- bus ACL -------------------------------------------------------------- */

bool kb_auth_may_call(struct kb_auth *a, const struct kb_ident *who,
    const char *service, const char *op)
{
	if (a == NULL || who == NULL || service == NULL)
		return false;
	bool ok = false;
	pthread_rwlock_rdlock(&a->lock);
	for (size_t i = 0; !ok && i < a->acl.n; i++) {
		const struct rule *r = &a->acl.v[i];
		ok = rule_names_ident(r, who) &&
		    pats_match(&r->f[F_CALL], service, kb_auth_glob) &&
		    pats_match(&r->f[F_OPS], op ? op : "", kb_auth_glob);
	}
	pthread_rwlock_unlock(&a->lock);
	return ok;
}

bool kb_auth_may_publish(struct kb_auth *a, const struct kb_ident *who,
    const char *topic)
{
	if (a == NULL || who == NULL || topic == NULL)
		return false;
	bool ok = false;
	pthread_rwlock_rdlock(&a->lock);
	for (size_t i = 0; !ok && i < a->acl.n; i++) {
		const struct rule *r = &a->acl.v[i];
		ok = rule_names_ident(r, who) &&
		    pats_match(&r->f[F_PUBLISH], topic, kb_auth_glob);
	}
	pthread_rwlock_unlock(&a->lock);
	return ok;
}

bool kb_auth_may_subscribe(struct kb_auth *a, const struct kb_ident *who,
    const char *pattern)
{
	if (a == NULL || who == NULL || pattern == NULL)
		return false;
	bool ok = false;
	pthread_rwlock_rdlock(&a->lock);
	for (size_t i = 0; !ok && i < a->acl.n; i++) {
		const struct rule *r = &a->acl.v[i];
		ok = rule_names_ident(r, who) &&
		    pats_cover(&r->f[F_SUBSCRIBE], pattern);
	}
	pthread_rwlock_unlock(&a->lock);
	return ok;
}

/* --- RBAC ----------------------------------------------------------------- */

struct request {
	const char *user, *verb, *group, *resource, *full, *ns, *name;
	const char *const *groups;
	size_t ngroups;
};

/* An empty namespace is a cluster-scoped request or one across every
 * namespace: only a rule for all namespaces grants it. */
static bool ns_allowed(const struct pats *ps, const char *ns)
{
	if (ps->n == 0)
		return true;
	return *ns ? pats_match(ps, ns, kb_auth_glob) : pats_cover(ps, "*");
}

/* A collection (no name) is granted only by a rule for every name. */
static bool name_allowed(const struct pats *ps, const char *name)
{
	if (ps->n == 0)
		return true;
	return name ? pats_match(ps, name, kb_auth_glob) : pats_cover(ps, "*");
}

static bool rbac_allows(const struct rule *r, const struct request *q)
{
	return rule_names(r, q->user, q->groups, q->ngroups) &&
	    pats_match(&r->f[F_VERBS], q->verb, kb_auth_glob) &&
	    pats_match(&r->f[F_APIGROUPS], q->group, kb_auth_glob) &&
	    pats_match(&r->f[F_RESOURCES], q->full, resource_glob) &&
	    ns_allowed(&r->f[F_NAMESPACES], q->ns) &&
	    name_allowed(&r->f[F_NAMES], q->name);
}

struct sbuf {
	char *p;
	size_t cap, n;
};

static void sb_put(struct sbuf *b, char c)
{
	if (b->n + 1 < b->cap)
		b->p[b->n++] = c;
	b->p[b->n] = '\0';
}

static void sb_str(struct sbuf *b, const char *s)
{
	while (*s)
		sb_put(b, *s++);
}

/* As Go's %q, which the Kubernetes message is made with. */
static void sb_quote(struct sbuf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	sb_put(b, '"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			sb_put(b, '\\');
			sb_put(b, (char)c);
		} else if (c < 0x20 || c == 0x7f) {
			sb_str(b, "\\x");
			sb_put(b, hex[c >> 4]);
			sb_put(b, hex[c & 15]);
		} else {
			sb_put(b, (char)c);
		}
	}
	sb_put(b, '"');
}

/* User "u" cannot VERB resource "r[/sub]" in API group "g" in the namespace
 * "ns" (or: at the cluster scope) — kube-apiserver's forbidden message. */
static void deny_reason(const struct request *q, char *out, size_t cap)
{
	struct sbuf b = { .p = out, .cap = cap };
	if (cap == 0)
		return;
	out[0] = '\0';
	sb_str(&b, "User ");
	sb_quote(&b, q->user);
	sb_str(&b, " cannot ");
	sb_str(&b, q->verb);
	sb_str(&b, " resource ");
	sb_quote(&b, q->full);
	sb_str(&b, " in API group ");
	sb_quote(&b, q->group);
	if (*q->ns) {
		sb_str(&b, " in the namespace ");
		sb_quote(&b, q->ns);
	} else {
		sb_str(&b, " at the cluster scope");
	}
}

bool kb_auth_authorize(struct kb_auth *a, const char *user,
    const char *const *groups, size_t ngroups, const char *verb,
    const char *api_group, const char *resource, const char *subresource,
    const char *namespace_, const char *name, char *reason, size_t reasonlen)
{
	char full[512];
	struct request q = {
		.user = user ? user : "",
		.verb = verb ? verb : "",
		.group = api_group ? api_group : "",
		.resource = resource ? resource : "",
		.full = full,
		.ns = namespace_ ? namespace_ : "",
		.name = name,
		.groups = groups,
		.ngroups = groups ? ngroups : 0,
	};
	int k = subresource && *subresource ?
	    snprintf(full, sizeof(full), "%s/%s", q.resource, subresource) :
	    snprintf(full, sizeof(full), "%s", q.resource);
	bool ok = false;
	/* A truncated name could match a rule meant for a shorter one. */
	if (a && k >= 0 && (size_t)k < sizeof(full)) {
		pthread_rwlock_rdlock(&a->lock);
		for (size_t i = 0; !ok && i < a->rbac.n; i++)
			ok = rbac_allows(&a->rbac.v[i], &q);
		pthread_rwlock_unlock(&a->lock);
	}
	if (reason && reasonlen > 0)
		reason[0] = '\0';
	if (!ok && reason)
		deny_reason(&q, reason, reasonlen);
	return ok;
}

/* --- tokens --------------------------------------------------------------- */

static void sum_of(const char *token, size_t len, unsigned char sum[SUM_LEN])
{
	SHA256((const unsigned char *)token, len, sum);
}

bool kb_auth_streq_ct(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return false;
	/* Digests have one length, so the comparison cannot stop early at a
	 * length difference or at the first differing byte. */
	unsigned char sa[SUM_LEN], sb[SUM_LEN];
	sum_of(a, strlen(a), sa);
	sum_of(b, strlen(b), sb);
	return CRYPTO_memcmp(sa, sb, SUM_LEN) == 0;
}

static void tok_free(struct tok *k)
{
	for (size_t i = 0; i < k->ngroups; i++)
		free(k->groups[i]);
	free(k->groups);
	free(k->user);
	free(k->uid);
}

static void toktab_free(struct toktab *t)
{
	for (size_t i = 0; i < t->n; i++)
		tok_free(&t->v[i]);
	free(t->v);
	*t = (struct toktab){ 0 };
}

static int tok_add_group(struct tok *k, const char *g, size_t len)
{
	for (size_t i = 0; i < k->ngroups; i++)
		if (strlen(k->groups[i]) == len &&
		    memcmp(k->groups[i], g, len) == 0)
			return 0;
	char **v = realloc(k->groups, (k->ngroups + 1) * sizeof(*v));
	if (v == NULL)
		return KB_ENOMEM;
	k->groups = v;
	if ((v[k->ngroups] = strndup(g, len)) == NULL)
		return KB_ENOMEM;
	k->ngroups++;
	return 0;
}

/* "a, b,,c" as kube-apiserver reads it: trimmed, empty entries dropped. */
static int tok_add_groups_csv(struct tok *k, const char *csv)
{
	while (csv && *csv) {
		while (*csv == ',' || *csv == ' ' || *csv == '\t')
			csv++;
		const char *e = csv, *last = csv;
		for (; *e && *e != ','; e++)
			if (*e != ' ' && *e != '\t')
				last = e + 1;
		if (last > csv && tok_add_group(k, csv, (size_t)(last - csv)))
			return KB_ENOMEM;
		csv = e;
	}
	return 0;
}

static int tok_init(struct tok *k, const char *token, const char *user,
    const char *uid, int line)
{
	*k = (struct tok){ .line = line };
	sum_of(token, strlen(token), k->sum);
	k->user = strdup(user);
	k->uid = strdup(uid ? uid : "");
	return k->user && k->uid ? 0 : KB_ENOMEM;
}

static struct tok *toktab_add(struct toktab *t)
{
	if (t->n == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 16;
		struct tok *v = realloc(t->v, cap * sizeof(*v));
		if (v == NULL)
			return NULL;
		t->v = v;
		t->cap = cap;
	}
	memset(&t->v[t->n], 0, sizeof(t->v[t->n]));
	return &t->v[t->n++];
}

static int tok_line(void *arg, int line, char *const f[4], const char **why)
{
	struct toktab *t = arg;
	struct tok *k = toktab_add(t);
	int rc = k ? tok_init(k, f[0], f[1], f[2], line) : KB_ENOMEM;
	if (rc == 0)
		rc = tok_add_groups_csv(k, f[3]);
	if (rc == 0)
		rc = tok_add_group(k, GROUP_AUTHENTICATED,
		    strlen(GROUP_AUTHENTICATED));
	if (rc != 0)
		*why = "out of memory";
	return rc;
}

static int tok_cmp(const void *x, const void *y)
{
	const struct tok *a = x, *b = y;
	int c = memcmp(a->sum, b->sum, SUM_LEN);
	return c ? c : a->line - b->line;
}

/* One token naming two users is a mistake to refuse, not to guess at. */
static int toktab_check_unique(struct toktab *t, const char *path, char *err,
    size_t errlen)
{
	if (t->n > 1)
		qsort(t->v, t->n, sizeof(*t->v), tok_cmp);
	for (size_t i = 1; i < t->n; i++)
		if (memcmp(t->v[i - 1].sum, t->v[i].sum, SUM_LEN) == 0) {
			snprintf(err, errlen, "%s:%d: same token as on line %d",
			    path, t->v[i].line, t->v[i - 1].line);
			return KB_EINVAL;
		}
	return 0;
}

static void stamp_of(struct stamp *s, const struct stat *st)
{
	*s = (struct stamp){ .exists = true,
		.dev = st->st_dev,
		.ino = st->st_ino,
		.size = st->st_size,
		.mtim = st->st_mtim,
		.ctim = st->st_ctim };
}

/* mtime alone misses a rename within the same tick and a chmod. */
static bool stamp_eq(const struct stamp *a, const struct stamp *b)
{
	if (a->exists != b->exists)
		return false;
	return !a->exists ||
	    (a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
		a->mtim.tv_sec == b->mtim.tv_sec &&
		a->mtim.tv_nsec == b->mtim.tv_nsec &&
		a->ctim.tv_sec == b->ctim.tv_sec &&
		a->ctim.tv_nsec == b->ctim.tv_nsec);
}

static int tokens_read(const char *path, struct toktab *out, struct stamp *s,
    char *err, size_t errlen)
{
	struct toktab t = { 0 };
	struct stat st;
	char *text;
	size_t len;
	*s = (struct stamp){ .exists = false };
	int rc = kb_tokfile_read(path, true, &text, &len, &st, err, errlen);
	if (rc == KB_ENOENT) {
		*out = t;
		return 0;
	}
	if (rc == 0)
		rc = kb_tokfile_parse(path, text, len, tok_line, &t, err,
		    errlen);
	kb_tokfile_wipe(text, len);
	if (rc == 0)
		rc = toktab_check_unique(&t, path, err, errlen);
	if (rc != 0) {
		toktab_free(&t);
		return rc;
	}
	stamp_of(s, &st);
	*out = t;
	return 0;
}

static void tokens_swap(struct kb_auth *a, struct toktab *t)
{
	pthread_rwlock_wrlock(&a->lock);
	struct toktab old = a->file;
	a->file = *t;
	pthread_rwlock_unlock(&a->lock);
	toktab_free(&old);
}

int kb_auth_load_tokens(struct kb_auth *a, const char *path, char *err,
    size_t errlen)
{
	if (path == NULL || *path == '\0') {
		snprintf(err, errlen, "no token file given");
		return KB_EINVAL;
	}
	char *copy = strdup(path);
	if (copy == NULL)
		return KB_ENOMEM;
	struct toktab t;
	struct stamp s;
	pthread_mutex_lock(&a->reload_mu);
	int rc = tokens_read(path, &t, &s, err, errlen);
	if (rc == 0) {
		tokens_swap(a, &t);
		free(a->path);
		a->path = copy;
		copy = NULL;
		a->stamp = s;
		atomic_store(&a->next_check, kb_now_ns() + RELOAD_EVERY_NS);
	}
	pthread_mutex_unlock(&a->reload_mu);
	free(copy);
	return rc;
}

/* Under reload_mu. A file that became unreadable or malformed keeps the
 * tokens loaded before: locking every client out is worse than a late
 * revoke, and the log says so. A deleted file is an empty set. */
static void reload_if_changed(struct kb_auth *a)
{
	struct stat st;
	struct stamp now = { .exists = false };
	if (stat(a->path, &st) == 0)
		stamp_of(&now, &st);
	if (stamp_eq(&now, &a->stamp))
		return;
	char err[512], msg[640];
	struct toktab t;
	struct stamp s;
	int rc = tokens_read(a->path, &t, &s, err, sizeof(err));
	if (rc != 0) {
		a->stamp = now; /* say it once per change, not every second */
		snprintf(msg, sizeof(msg),
		    "keeping the tokens loaded before: %s", err);
		kb_clog(KB_LOG_ERROR, msg, NULL);
		return;
	}
	size_t n = t.n;
	tokens_swap(a, &t);
	a->stamp = s;
	kb_clog(KB_LOG_INFO, "token file reloaded", "tokens=%zu", n);
}

static void maybe_reload(struct kb_auth *a)
{
	long long now = kb_now_ns();
	long long next =
	    atomic_load_explicit(&a->next_check, memory_order_relaxed);
	/* One thread a second pays for the stat; the others go on. */
	if (now < next ||
	    !atomic_compare_exchange_strong(&a->next_check, &next,
		now + RELOAD_EVERY_NS))
		return;
	pthread_mutex_lock(&a->reload_mu);
	if (a->path)
		reload_if_changed(a);
	pthread_mutex_unlock(&a->reload_mu);
}

int kb_auth_add_token(struct kb_auth *a, const char *token, const char *user,
    const char *uid, const char *const *groups, size_t ngroups)
{
	if (a == NULL || token == NULL || *token == '\0' || user == NULL ||
	    *user == '\0')
		return KB_EINVAL;
	struct tok k;
	int rc = tok_init(&k, token, user, uid, 0);
	for (size_t i = 0; rc == 0 && i < ngroups; i++)
		rc = tok_add_group(&k, groups[i], strlen(groups[i]));
	if (rc == 0)
		rc = tok_add_group(&k, GROUP_AUTHENTICATED,
		    strlen(GROUP_AUTHENTICATED));
	if (rc != 0)
		goto out_free;
	pthread_rwlock_wrlock(&a->lock);
	for (size_t i = 0; rc == 0 && i < a->mem.n; i++)
		if (memcmp(a->mem.v[i].sum, k.sum, SUM_LEN) == 0)
			rc = KB_EEXIST;
	struct tok *slot = rc == 0 ? toktab_add(&a->mem) : NULL;
	if (slot)
		*slot = k;
	else if (rc == 0)
		rc = KB_ENOMEM;
	pthread_rwlock_unlock(&a->lock);
	if (rc == 0)
		return 0;
out_free:
	tok_free(&k);
	return rc;
}

/* The entry whose digest equals `sum`, else `hit`. Every entry is compared
 * in full and the choice made without a branch, so the time taken does not
 * tell how close a guess came or where its match sits. */
static const struct tok *find_ct(const struct toktab *t,
    const unsigned char sum[SUM_LEN], const struct tok *hit)
{
	uintptr_t h = (uintptr_t)hit;
	for (size_t i = 0; i < t->n; i++) {
		unsigned d = 0;
		for (size_t j = 0; j < SUM_LEN; j++)
			d |= (unsigned)(t->v[i].sum[j] ^ sum[j]);
		/* all ones when d == 0 (d is at most 255) */
		uintptr_t eq = (uintptr_t)0 - (uintptr_t)(((d - 1) >> 8) & 1);
		h = (h & ~eq) | ((uintptr_t)&t->v[i] & eq);
	}
	return (const struct tok *)h;
}

int kb_auth_authenticate(struct kb_auth *a, const char *token,
    const char *endpoint, struct kb_ident **out)
{
	if (out)
		*out = NULL;
	if (a == NULL || token == NULL || *token == '\0' || out == NULL)
		return KB_EUNAUTHORIZED;
	maybe_reload(a);
	unsigned char sum[SUM_LEN];
	sum_of(token, strlen(token), sum);
	pthread_rwlock_rdlock(&a->lock);
	const struct tok *k = find_ct(&a->file, sum, NULL);
	k = find_ct(&a->mem, sum, k);
	struct kb_ident *id = k ?
	    kb_ident_new(endpoint ? endpoint : "", k->user, k->uid,
		(const char *const *)k->groups, k->ngroups) :
	    NULL;
	pthread_rwlock_unlock(&a->lock);
	OPENSSL_cleanse(sum, sizeof(sum));
	if (k == NULL)
		return KB_EUNAUTHORIZED;
	if (id == NULL)
		return KB_ENOMEM;
	*out = id;
	return 0;
}

/* --- life ----------------------------------------------------------------- */

struct kb_auth *kb_auth_new(void)
{
	struct kb_auth *a = calloc(1, sizeof(*a));
	if (a == NULL)
		return NULL;
	pthread_rwlock_init(&a->lock, NULL);
	pthread_mutex_init(&a->reload_mu, NULL);
	atomic_init(&a->next_check, LLONG_MAX);
	if (rules_from_src(&a->acl, default_acl, NELEM(default_acl)) != 0 ||
	    rules_from_src(&a->rbac, default_rbac, NELEM(default_rbac)) != 0) {
		kb_auth_free(a);
		return NULL;
	}
	return a;
}

void kb_auth_free(struct kb_auth *a)
{
	if (a == NULL)
		return;
	toktab_free(&a->file);
	toktab_free(&a->mem);
	rules_free(&a->acl);
	rules_free(&a->rbac);
	free(a->path);
	pthread_mutex_destroy(&a->reload_mu);
	pthread_rwlock_destroy(&a->lock);
	free(a);
}

/* --- the `auth` bus service ----------------------------------------------- */

static const char *mp_type(const msgpack_object *o)
{
	if (o == NULL)
		return "nothing";
	switch (o->type) {
	case MSGPACK_OBJECT_NIL:
		return "nil";
	case MSGPACK_OBJECT_BOOLEAN:
		return "a bool";
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		return "an integer";
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		return "a float";
	case MSGPACK_OBJECT_STR:
		return "a string";
	case MSGPACK_OBJECT_BIN:
		return "bytes";
	case MSGPACK_OBJECT_ARRAY:
		return "an array";
	case MSGPACK_OBJECT_MAP:
		return "a map";
	default:
		return "an extension";
	}
}

/* A NUL-terminated copy of a msgpack string; NULL for anything else or a
 * string with a NUL inside (which no name or token may hold). */
static char *str_copy(const msgpack_object *o)
{
	if (o == NULL || o->type != MSGPACK_OBJECT_STR ||
	    memchr(o->via.str.ptr, '\0', o->via.str.size))
		return NULL;
	return strndup(o->via.str.ptr, o->via.str.size);
}

static kb_body *ident_body(const struct kb_ident *id)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, id->ngroups);
	for (size_t i = 0; i < id->ngroups; i++)
		kb_mp_pack_cstr(&pk, id->groups[i]);
	kb_body *b = kb_mp_body("{s:s, s:s, s:r}", "user", id->user, "uid",
	    id->uid, "groups", sb.data, sb.size);
	msgpack_sbuffer_destroy(&sb);
	return b;
}

static void reply_body(kb_msg *req, kb_body *b)
{
	if (b == NULL) {
		kb_reply_err(req, KB_EINTERNAL, "auth: out of memory");
		return;
	}
	if (kb_reply(req, b) != 0)
		kb_body_unref(b);
}

static void serve_authenticate(struct kb_auth *a, kb_msg *req)
{
	const msgpack_object *body = kb_msg_body(req);
	const msgpack_object *t = kb_mp_key(body, "token");
	if (body == NULL || body->type != MSGPACK_OBJECT_MAP) {
		kb_reply_err(req, KB_EINVAL,
		    "authenticate expects {token: str}, got %s", mp_type(body));
		return;
	}
	if (t == NULL || t->type != MSGPACK_OBJECT_STR) {
		kb_reply_err(req, KB_EINVAL,
		    "authenticate expects {token: str}; token is %s",
		    mp_type(t));
		return;
	}
	char *token = str_copy(t);
	struct kb_ident *id = NULL;
	int rc = token ? kb_auth_authenticate(a, token, kb_msg_src(req), &id) :
			 KB_EUNAUTHORIZED;
	if (token)
		kb_tokfile_wipe(token, strlen(token));
	if (rc == KB_EUNAUTHORIZED) {
		kb_reply_err(req, rc, "invalid bearer token");
		return;
	}
	if (rc != 0) {
		kb_reply_err(req, rc, "authenticate: %s", kb_strerror(rc));
		return;
	}
	reply_body(req, ident_body(id));
	kb_ident_unref(id);
}

/* The authorize request, copied out of its body. */
struct az {
	char *s[7]; /* user verb apiGroup resource subresource namespace name */
	char **groups;
	size_t ngroups;
};

static const char *const az_keys[7] = { "user", "verb", "apiGroup", "resource",
	"subresource", "namespace", "name" };
/* user, verb and resource must be there; the rest may be absent or nil. */
static const bool az_required[7] = { true, true, false, true };

static void az_free(struct az *q)
{
	for (int i = 0; i < 7; i++)
		free(q->s[i]);
	for (size_t i = 0; i < q->ngroups; i++)
		free(q->groups[i]);
	free(q->groups);
}

/* NULL, or what is wrong, written to `why`. */
static const char *az_read_groups(struct az *q, const msgpack_object *o,
    char *why, size_t cap)
{
	if (o == NULL || o->type == MSGPACK_OBJECT_NIL)
		return NULL;
	if (o->type != MSGPACK_OBJECT_ARRAY) {
		snprintf(why, cap,
		    "`groups` must be an array of strings, "
		    "got %s",
		    mp_type(o));
		return why;
	}
	q->groups = calloc(o->via.array.size + 1, sizeof(char *));
	if (q->groups == NULL)
		return "out of memory";
	for (uint32_t i = 0; i < o->via.array.size; i++) {
		q->groups[i] = str_copy(&o->via.array.ptr[i]);
		if (q->groups[i] == NULL) {
			snprintf(why, cap,
			    "`groups[%u]` must be a string, "
			    "got %s",
			    i, mp_type(&o->via.array.ptr[i]));
			return why;
		}
		q->ngroups = i + 1;
	}
	return NULL;
}

static const char *az_read(struct az *q, const msgpack_object *body, char *why,
    size_t cap)
{
	if (body == NULL || body->type != MSGPACK_OBJECT_MAP) {
		snprintf(why, cap, "got %s", mp_type(body));
		return why;
	}
	for (int i = 0; i < 7; i++) {
		const msgpack_object *o = kb_mp_key(body, az_keys[i]);
		bool absent = o == NULL || o->type == MSGPACK_OBJECT_NIL;
		if (absent && !az_required[i])
			continue;
		q->s[i] = str_copy(o);
		if (q->s[i] == NULL || (az_required[i] && i > 0 && !*q->s[i])) {
			snprintf(why, cap, "`%s` must be a%s string, got %s",
			    az_keys[i],
			    i > 0 && az_required[i] ? " non-empty" : "",
			    mp_type(o));
			return why;
		}
	}
	return az_read_groups(q, kb_mp_key(body, "groups"), why, cap);
}

static void serve_authorize(struct kb_auth *a, kb_msg *req)
{
	struct az q = { 0 };
	char why[256], reason[1024];
	if (az_read(&q, kb_msg_body(req), why, sizeof(why))) {
		kb_reply_err(req, KB_EINVAL,
		    "authorize expects {user, groups, verb, apiGroup, "
		    "resource, subresource, namespace, name}: %s",
		    why);
		goto out;
	}
	bool ok = kb_auth_authorize(a, q.s[0], (const char *const *)q.groups,
	    q.ngroups, q.s[1], q.s[2], q.s[3], q.s[4], q.s[5], q.s[6], reason,
	    sizeof(reason));
	reply_body(req,
	    kb_mp_body("{s:b, s:s}", "allowed", (int)ok, "reason", reason));
out:
	az_free(&q);
}

void kb_auth_serve(void *auth, kb_msg *req)
{
	const char *op = kb_msg_op(req);
	if (strcmp(op, "authenticate") == 0)
		serve_authenticate(auth, req);
	else if (strcmp(op, "authorize") == 0)
		serve_authorize(auth, req);
	else
		kb_reply_err(req, KB_EBADREQUEST,
		    "the auth service has no op `%s`; expected authenticate "
		    "or authorize",
		    op);
}
