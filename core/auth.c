/* core/auth.c — who a peer is (tokens) and what it may do (bus ACL, RBAC).
 *
 * One lock guards the token tables and both rule sets: checks take it for
 * reading on every message, so writers (a token file reload, a policy
 * load) build their new tables first and only swap them in under it.
 * Tokens are kept as SHA-256 digests: the plain text lives only in the
 * file and, briefly, in the buffer that parses it.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <kubus/strmap.h>
#include <openssl/crypto.h>

#include "auth.h"
#include "log.h"
#include "tokens.h"

#define AUTHENTICATED "system:authenticated"
#define RELOAD_EVERY_NS 1000000000LL /* how often to stat the token file */

/* The built-in policy and RBAC that core/auth.h spells out, read by the
 * same code as config. */
static const char defaults_yaml[] =
    "policy:\n"
    "  - groups: [\"kubus:plugins\", \"system:nodes\"]\n"
    "    call: [\"*\", \"!store\"]\n"
    "    publish: [\"*\", \"!store/*\"]\n"
    "    subscribe: [\"*\", \"!store/*\"]\n"
    "  - groups: [\"kubus:kind:frontend\"]\n"
    "    call: [store]\n"
    "    publish: [\"store/*\"]\n"
    "    subscribe: [\"store/*\"]\n"
    "  - {groups: [\"kubus:kind:store\"], publish: [\"store/*\"]}\n"
    "  - {groups: [\"system:bootstrappers\"], call: [join], ops: [csr]}\n"
    "  - groups: [\"system:masters\"]\n"
    "    call: [\"*\"]\n"
    "    publish: [\"*\"]\n"
    "    subscribe: [\"*\"]\n"
    "rbac:\n"
    "  - groups: [\"system:masters\", \"kubus:plugins\"]\n"
    "    verbs: [\"*\"]\n"
    "    apiGroups: [\"*\"]\n"
    "    resources: [\"*\"]\n"
    "  - groups: [\"system:nodes\"]\n" /* nodes/status: a kubelet's own */
    "    verbs: [\"*\"]\n"
    "    apiGroups: [\"*\"]\n"
    "    resources: [nodes, nodes/status, leases, pods, pods/status,\n"
    "      events, configmaps, secrets, services, endpoints,\n"
    "      endpointslices]\n";

/* ACL and RBAC rules share one shape: NULL-terminated pattern lists as
 * written, "!" included; NULL when the key is absent. */
struct rule {
	char **users, **groups;
	char **call, **ops, **publish, **subscribe;
	char **verbs, **api_groups, **resources, **namespaces, **names;
};

struct rules {
	const struct kb_opt *opts; /* the keys its rules have */
	struct rule *v;
	size_t n;
};

struct tok {
	unsigned char sum[KB_SUM_LEN];
	int line;            /* in the token file; 0 for in-memory tokens */
	struct kb_ident *id; /* endpoint ""; groups end with authenticated */
};

struct toktab {
	struct tok *v;
	size_t n;
};

/* What tells versions of the token file apart; mtime alone misses a
 * rename within the same tick and a chmod. */
struct stamp {
	long long v[7];
};
#define STAMP(st)                                                              \
	((struct stamp){ { (long long)(st).st_dev, (long long)(st).st_ino,     \
	    (st).st_size, (st).st_mtim.tv_sec, (st).st_mtim.tv_nsec,           \
	    (st).st_ctim.tv_sec, (st).st_ctim.tv_nsec } })

struct kb_auth {
	pthread_rwlock_t lock; /* tok, rules */
	struct toktab tok[2];  /* from the file, in memory */
	struct rules rules[2]; /* bus ACL, RBAC */
	kb_conf *defaults;
	pthread_mutex_t reload_mu; /* path, stamp */
	char *path;
	struct stamp stamp;      /* the file's version; all 0: no file */
	atomic_llong next_check; /* kb_now_ns(); LLONG_MAX: no file */
	/* The bus ACL's version, unique in the process (policy_versions),
	 * set with each new policy under the write lock: the key of the
	 * publication decisions remembered (pub_memo). */
	atomic_ullong version;
};

static atomic_ullong policy_versions;

/* --- patterns ------------------------------------------------------------ */

bool kb_auth_glob(const char *p, const char *s)
{
	size_t n = strlen(p);
	if (p[0] == '*' && p[1] == '/') { /* "*\/status": of any resource */
		const char *slash = strchr(s, '/');
		return slash && strcmp(slash + 1, p + 2) == 0;
	}
	return n > 0 && p[n - 1] == '*' ? strncmp(p, s, n - 1) == 0 :
					  strcmp(p, s) == 0;
}

