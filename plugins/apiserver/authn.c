/* plugins/apiserver/authn.c — who is calling, and may they.
 *
 * Both questions go to the core's `auth` service, so the API server and the
 * bus share one token file and one rule set. Answers are cached for a few
 * seconds: kubectl sends a burst of requests per command, and a revoked
 * token stops working within the cache's lifetime.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "azcache.h"
#include "busapi.h"
#include "http.h"
#include "server.h"

#define CACHE_SLOTS 256
#define CACHE_SECONDS 10

struct tok_entry {
	unsigned char digest[SHA256_DIGEST_LENGTH];
	time_t at;
	struct api_user user;
};

static pthread_mutex_t tok_mu = PTHREAD_MUTEX_INITIALIZER;
static struct tok_entry tok_cache[CACHE_SLOTS];

void api_user_free(struct api_user *u)
{
	if (u == NULL)
		return;
	free(u->name);
	free(u->uid);
	for (size_t i = 0; u->groups && i < u->ngroups; i++)
		free(u->groups[i]);
	free(u->groups);
	memset(u, 0, sizeof(*u));
}

void api_user_copy(struct api_user *dst, const struct api_user *src)
{
	dst->name = strdup(src->name ? src->name : "");
	dst->uid = strdup(src->uid ? src->uid : "");
	dst->ngroups = src->ngroups;
	dst->groups = calloc(src->ngroups + 1, sizeof(char *));
	for (size_t i = 0; dst->groups && i < src->ngroups; i++)
		dst->groups[i] = strdup(src->groups[i]);
}

static bool cache_lookup(const unsigned char *d, struct api_user *out, time_t *at)
{
	bool hit = false;
	pthread_mutex_lock(&tok_mu);
	struct tok_entry *t = &tok_cache[d[0] % CACHE_SLOTS];
	if (t->user.name && time(NULL) - t->at < CACHE_SECONDS &&
	    memcmp(t->digest, d, sizeof(t->digest)) == 0) {
		api_user_copy(out, &t->user);
		*at = t->at;
		hit = true;
	}
	pthread_mutex_unlock(&tok_mu);
	return hit;
}

/* The cache lives in the plugin's static storage: free what it holds when
 * the plugin is unloaded, or it leaks with the mapping. */
__attribute__((destructor)) static void tok_cache_free(void)
{
	pthread_mutex_lock(&tok_mu);
	for (size_t i = 0; i < CACHE_SLOTS; i++)
		api_user_free(&tok_cache[i].user);
	pthread_mutex_unlock(&tok_mu);
}

static void cache_store(const unsigned char *d, const struct api_user *u, time_t at)
{
	pthread_mutex_lock(&tok_mu);
	struct tok_entry *t = &tok_cache[d[0] % CACHE_SLOTS];
	api_user_free(&t->user);
	memcpy(t->digest, d, sizeof(t->digest));
	t->at = at;
	api_user_copy(&t->user, u);
	pthread_mutex_unlock(&tok_mu);
}

/* SHA-256, fetched once while an HTTP front runs: SHA256() fetches the
 * algorithm from OpenSSL's provider store on every call, under a lock all
 * request threads share, which cost more than the hash itself. Held and
 * released by api_http_start and api_http_stop, so it is freed before
 * OpenSSL's own cleanup at exit. */
static pthread_mutex_t md_mu = PTHREAD_MUTEX_INITIALIZER;
static EVP_MD *md_sha256;
static int md_users;

void api_authn_hold(void)
{
	pthread_mutex_lock(&md_mu);
	if (md_users++ == 0)
		md_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	pthread_mutex_unlock(&md_mu);
}

void api_authn_release(void)
{
	pthread_mutex_lock(&md_mu);
	if (md_users > 0 && --md_users == 0) {
		EVP_MD_free(md_sha256);
		md_sha256 = NULL;
	}
	pthread_mutex_unlock(&md_mu);
}

static void token_digest(const char *token, unsigned char *d)
{
	size_t n = strlen(token);
	/* A reference of our own: another front may release it meanwhile. */
	pthread_mutex_lock(&md_mu);
	EVP_MD *md = md_sha256;
	if (md && !EVP_MD_up_ref(md))
		md = NULL;
	pthread_mutex_unlock(&md_mu);
	unsigned dl = 0;
	if (md == NULL || !EVP_Digest(token, n, d, &dl, md, NULL) ||
	    dl != SHA256_DIGEST_LENGTH)
		SHA256((const unsigned char *)token, n, d);
	EVP_MD_free(md);
}

