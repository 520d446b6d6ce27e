/* tests/unit/test_api_http.c — the HTTP front (plugins/apiserver/http.c):
 *
 *   - the token a connection keeps: on one keep-alive connection, requests
 *     with other tokens, a bad token and none are each answered for who
 *     they are, and a revoked token stops working within the
 *     authentication cache's lifetime (10 s) on that connection too;
 *   - the OpenAPI v3 documents' caching, as kube-apiserver answers them:
 *     an ETag on each, 304 for an If-None-Match that names it, a document
 *     asked for by its own ?hash= immutable for a year, a stale hash
 *     redirected (301) to the current one.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "auth.h"
#include "harness.h"
#include "http.h"
#include "api_http_util.h"

static size_t sink(char *p, size_t size, size_t n, void *data)
{
	(void)p;
	(void)data;
	return size * n;
}

/* GET url with this bearer token (NULL: none) on c; the HTTP code, and
 * in *fresh whether it took a new connection. */
static long get_as(CURL *c, const char *url, const char *token, long *fresh)
{
	char hdr[600];
	struct curl_slist *hs = NULL;
	if (token) {
		snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", token);
		hs = curl_slist_append(hs, hdr);
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hs);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
	long code = 0;
	*fresh = -1;
	if (curl_easy_perform(c) == CURLE_OK) {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
		curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, fresh);
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(hs);
	return code;
}

static void test_connection_token(void **state)
{
	(void)state;
	char err[1024] = "", yaml[1024], url[256], path[4200];
	int port = kbt_free_port();
	snprintf(yaml, sizeof(yaml), "plain_http: true, listen: \"127.0.0.1:%d\"",
	    port);
	struct kbt_host *h = kbt_api_host_start(yaml, err, sizeof(err));
	if (h == NULL)
		fail_msg("host: %s", err);
	snprintf(path, sizeof(path), "%s/tokens.csv", kbt_host_data_dir(h));
	char admin[128], nobody[128];
	assert_int_equal(kb_tokens_create(path, "admin2", "admin2",
			     "system:masters", admin, sizeof(admin), err,
			     sizeof(err)),
	    0);
	assert_int_equal(kb_tokens_create(path, "nobody", "nobody", "",
			     nobody, sizeof(nobody), err, sizeof(err)),
	    0);
	snprintf(url, sizeof(url),
	    "http://127.0.0.1:%d/api/v1/namespaces/default/configmaps", port);
	CURL *c = curl_easy_init();
	assert_non_null(c);
	long fresh, code = 0;
	/* The auth service looks at the token file once a second. */
	for (int i = 0; i < 40 && code != 200; i++) {
		code = get_as(c, url, admin, &fresh);
		if (code != 200)
			usleep(100 * 1000);
	}
	assert_int_equal(code, 200);
	static const struct {
		int who; /* 0 admin, 1 nobody, 2 a made-up token, 3 none */
		long code;
	} steps[] = { { 1, 403 }, { 0, 200 }, { 2, 401 }, { 0, 200 },
		{ 3, 401 }, { 0, 200 }, { 1, 403 }, { 1, 403 }, { 0, 200 } };
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		const char *tok = steps[i].who == 0 ? admin :
		    steps[i].who == 1		    ? nobody :
		    steps[i].who == 2		    ? "made-up-token-0123" :
						      NULL;
		long code = get_as(c, url, tok, &fresh);
		if (code != steps[i].code)
			fail_msg("step %zu: %ld, want %ld", i, code,
			    steps[i].code);
		assert_int_equal(fresh, 0); /* the same connection */
	}
	/* Revoked: refused within the cache's 10 s, same connection. */
	assert_int_equal(kb_tokens_revoke(path, admin, err, sizeof(err)), 0);
	int waited_ms = 0;
	for (; waited_ms < 13000; waited_ms += 250) {
		if ((code = get_as(c, url, admin, &fresh)) == 401)
			break;
		assert_int_equal(code, 200);
		assert_int_equal(fresh, 0);
		usleep(250 * 1000);
	}
	if (code != 401)
		fail_msg("a revoked token still works after %d ms", waited_ms);
	assert_int_equal(get_as(c, url, nobody, &fresh), 403);
	curl_easy_cleanup(c);
	kbt_host_stop(h);
}

/* --- the OpenAPI documents' caching ------------------------------------------ */

struct got {
	long code;
	char etag[64], cache[64], location[256];
	bool expires;
	size_t body;
	json_t *json;
	char text[1 << 17];
};

static size_t got_body(char *p, size_t size, size_t n, void *data)
{
	struct got *g = data;
	size_t k = size * n;
	if (g->body + k < sizeof(g->text)) {
		memcpy(g->text + g->body, p, k);
		g->text[g->body + k] = '\0';
	}
	g->body += k;
	return k;
}

/* "Name: value\r\n" into dst when the header is `name`. */
static void pick(const char *line, size_t n, const char *name, char *dst,
    size_t len)
{
	size_t l = strlen(name);
	if (n <= l + 1 || strncasecmp(line, name, l) || line[l] != ':')
		return;
	const char *v = line + l + 1;
	while (*v == ' ')
		v++;
	size_t vl = (size_t)(line + n - v);
	while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n'))
		vl--;
	snprintf(dst, len, "%.*s", (int)vl, v);
}