/* The one list matcher: -1 when a "!" entry matches `s`, else 1 when
 * another entry does, else 0. */
static int judge(char *const *list, const char *s)
{
	int r = 0;
	for (; list && *list; list++)
		if (**list == '!' && kb_auth_glob(*list + 1, s))
			return -1;
		else if (**list != '!' && kb_auth_glob(*list, s))
			r = 1;
	return r;
}

/* Does the list allow every name `pattern` (exact or "prefix*") matches?
 * "*" is not allowed by ["*", "!store/\*"]: it reaches store topics too. */
static bool covers(char *const *list, const char *pattern)
{
	size_t n = strlen(pattern);
	bool hit = false;
	if (n == 0 || pattern[--n] != '*')
		return judge(list, pattern) > 0;
	for (; list && *list; list++) {
		const char *p = *list + (**list == '!');
		size_t k = strlen(p);
		bool star = k > 0 && p[k - 1] == '*';
		k -= star;
		if (**list == '!' &&
		    !strncmp(pattern, p, star && k < n ? k : n))
			return false;
		hit |= **list != '!' && star && k <= n &&
		    !strncmp(pattern, p, k);
	}
	return hit;
}

/* An empty list allows everything; a NULL name (a collection, the cluster
 * scope) only a list that allows every name. */
static bool all_or(char *const *list, const char *s)
{
	return list == NULL || *list == NULL ||
	    (s ? judge(list, s) > 0 : covers(list, "*"));
}

/* The rule names the principal by user or by a group, and no "!" entry
 * excludes the user or any of its groups. */
static bool names(const struct rule *r, const char *user,
    const char *const *groups, size_t ngroups)
{
	int v = judge(r->users, user ? user : ""), hit = v > 0;
	for (size_t i = 0; v >= 0 && i < ngroups; i++)
		hit |= (v = judge(r->groups, groups[i])) > 0;
	return v >= 0 && hit;
}

/* --- rules from config --------------------------------------------------- */

#define OPT(k, f) KB_OPT_STRLIST(k, struct rule, f, NULL)
#define REQ(k, f, def)                                                         \
	KB_OPT_(k, KB_OPT_STRLIST_, struct rule, f, def, false, 0, 0, NULL)

static const struct kb_opt acl_opts[] = { OPT("users", users),
	OPT("groups", groups), OPT("call", call),
	REQ("ops", ops, "*"), /* absent: every op of `call` */
	OPT("publish", publish), OPT("subscribe", subscribe), KB_OPT_END };

static const struct kb_opt rbac_opts[] = { OPT("users", users),
	OPT("groups", groups), REQ("verbs", verbs, NULL),
	REQ("apiGroups", api_groups, NULL), REQ("resources", resources, NULL),
	OPT("namespaces", namespaces), OPT("names", names), KB_OPT_END };

/* "FILE:LINE:COL: what", as every config error reads (err and errlen are
 * the caller's). */
#define CONF_ERR(n, fmt, ...)                                                  \
	kb_errf(err, errlen, KB_EINVAL, "%s:%d:%d: " fmt,                      \
	    kb_conf_file(n) ? kb_conf_file(n) : "config", kb_conf_line(n),     \
	    kb_conf_col(n), __VA_ARGS__)

/* `at` is the field's offset in struct rule. */
static const char *pattern_problem(const char *s, size_t at)
{
	const char *p = s + (s[0] == '!'), *star = strchr(p, '*');
	if (p[0] == '!')
		return "only one '!' may lead a pattern";
	if (p[0] == '\0' && p != s)
		return "'!' needs a pattern after it";
	/* "" is the core API group; in namespaces, all of them */
	if (p[0] == '\0' && at != offsetof(struct rule, api_groups) &&
	    at != offsetof(struct rule, namespaces))
		return "empty pattern";
	if (at == offsetof(struct rule, resources) && p[0] == '*' &&
	    p[1] == '/')
		return p[2] == '\0' || strchr(p + 2, '*') ?
		    "\"*/\" must be followed by a subresource name" :
		    NULL;
	return star && star[1] ? "'*' may only end a pattern" : NULL;
}