int api_authenticate_until(struct api_server *s, const char *token,
    struct api_user *out, time_t *until)
{
	unsigned char d[SHA256_DIGEST_LENGTH];
	time_t at = 0;
	memset(out, 0, sizeof(*out));
	if (token == NULL || !*token)
		return KB_EUNAUTHORIZED;
	token_digest(token, d);
	if (cache_lookup(d, out, &at)) {
		if (until)
			*until = at + CACHE_SECONDS;
		return 0;
	}
	at = time(NULL);
	kb_msg *rep = NULL;
	int rc = api_call(s->ctx, "auth", "authenticate", kb_mp_body("{s:s}", "token", token),
	    (int)s->request_timeout_ms, &rep);
	if (rc == 0) {
		const msgpack_object *b = kb_msg_body(rep);
		const msgpack_object *g = kb_mp_key(b, "groups");
		out->name = kb_mp_strdup(b, "user");
		out->uid = kb_mp_strdup(b, "uid");
		if (out->uid == NULL)
			out->uid = strdup("");
		size_t n = g && g->type == MSGPACK_OBJECT_ARRAY ? g->via.array.size : 0;
		out->groups = calloc(n + 1, sizeof(char *));
		for (size_t i = 0; out->groups && i < n; i++)
			if ((out->groups[out->ngroups] = kb_mp_strdup(&g->via.array.ptr[i], NULL)))
				out->ngroups++;
		if (out->name == NULL) {
			api_user_free(out);
			rc = KB_EUNAUTHORIZED;
		} else {
			cache_store(d, out, at);
			if (until)
				*until = at + CACHE_SECONDS;
		}
	}
	kb_msg_free(rep);
	return rc == 0 ? 0 : KB_EUNAUTHORIZED;
}

int api_authenticate(struct api_server *s, const char *token, struct api_user *out)
{
	return api_authenticate_until(s, token, out, NULL);
}

/* The Node authorizer: a kubelet (node:<name>) reads what it needs and
 * writes only what is its own — its Node and Lease, pods bound to it and
 * their status, events. */
static bool node_allows(const struct api_user *u, const char *verb, const char *resource,
    const char *sub, const char *ns, const char *name, bool *decided)
{
	*decided = false;
	if (strncmp(u->name, "node:", 5) != 0)
		return false;
	const char *node = u->name + 5;
	bool read = !strcmp(verb, "get") || !strcmp(verb, "list") || !strcmp(verb, "watch");
	*decided = true;
	if (!strcmp(resource, "nodes") || !strcmp(resource, "leases")) {
		if (read)
			return true;
		if (!strcmp(resource, "leases") && (!ns || strcmp(ns, "kube-node-lease")))
			return false;
		return name == NULL ? !strcmp(verb, "create") : !strcmp(name, node);
	}
	if (!strcmp(resource, "pods")) {
		/* Which node a pod is on is checked by the verb's handler
		 * when it matters (status); reads are broad, as Kubernetes'
		 * Node authorizer allows with its field selector. */
		if (read || (sub && !strcmp(sub, "status")))
			return true;
		return !strcmp(verb, "delete") || !strcmp(verb, "create");
	}
	if (!strcmp(resource, "events"))
		return true;
	if (read && (!strcmp(resource, "configmaps") || !strcmp(resource, "secrets") ||
	        !strcmp(resource, "services") || !strcmp(resource, "endpoints") ||
	        !strcmp(resource, "endpointslices") || !strcmp(resource, "namespaces")))
		return true;
	return false;
}

/* Decisions are cached (azcache.h): this saves the bus round trip to
 * `auth` on nearly every request. */

/* The question as one string, in buf when it fits (else malloc'd; NULL
 * when out of memory). */