static size_t got_header(char *p, size_t size, size_t n, void *data)
{
	struct got *g = data;
	size_t k = size * n;
	pick(p, k, "ETag", g->etag, sizeof(g->etag));
	pick(p, k, "Cache-Control", g->cache, sizeof(g->cache));
	pick(p, k, "Location", g->location, sizeof(g->location));
	if (k > 8 && !strncasecmp(p, "Expires:", 8))
		g->expires = true;
	return k;
}

/* GET base+path with the token (and If-None-Match inm unless NULL),
 * not following redirects; *g filled (g->json: the body, if JSON). */
static void get_doc(CURL *c, const char *base, const char *path,
    const char *token, const char *inm, struct got *g)
{
	char url[512], auth[200], im[128];
	memset(g, 0, sizeof(*g));
	snprintf(url, sizeof(url), "%s%s", base, path);
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
	struct curl_slist *hs = curl_slist_append(NULL, auth);
	if (inm) {
		snprintf(im, sizeof(im), "If-None-Match: %s", inm);
		hs = curl_slist_append(hs, im);
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hs);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, got_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, g);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, got_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, g);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &g->code);
	curl_slist_free_all(hs);
	if (g->body && g->body < sizeof(g->text))
		g->json = json_loadb(g->text, g->body, 0, NULL);
}

static void test_openapi_cache(void **state)
{
	(void)state;
	int port;
	char token[128], base[64];
	struct kbt_host *h = http_host(&port, token);
	assert_non_null(h);
	snprintf(base, sizeof(base), "http://127.0.0.1:%d", port);
	CURL *c = curl_easy_init();
	struct got *g = malloc(sizeof(*g)), *d = malloc(sizeof(*d));
	assert_non_null(g);
	assert_non_null(d);
	/* the index: its ETag; the auth service may need a moment */
	for (int i = 0; i < 50; i++) {
		get_doc(c, base, "/openapi/v3", token, NULL, g);
		if (g->code != 401)
			break;
		json_decref(g->json);
		usleep(100 * 1000);
	}
	assert_int_equal(g->code, 200);
	assert_non_null(g->json);
	assert_true(g->etag[0] == '"');
	assert_string_equal(g->cache, "no-cache, private");
	char idx_etag[64];
	snprintf(idx_etag, sizeof(idx_etag), "%s", g->etag);
	const char *u = json_string_value(json_object_get(json_object_get(
	    json_object_get(g->json, "paths"), "apis/apps/v1"),
	    "serverRelativeURL"));
	assert_non_null(u);
	char url[256];
	snprintf(url, sizeof(url), "%s", u);
	json_decref(g->json);
	const char *hash = strstr(url, "?hash=");
	assert_non_null(hash);
	hash += 6;
	/* the document by its hash: immutable, its ETag the hash */
	get_doc(c, base, url, token, NULL, d);
	assert_int_equal(d->code, 200);
	assert_non_null(d->json);
	assert_string_equal(json_string_value(json_object_get(d->json,
				"openapi")), "3.0.0");
	json_decref(d->json);
	assert_string_equal(d->cache, "public, immutable");
	assert_true(d->expires);
	char want[64];
	snprintf(want, sizeof(want), "\"%s\"", hash);
	assert_string_equal(d->etag, want);
	/* the same with its ETag: 304, no body */
	get_doc(c, base, url, token, want, g);
	assert_int_equal(g->code, 304);
	assert_int_equal(g->body, 0);
	assert_string_equal(g->etag, want);
	/* another ETag in the list still matches; a different one does not */
	char list[160];
	snprintf(list, sizeof(list), "\"0\", W/%s", want);
	get_doc(c, base, url, token, list, g);
	assert_int_equal(g->code, 304);
	get_doc(c, base, url, token, "\"0123\"", g);
	assert_int_equal(g->code, 200);
	json_decref(g->json);
	/* a stale hash: sent to the current one */
	get_doc(c, base, "/openapi/v3/apis/apps/v1?hash=0000000000000000",
	    token, NULL, g);
	assert_int_equal(g->code, 301);
	assert_string_equal(g->location, url);
	json_decref(g->json);
	/* no hash: the document, not cacheable for long */
	get_doc(c, base, "/openapi/v3/apis/apps/v1", token, NULL, g);
	assert_int_equal(g->code, 200);
	assert_string_equal(g->cache, "no-cache, private");
	assert_false(g->expires);
	assert_string_equal(g->etag, want);
	json_decref(g->json);
	/* the index revalidated by its ETag */
	get_doc(c, base, "/openapi/v3", token, idx_etag, g);
	assert_int_equal(g->code, 304);
	/* other answers carry no ETag */
	get_doc(c, base, "/api/v1/namespaces", token, NULL, g);
	assert_int_equal(g->code, 200);
	assert_string_equal(g->etag, "");
	json_decref(g->json);
	free(g);
	free(d);
	curl_easy_cleanup(c);
	kbt_host_stop(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_connection_token),
		cmocka_unit_test(test_openapi_cache),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