/* kb_conf_opts() reads a rule's lists; the rest checks what it cannot. */
static int rule_load(struct rule *r, const kb_conf *m,
    const struct kb_opt *opts, char *err, size_t errlen)
{
	char keys[128] = "";
	const char *at = kb_conf_where(m);
	const struct kb_opt *o;
	for (o = opts; o->key; o++) { /* "users, groups, … or subscribe" */
		const char *sep = o == opts ? "" : o[1].key ? ", " : " or ";
		snprintf(keys + strlen(keys), sizeof(keys) - strlen(keys),
		    "%s%s", sep, o->key);
	}
	if (kb_conf_type(m) != KB_CONF_MAP)
		return CONF_ERR(m, "%s must be a rule: a map of %s", at, keys);
	for (size_t i = 0; i < kb_conf_len(m); i++) {
		const char *key = kb_conf_key_at(m, i);
		const kb_conf *l = kb_conf_at(m, i);
		for (o = opts; o->key && strcmp(o->key, key) != 0; o++)
			;
		if (o->key == NULL)
			return CONF_ERR(l,
			    "unknown key `%s` in %s; expected %s", key, at,
			    keys);
		if (kb_conf_type(l) != KB_CONF_SEQ)
			return CONF_ERR(l,
			    "`%s` in %s must be a list of strings, e.g. [\"*\"]",
			    key, kb_conf_where(l));
		for (size_t j = 0; j < kb_conf_len(l); j++) {
			const kb_conf *it = kb_conf_at(l, j);
			const char *p = kb_conf_str(it), *why;
			if (p == NULL)
				return CONF_ERR(it, "%s must be a string",
				    kb_conf_where(it));
			if ((why = pattern_problem(p, o->offset)) != NULL)
				return CONF_ERR(it, "`%s` in %s: %s", p,
				    kb_conf_where(l), why);
		}
	}
	for (o = opts; o->key; o++)
		if (!o->optional && !o->def && !kb_conf_get(m, o->key))
			return CONF_ERR(m, "%s needs `%s`", at, o->key);
	int rc = kb_conf_opts(m, opts, r, NULL, err, errlen);
	if (rc == 0 && !(r->users && *r->users) && !(r->groups && *r->groups))
		rc = CONF_ERR(m,
		    "%s names no users or groups, so it applies to no one", at);
	for (char **s = r->namespaces; rc == 0 && s && *s; s++) {
		char *all = **s ? NULL : realloc(*s, 2); /* "" means all */
		if (all)
			memcpy(*s = all, "*", 2);
		else if (**s == '\0')
			rc = KB_ENOMEM;
	}
	if (rc != 0)
		kb_conf_opts_free(opts, r);
	return rc;
}

static void rules_free(struct rules *rs)
{
	for (size_t i = 0; i < rs->n; i++)
		kb_conf_opts_free(rs->opts, &rs->v[i]);
	free(rs->v);
}

int kb_auth_load_policy(struct kb_auth *a, const kb_conf *policy,
    const kb_conf *rbac, char *err, size_t errlen)
{
	const kb_conf *src[2] = { policy, rbac };
	struct rules rs[2] = { { .opts = acl_opts }, { .opts = rbac_opts } };
	int rc = 0;
	for (int k = 0; rc == 0 && k < 2; k++) {
		const kb_conf *l = kb_conf_type(src[k]) != KB_CONF_NULL ?
		    src[k] :
		    kb_conf_get(a->defaults, k ? "rbac" : "policy");
		size_t n = kb_conf_len(l);
		if (kb_conf_type(l) != KB_CONF_SEQ)
			rc = CONF_ERR(l, "%s must be a list of rules",
			    kb_conf_where(l));
		else if ((rs[k].v = calloc(n + 1, sizeof(*rs[k].v))) == NULL)
			rc = KB_ENOMEM;
		for (; rc == 0 && rs[k].n < n; rs[k].n += rc == 0)
			rc = rule_load(&rs[k].v[rs[k].n],
			    kb_conf_at(l, rs[k].n), rs[k].opts, err, errlen);
	}
	if (rc == KB_ENOMEM)
		kb_errf_(err, errlen, "out of memory loading the auth policy");
	if (rc == 0) {
		pthread_rwlock_wrlock(&a->lock);
		for (int k = 0; k < 2; k++) {
			struct rules old = a->rules[k];
			a->rules[k] = rs[k];
			rs[k] = old;
		}
		atomic_store(&a->version,
		    atomic_fetch_add(&policy_versions, 1) + 1);
		pthread_rwlock_unlock(&a->lock);
	}
	rules_free(&rs[0]);
	rules_free(&rs[1]);
	return rc;
}