static char *az_key(char *buf, size_t cap, const struct api_user *u, const char *verb,
    const char *group, const char *resource, const char *sub, const char *ns,
    const char *name)
{
	const char *parts[] = { verb, group, resource, sub, ns, name };
	size_t n = strlen(u->name) + 1;
	for (size_t i = 0; i < u->ngroups; i++)
		n += strlen(u->groups[i]) + 1;
	for (size_t i = 0; i < 6; i++)
		n += (parts[i] ? strlen(parts[i]) : 1) + 1;
	char *k = n <= cap ? buf : malloc(n), *p = k;
	if (k == NULL)
		return NULL;
	/* '\x1f' separates fields: it appears in none of them. */
	size_t l = strlen(u->name);
	memcpy(p, u->name, l);
	p += l;
	for (size_t i = 0; i < u->ngroups; i++) {
		*p++ = '\x1e';
		l = strlen(u->groups[i]);
		memcpy(p, u->groups[i], l);
		p += l;
	}
	for (size_t i = 0; i < 6; i++) {
		const char *v = parts[i] ? parts[i] : "\x1d";
		*p++ = '\x1f';
		l = strlen(v);
		memcpy(p, v, l);
		p += l;
	}
	*p = '\0';
	return k;
}

/* The authorizer's answer, through the decision cache; *answered false
 * when the authorizer could not be asked. */
static bool ask(struct api_server *s, const struct api_user *u, const char *verb,
    const char *group, const char *resource, const char *sub, const char *ns,
    const char *name, char *reason, size_t rlen, bool *answered)
{
	char buf[512];
	char *key = az_key(buf, sizeof(buf), u, verb, group, resource, sub, ns, name);
	bool cached;
	*answered = true;
	if (key && api_az_lookup(key, &cached, reason, rlen)) {
		if (key != buf)
			free(key);
		return cached;
	}
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 8);
	kb_mp_pack(&pk, "s:s, s:", "user", u->name, "groups");
	msgpack_pack_array(&pk, u->ngroups);
	for (size_t i = 0; i < u->ngroups; i++)
		kb_mp_pack_cstr(&pk, u->groups[i]);
	kb_mp_pack(&pk, "s:s, s:s, s:s, s:s, s:s, s:s", "verb", verb, "apiGroup", group ? group : "",
	    "resource", resource ? resource : "", "subresource", sub, "namespace", ns, "name", name);
	kb_body *b = kb_body_from_sbuf(&sb);
	msgpack_sbuffer_destroy(&sb);
	kb_msg *rep = NULL;
	int rc = api_call(s->ctx, "auth", "authorize", b, (int)s->request_timeout_ms, &rep);
	bool allowed = false;
	if (rc == 0) {
		kb_mp_bool(kb_msg_body(rep), "allowed", &allowed);
		const char *why;
		size_t wl;
		if (!allowed && kb_mp_str(kb_msg_body(rep), "reason", &why, &wl))
			snprintf(reason, rlen, "%.*s", (int)wl, why);
		else if (allowed && rlen)
			reason[0] = '\0';
		/* Only answers are remembered, never a failure to get one. */
		if (key)
			api_az_store(key, allowed, reason);
	} else {
		snprintf(reason, rlen, "the authorizer did not answer: %s", kb_strerror(rc));
		*answered = false;
	}
	if (key != buf)
		free(key);
	kb_msg_free(rep);
	return allowed;
}

bool api_authorize(struct api_server *s, const struct api_user *u, const char *verb,
    const char *group, const char *resource, const char *sub, const char *ns,
    const char *name, char *reason, size_t rlen)
{
	bool decided;
	if (u == NULL || u->name == NULL) {
		snprintf(reason, rlen, "no user");
		return false;
	}
	bool node = node_allows(u, verb, resource, sub, ns, name, &decided);
	if (decided && node)
		return true;
	/* A node's own Node and Lease are all it may change of those: the
	 * Node authorizer's no is final there (RBAC's system:nodes rules
	 * would otherwise let one kubelet change another's Node). */
	if (decided && resource != NULL &&
	    (!strcmp(resource, "nodes") || !strcmp(resource, "leases"))) {
		snprintf(reason, rlen, "node \"%s\" may only change its own %s",
		    u->name + 5, resource);
		return false;
	}
	/* The rules only allow (a request is allowed when one rule matches
	 * it), and a rule matches the question without a name only when it
	 * allows every name (no `names`, or "*" with no "!" exclusion). So a
	 * yes without the name is a yes for every name: one cached decision
	 * per (user, verb, resource, namespace) rather than one per object,
	 * which a controller touching thousands of pods would always miss.
	 * A no says nothing about this name: ask with it (unless the
	 * authorizer did not answer at all: it would not now either). */
	bool answered;
	if (name != NULL) {
		if (ask(s, u, verb, group, resource, sub, ns, NULL, reason, rlen, &answered))
			return true;
		if (!answered)
			return false;
	}
	return ask(s, u, verb, group, resource, sub, ns, name, reason, rlen, &answered);
}