/* --- checks -------------------------------------------------------------- */

/* what: 'c'all, 'p'ublish or 's'ubscribe. */
static bool acl_allows(struct kb_auth *a, const struct kb_ident *who, char what,
    const char *s, const char *op)
{
	bool ok = false;
	if (a == NULL || who == NULL || s == NULL)
		return false;
	pthread_rwlock_rdlock(&a->lock);
	for (size_t i = 0; !ok && i < a->rules[0].n; i++) {
		const struct rule *r = &a->rules[0].v[i];
		if (!names(r, who->user, (const char *const *)who->groups,
			who->ngroups))
			continue;
		if (what == 'c')
			ok = judge(r->call, s) > 0 &&
			    judge(r->ops, op ? op : "") > 0;
		else if (what == 'p')
			ok = judge(r->publish, s) > 0;
		else
			ok = covers(r->subscribe, s);
	}
	pthread_rwlock_unlock(&a->lock);
	return ok;
}

bool kb_auth_may_call(struct kb_auth *a, const struct kb_ident *who,
    const char *service, const char *op)
{
	return acl_allows(a, who, 'c', service, op);
}

/* Publication decisions this thread made, by policy version, identity
 * serial and topic: a fan-out publishes every event of a resource to the
 * same few topics as the same sender, and the answer can only change with
 * the policy (a new version) or the identity (a new serial). */
#define PUB_MEMO 32
static _Thread_local struct {
	unsigned long long version; /* 0: empty */
	uint64_t serial;
	bool ok;
	char topic[112];
} pub_memo[PUB_MEMO];

bool kb_auth_may_publish(struct kb_auth *a, const struct kb_ident *who,
    const char *topic)
{
	if (a == NULL || who == NULL || topic == NULL)
		return false;
	size_t n = strlen(topic);
	if (who->serial == 0 || n >= sizeof(pub_memo[0].topic))
		return acl_allows(a, who, 'p', topic, NULL);
	/* Read before the decision: a policy loaded meanwhile has a newer
	 * version, so what is remembered here is never taken for it. */
	unsigned long long v = atomic_load(&a->version);
	uint64_t h = (kb_hash64(topic, n) ^ who->serial) * 0x9e3779b97f4a7c15ull;
	size_t i = (size_t)(h >> 59) % PUB_MEMO;
	if (pub_memo[i].version == v && pub_memo[i].serial == who->serial &&
	    memcmp(pub_memo[i].topic, topic, n + 1) == 0)
		return pub_memo[i].ok;
	bool ok = acl_allows(a, who, 'p', topic, NULL);
	pub_memo[i].version = v;
	pub_memo[i].serial = who->serial;
	pub_memo[i].ok = ok;
	memcpy(pub_memo[i].topic, topic, n + 1);
	return ok;
}

bool kb_auth_may_subscribe(struct kb_auth *a, const struct kb_ident *who,
    const char *pattern)
{
	return acl_allows(a, who, 's', pattern, NULL);
}

/* `s` quoted as Go's %q does, as kube-apiserver's messages have it. */
static const char *goq(char *q, size_t cap, const char *s)
{
	size_t n = 1;
	for (q[0] = '"'; *s && n + 5 < cap; s++) {
		unsigned char c = (unsigned char)*s;
		n += (size_t)snprintf(q + n, cap - n,
		    c == '"' || c == '\\'     ? "\\%c" :
			c < 0x20 || c == 0x7f ? "\\x%02x" :
						"%c",
		    c);
	}
	snprintf(q + n, cap - n, "\"");
	return q;
}

bool kb_auth_authorize(struct kb_auth *a, const char *user,
    const char *const *groups, size_t ngroups, const char *verb,
    const char *api_group, const char *resource, const char *subresource,
    const char *namespace_, const char *name, char *reason, size_t reasonlen)
{
	char full[512], q[4][1024];
	const char *ns = namespace_ ? namespace_ : "";
	user = user ? user : "";
	verb = verb ? verb : "";
	api_group = api_group ? api_group : "";
	int k = snprintf(full, sizeof(full), "%s%s%s", resource ? resource : "",
	    subresource && *subresource ? "/" : "",
	    subresource ? subresource : "");
	bool ok = false;
	/* A truncated name could match a rule meant for a shorter one. */
	if (a && k >= 0 && (size_t)k < sizeof(full)) {
		pthread_rwlock_rdlock(&a->lock);
		for (size_t i = 0; !ok && i < a->rules[1].n; i++) {
			const struct rule *r = &a->rules[1].v[i];
			ok = names(r, user, groups, groups ? ngroups : 0) &&
			    judge(r->verbs, verb) > 0 &&
			    judge(r->api_groups, api_group) > 0 &&
			    judge(r->resources, full) > 0 &&
			    all_or(r->namespaces, *ns ? ns : NULL) &&
			    all_or(r->names, name);
		}
		pthread_rwlock_unlock(&a->lock);
	}
	if (reason && reasonlen > 0 && ok)
		reason[0] = '\0';
	else if (reason && reasonlen > 0)
		snprintf(reason, reasonlen,
		    "User %s cannot %s resource %s in API group %s%s%s",
		    goq(q[0], sizeof(q[0]), user), verb,
		    goq(q[1], sizeof(q[1]), full),
		    goq(q[2], sizeof(q[2]), api_group),
		    *ns ? " in the namespace " : " at the cluster scope",
		    *ns ? goq(q[3], sizeof(q[3]), ns) : "");
	return ok;
}

/* --- tokens -------------------------------------------------------------- */

static void toktab_free(struct toktab *t)
{
	for (size_t i = 0; i < t->n; i++)
		kb_ident_unref(t->v[i].id);
	free(t->v);
	*t = (struct toktab){ 0 };
}

/* Groups from `groups` and the tidy `csv` (split in place), without
 * duplicates, system:authenticated last. */
static int tok_add(struct toktab *t, const char *token, const char *user,
    const char *uid, const char *const *groups, size_t n, char *csv, int line)
{
	size_t m = 0, cap = n + 2;
	for (const char *c = csv; c && *c; c++)
		cap += *c == ',';
	const char **v = malloc(cap * sizeof(*v));
	struct tok *k = v ? realloc(t->v, (t->n + 1) * sizeof(*k)) : NULL;
	if (k == NULL) {
		free(v);
		return KB_ENOMEM;
	}
	t->v = k;
	for (size_t i = 0; i < n; i++)
		v[i] = groups[i];
	for (char *s = csv; s && *s;) {
		v[n++] = s;
		s += strcspn(s, ",");
		if (*s)
			*s++ = '\0';
	}
	v[n++] = AUTHENTICATED;
	for (size_t i = 0, j; i < n; i++) {
		for (j = 0; j < m && strcmp(v[j], v[i]) != 0; j++)
			;
		if (j == m)
			v[m++] = v[i];
	}
	k = &t->v[t->n];
	*k = (struct tok){ .line = line,
		.id = kb_ident_new("", user, uid, v, m) };
	kb_token_sum(token, k->sum);
	free(v);
	t->n += k->id != NULL;
	return k->id ? 0 : KB_ENOMEM;
}

static int tok_line(void *t, struct kb_tokline *l, const char **why)
{
	if (l->f[0] &&
	    tok_add(t, l->f[0], l->f[1], l->f[2], NULL, 0,
		kb_tokfile_groups(l->f[3]), l->no) != 0) {
		*why = "out of memory";
		return KB_ENOMEM;
	}
	return 0;
}

static int tok_cmp(const void *x, const void *y)
{
	const struct tok *a = x, *b = y;
	int c = memcmp(a->sum, b->sum, KB_SUM_LEN);
	return c ? c : a->line - b->line;
}

/* Read the token file and swap its tokens in; under reload_mu. A missing
 * file is an empty set; one token naming two users is a mistake to
 * refuse, not to guess at. */
static int reload(struct kb_auth *a, const char *path, char *err, size_t errlen)
{
	struct toktab t = { 0 };
	struct stat st = { 0 }; /* stays 0 when there is no file */
	int rc = kb_tokfile_load(path, tok_line, &t, &st, err, errlen);
	if (rc == 0 && t.n > 1)
		qsort(t.v, t.n, sizeof(*t.v), tok_cmp);
	for (size_t i = 1; rc == 0 && i < t.n; i++)
		if (memcmp(t.v[i - 1].sum, t.v[i].sum, KB_SUM_LEN) == 0)
			rc = kb_errf(err, errlen, KB_EINVAL,
			    "%s:%d: same token as on line %d", path,
			    t.v[i].line, t.v[i - 1].line);
	if (rc != 0 && rc != KB_ENOENT) {
		toktab_free(&t);
		return rc;
	}
	a->stamp = STAMP(st);
	pthread_rwlock_wrlock(&a->lock);
	struct toktab old = a->tok[0];
	a->tok[0] = t;
	pthread_rwlock_unlock(&a->lock);
	toktab_free(&old);
	return 0;
}

int kb_auth_load_tokens(struct kb_auth *a, const char *path, char *err,
    size_t errlen)
{
	if (path == NULL || *path == '\0')
		return kb_errf(err, errlen, KB_EINVAL, "no token file given");
	char *copy = strdup(path);
	if (copy == NULL)
		return KB_ENOMEM;
	pthread_mutex_lock(&a->reload_mu);
	int rc = reload(a, path, err, errlen);
	if (rc == 0) {
		free(a->path);
		a->path = copy;
		atomic_store(&a->next_check, kb_now_ns() + RELOAD_EVERY_NS);
	}
	pthread_mutex_unlock(&a->reload_mu);
	if (rc != 0)
		free(copy);
	return rc;
}

/* One thread a second pays for the stat; the others go on. A file that
 * became unreadable or malformed keeps the tokens loaded before: locking
 * every client out is worse than a late revoke, and the log says so. */
static void maybe_reload(struct kb_auth *a)
{
	long long now = kb_now_ns(), next = atomic_load(&a->next_check);
	struct stamp cur;
	struct stat st;
	char err[512], msg[640];
	if (now < next ||
	    !atomic_compare_exchange_strong(&a->next_check, &next,
		now + RELOAD_EVERY_NS))
		return;
	pthread_mutex_lock(&a->reload_mu);
	if (stat(a->path, &st) != 0)
		st = (struct stat){ 0 };
	cur = STAMP(st);
	int rc = memcmp(&cur, &a->stamp, sizeof(cur)) == 0 ?
	    -1 :
	    reload(a, a->path, err, sizeof(err));
	if (rc > 0) {
		a->stamp = cur; /* say it once a change, not every second */
		snprintf(msg, sizeof(msg),
		    "keeping the tokens loaded before: %s", err);
		kb_clog(KB_LOG_ERROR, msg, NULL);
	} else if (rc == 0) {
		kb_clog(KB_LOG_INFO, "token file reloaded", "tokens=%zu",
		    a->tok[0].n);
	}
	pthread_mutex_unlock(&a->reload_mu);
}

int kb_auth_add_token(struct kb_auth *a, const char *token, const char *user,
    const char *uid, const char *const *groups, size_t ngroups)
{
	unsigned char sum[KB_SUM_LEN];
	int rc = 0;
	if (a == NULL || token == NULL || *token == '\0' || user == NULL ||
	    *user == '\0')
		return KB_EINVAL;
	kb_token_sum(token, sum);
	pthread_rwlock_wrlock(&a->lock);
	for (size_t i = 0; i < a->tok[1].n; i++)
		if (memcmp(a->tok[1].v[i].sum, sum, KB_SUM_LEN) == 0)
			rc = KB_EEXIST;
	if (rc == 0)
		rc = tok_add(&a->tok[1], token, user, uid, groups, ngroups,
		    NULL, 0);
	pthread_rwlock_unlock(&a->lock);
	return rc;
}

int kb_auth_authenticate(struct kb_auth *a, const char *token,
    const char *endpoint, struct kb_ident **out)
{
	unsigned char sum[KB_SUM_LEN];
	const struct kb_ident *id = NULL;
	if (out)
		*out = NULL;
	if (a == NULL || token == NULL || *token == '\0' || out == NULL)
		return KB_EUNAUTHORIZED;
	maybe_reload(a);
	kb_token_sum(token, sum);
	pthread_rwlock_rdlock(&a->lock);
	/* Every digest is compared in full, with no early exit, so the time
	 * taken tells neither how close a guess came nor where it matched.
	 * An in-memory token wins over a file one. */
	for (int t = 0; t < 2; t++)
		for (size_t i = 0; i < a->tok[t].n; i++)
			if (!CRYPTO_memcmp(a->tok[t].v[i].sum, sum, KB_SUM_LEN))
				id = a->tok[t].v[i].id;
	*out = id ? kb_ident_new(endpoint, id->user, id->uid,
			(const char *const *)id->groups, id->ngroups) :
		    NULL;
	pthread_rwlock_unlock(&a->lock);
	OPENSSL_cleanse(sum, sizeof(sum));
	return id == NULL ? KB_EUNAUTHORIZED : *out ? 0 : KB_ENOMEM;
}

struct kb_auth *kb_auth_new(void)
{
	char err[256];
	struct kb_auth *a = calloc(1, sizeof(*a));
	if (a == NULL)
		return NULL;
	pthread_rwlock_init(&a->lock, NULL);
	pthread_mutex_init(&a->reload_mu, NULL);
	atomic_init(&a->next_check, LLONG_MAX);
	a->defaults = kb_conf_parse_yaml(defaults_yaml, strlen(defaults_yaml),
	    "<built-in auth defaults>", err, sizeof(err));
	if (a->defaults == NULL ||
	    kb_auth_load_policy(a, NULL, NULL, err, sizeof(err)) != 0) {
		kb_auth_free(a);
		return NULL;
	}
	return a;
}

void kb_auth_free(struct kb_auth *a)
{
	if (a == NULL)
		return;
	for (int k = 0; k < 2; k++) {
		toktab_free(&a->tok[k]);
		rules_free(&a->rules[k]);
	}
	kb_conf_free(a->defaults);
	free(a->path);
	pthread_mutex_destroy(&a->reload_mu);
	pthread_rwlock_destroy(&a->lock);
	free(a);
}

/* --- the `auth` bus service ---------------------------------------------- */

static const char *mp_type(const msgpack_object *o)
{
	static const char *const names[] = { "nil", "a bool", "an integer",
		"an integer", "a float", "a string", "an array", "a map",
		"bytes", "an extension", "a float" }; /* by msgpack type */
	return o == NULL                                     ? "nothing" :
	    (size_t)o->type < sizeof(names) / sizeof(*names) ? names[o->type] :
							       "an extension";
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

static void reply_body(kb_msg *req, kb_body *b)
{
	if (b == NULL)
		kb_reply_err(req, KB_EINTERNAL, "auth: out of memory");
	else if (kb_reply(req, b) != 0)
		kb_body_unref(b);
}

static void serve_authenticate(struct kb_auth *a, kb_msg *req)
{
	const msgpack_object *body = kb_msg_body(req);
	const msgpack_object *t = kb_mp_key(body, "token");
	char *token = str_copy(t);
	struct kb_ident *id = NULL;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	int rc = token ? kb_auth_authenticate(a, token, kb_msg_src(req), &id) :
			 KB_EUNAUTHORIZED;
	if (token)
		OPENSSL_cleanse(token, strlen(token));
	free(token);
	if (body == NULL || body->type != MSGPACK_OBJECT_MAP)
		kb_reply_err(req, KB_EINVAL,
		    "authenticate expects {token: str}, got %s", mp_type(body));
	else if (t == NULL || t->type != MSGPACK_OBJECT_STR)
		kb_reply_err(req, KB_EINVAL,
		    "authenticate expects {token: str}; token is %s",
		    mp_type(t));
	else if (rc == KB_EUNAUTHORIZED)
		kb_reply_err(req, rc, "invalid bearer token");
	else if (rc != 0)
		kb_reply_err(req, rc, "authenticate: %s", kb_strerror(rc));
	else {
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		msgpack_pack_array(&pk, id->ngroups);
		for (size_t i = 0; i < id->ngroups; i++)
			kb_mp_pack_cstr(&pk, id->groups[i]);
		reply_body(req,
		    kb_mp_body("{s:s, s:s, s:r}", "user", id->user, "uid",
			id->uid, "groups", sb.data, sb.size));
	}
	msgpack_sbuffer_destroy(&sb);
	kb_ident_unref(id);
}

/* The authorize request's strings; user, verb and resource must be there,
 * the rest may be absent or nil. */
static const char *const az_keys[7] = { "user", "verb", "apiGroup", "resource",
	"subresource", "namespace", "name" };
static const bool az_required[7] = { true, true, false, true };

/* NULL, or what is wrong with the request. */
static const char *az_read(char *s[7], char ***groups, size_t *ngroups,
    const msgpack_object *body, char *why, size_t cap)
{
	const msgpack_object *o = kb_mp_key(body, "groups");
	if (body == NULL || body->type != MSGPACK_OBJECT_MAP) {
		snprintf(why, cap, "got %s", mp_type(body));
		return why;
	}
	for (int i = 0; i < 7; i++) {
		const msgpack_object *v = kb_mp_key(body, az_keys[i]);
		if ((v == NULL || v->type == MSGPACK_OBJECT_NIL) &&
		    !az_required[i])
			continue;
		if ((s[i] = str_copy(v)) == NULL ||
		    (az_required[i] && i > 0 && !*s[i])) {
			snprintf(why, cap, "`%s` must be a%s string, got %s",
			    az_keys[i],
			    i > 0 && az_required[i] ? " non-empty" : "",
			    mp_type(v));
			return why;
		}
	}
	if (o == NULL || o->type == MSGPACK_OBJECT_NIL)
		return NULL;
	if (o->type != MSGPACK_OBJECT_ARRAY) {
		snprintf(why, cap,
		    "`groups` must be an array of strings, got %s", mp_type(o));
		return why;
	}
	if ((*groups = calloc(o->via.array.size + 1, sizeof(char *))) == NULL)
		return "out of memory";
	for (; *ngroups < o->via.array.size; (*ngroups)++)
		if (((*groups)[*ngroups] =
			    str_copy(&o->via.array.ptr[*ngroups])) == NULL) {
			snprintf(why, cap,
			    "`groups[%zu]` must be a string, got %s", *ngroups,
			    mp_type(&o->via.array.ptr[*ngroups]));
			return why;
		}
	return NULL;
}

static void serve_authorize(struct kb_auth *a, kb_msg *req)
{
	char *s[7] = { 0 }, **groups = NULL, why[256], reason[1024];
	size_t ngroups = 0;
	const char *bad =
	    az_read(s, &groups, &ngroups, kb_msg_body(req), why, sizeof(why));
	if (bad)
		kb_reply_err(req, KB_EINVAL,
		    "authorize expects {user, groups, verb, apiGroup, "
		    "resource, subresource, namespace, name}: %s",
		    bad);
	else
		reply_body(req,
		    kb_mp_body("{s:b, s:s}", "allowed",
			(int)kb_auth_authorize(a, s[0],
			    (const char *const *)groups, ngroups, s[1], s[2],
			    s[3], s[4], s[5], s[6], reason, sizeof(reason)),
			"reason", reason));
	for (int i = 0; i < 7; i++)
		free(s[i]);
	for (size_t i = 0; i < ngroups; i++)
		free(groups[i]);
	free(groups);
}

/* A new token in the token file for {user, groups}: how the API server
 * gets the admin token of the kubeconfig it writes. Frontends and masters
 * only; the token is sent once and kept only as a digest here. */
static void serve_issue(struct kb_auth *a, kb_msg *req)
{
	const msgpack_object *b = kb_msg_body(req);
	const msgpack_object *g = kb_mp_key(b, "groups");
	char *user = kb_mp_strdup(b, "user"), csv[1024] = "", token[128], err[512];
	if (!kb_msg_in_group(req, "kubus:kind:frontend") &&
	    !kb_msg_in_group(req, "system:masters")) {
		kb_reply_err(req, KB_EFORBIDDEN, "%s may not issue tokens",
		    kb_msg_principal(req));
		goto out;
	}
	if (user == NULL || !*user || a->path == NULL) {
		kb_reply_err(req, KB_EINVAL, "issue expects {user, groups}%s",
		    a->path ? "" : " and a token file");
		goto out;
	}
	for (uint32_t i = 0; g && g->type == MSGPACK_OBJECT_ARRAY && i < g->via.array.size; i++) {
		const char *s;
		size_t n, used = strlen(csv);
		if (kb_mp_str(&g->via.array.ptr[i], NULL, &s, &n))
			snprintf(csv + used, sizeof(csv) - used, "%s%.*s", used ? "," : "", (int)n, s);
	}
	int rc = kb_tokens_create(a->path, user, user, csv, token, sizeof(token), err, sizeof(err));
	if (rc) {
		kb_reply_err(req, rc, "issue: %s", err);
		goto out;
	}
	/* Read the file again at the next check, not a second later. */
	atomic_store(&a->next_check, 0);
	reply_body(req, kb_mp_body("{s:s}", "token", token));
	explicit_bzero(token, sizeof(token));
out:
	free(user);
}

void kb_auth_serve(void *auth, kb_msg *req)
{
	const char *op = kb_msg_op(req);
	if (strcmp(op, "authenticate") == 0)
		serve_authenticate(auth, req);
	else if (strcmp(op, "authorize") == 0)
		serve_authorize(auth, req);
	else if (strcmp(op, "issue") == 0)
		serve_issue(auth, req);
	else
		kb_reply_err(req, KB_EBADREQUEST,
		    "the auth service has no op `%s`; expected authenticate, "
		    "authorize or issue",
		    op);
}
