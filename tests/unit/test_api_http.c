/* tests/unit/test_api_http.c — the HTTP front (plugins/apiserver/http.c):
 *
 *   - its JSON writer (api_http_json) gives the very bytes
 *     json_dumps(JSON_COMPACT | JSON_ENCODE_ANY) gives: every ASCII byte,
 *     UTF-8 valid and not, numbers, nesting, key order, random trees;
 *   - the token a connection keeps: on one keep-alive connection, requests
 *     with other tokens, a bad token and none are each answered for who
 *     they are, and a revoked token stops working within the
 *     authentication cache's lifetime (10 s) on that connection too.
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

#include "auth.h"
#include "harness.h"
#include "http.h"

/* api_http_json(j) is json_dumps(j) followed by tail, or both NULL. */
static void same(const json_t *j, const char *tail)
{
	char *want = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
	size_t len = 12345;
	char *got = api_http_json(j, &len, tail);
	if (want == NULL) {
		if (got != NULL)
			fail_msg("jansson gives NULL, api_http_json gives %s",
			    got);
		free(got);
		return;
	}
	if (got == NULL)
		fail_msg("api_http_json gives NULL, jansson gives %s", want);
	size_t wl = strlen(want), tl = tail ? strlen(tail) : 0;
	assert_int_equal(len, wl + tl);
	if (memcmp(got, want, wl) || memcmp(got + wl, tail ? tail : "", tl + 1))
		fail_msg("got  %s\nwant %s", got, want);
	free(got);
	free(want);
}

static void same_new(json_t *j)
{
	assert_non_null(j);
	same(j, NULL);
	same(j, "\n");
	json_decref(j);
}

static void test_ascii(void **state)
{
	(void)state;
	for (int c = 0; c < 0x80; c++) {
		char s[4] = { 'a', (char)c, 'b', 0 };
		same_new(json_stringn(s, 3));
		json_t *o = json_object();
		json_object_setn_new(o, s, 3, json_integer(c));
		same_new(o);
	}
	same_new(json_string(""));
	same_new(json_string("plain text with \"quotes\" and \\ and /"));
}

static void test_utf8(void **state)
{
	(void)state;
	static const char *const valid[] = { "\xc2\x80", "\xc3\xa9t\xc3\xa9",
		"\xdf\xbf", "\xe0\xa0\x80", "\xe2\x80\xa8", "\xed\x9f\xbf",
		"\xee\x80\x80", "\xef\xbf\xbf", "\xf0\x90\x80\x80",
		"\xf4\x8f\xbf\xbf", "\xf0\x9f\x98\x80 smile" };
	static const char *const invalid[] = { "\x80", "\xbf", "\xc0\x80",
		"\xc1\xbf", "\xc2", "\xc2\x41", "\xe0\x80\x80", "\xe0\x9f\xbf",
		"\xed\xa0\x80", "\xed\xbf\xbf", "\xef\xbf", "\xf0\x80\x80\x80",
		"\xf0\x8f\xbf\xbf", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80",
		"\xfe", "\xff", "ok\xe2\x82" };
	for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++)
		same_new(json_string(valid[i]));
	for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
		same_new(json_string_nocheck(invalid[i]));
		json_t *o = json_object();
		json_object_set_new_nocheck(o, invalid[i], json_null());
		same_new(o);
	}
}

static void test_numbers(void **state)
{
	(void)state;
	static const double reals[] = { 0.0, -0.0, 0.1, 1.5, 3.0, -2.25, 1e20,
		1e-5, 1.5e300, -4.9e-324, 123456789.125, 1.0 / 3 };
	for (size_t i = 0; i < sizeof(reals) / sizeof(reals[0]); i++)
		same_new(json_real(reals[i]));
	static const json_int_t ints[] = { 0, 1, -1, 42, INT64_MAX, INT64_MIN };
	for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++)
		same_new(json_integer(ints[i]));
	same_new(json_true());
	same_new(json_false());
	same_new(json_null());
}

static void test_objects(void **state)
{
	(void)state;
	same_new(json_object());
	same_new(json_array());
	same_new(json_pack("{s:s, s:{s:s, s:{s:s}, s:i}, s:{s:s}}", "kind",
	    "ConfigMap", "metadata", "name", "cm-1", "labels", "bench", "yes",
	    "resourceVersion", 17, "data", "k", "v"));
	same_new(json_pack("[[], {}, [[[]]], {s:[]}, n, b, f, s]", "a", 1,
	    1.5, "x"));
	/* order is insertion order, after deletes and re-adds too */
	json_t *o = json_object();
	for (int i = 0; i < 50; i++) {
		char k[16];
		snprintf(k, sizeof(k), "k%d", (i * 37) % 50);
		json_object_set_new(o, k, json_integer(i));
	}
	json_object_del(o, "k3");
	json_object_del(o, "k40");
	json_object_set_new(o, "k3", json_string("again"));
	same_new(o);
	/* deeper than the writer goes itself: jansson's text all the same */
	json_t *deep = json_string("bottom");
	for (int i = 0; i < 700; i++)
		deep = i % 2 ? json_pack("[o]", deep) :
			       json_pack("{s:o}", "d", deep);
	same_new(deep);
	/* a loop: NULL from both */
	json_t *a = json_array(), *b = json_array();
	json_array_append(a, b);
	json_array_append(b, a);
	same(a, NULL);
	json_array_clear(b);
	json_decref(a);
	json_decref(b);
	/* no value at all */
	size_t len = 1;
	assert_null(api_http_json(NULL, &len, "\n"));
}

static uint64_t rnd_state = 88172645463325252ull;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

/* Random bytes, mostly printable, sometimes anything at all. */
static json_t *rnd_string(bool key_ok, char *buf, size_t *n)
{
	static const char *const bits[] = { "a", "Z", "0", " ", "\"", "\\",
		"/", "\n", "\t", "\x01", "\x1f", "\x7f", "\xc3\xa9",
		"\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xed\xa0\x80", "\xc0",
		"\xff" };
	size_t len = 0, parts = rnd() % 12;
	bool clean = rnd() % 4 != 0;
	for (size_t i = 0; i < parts; i++) {
		const char *p = bits[rnd() % (clean ? 15 : 18)];
		size_t l = strlen(p);
		memcpy(buf + len, p, l);
		len += l;
	}
	if (rnd() % 20 == 0)
		buf[len++] = '\0';
	buf[len] = '\0';
	*n = len;
	return key_ok ? NULL : json_stringn_nocheck(buf, len);
}

static json_t *rnd_tree(int depth)
{
	char buf[128];
	size_t n;
	switch (depth > 5 ? 2 + rnd() % 5 : rnd() % 7) {
	case 0: {
		json_t *o = json_object();
		for (int i = (int)(rnd() % 6); i > 0; i--) {
			rnd_string(true, buf, &n);
			json_object_setn_new_nocheck(o, buf, n,
			    rnd_tree(depth + 1));
		}
		return o;
	}
	case 1: {
		json_t *a = json_array();
		for (int i = (int)(rnd() % 6); i > 0; i--)
			json_array_append_new(a, rnd_tree(depth + 1));
		return a;
	}
	case 2:
	case 3:
		return rnd_string(false, buf, &n);
	case 4:
		return json_integer((json_int_t)rnd());
	case 5:
		return json_real((double)(int64_t)rnd() / (double)(1 + rnd() % 1000));
	default:
		return rnd() % 3 == 0 ? json_null() :
		    rnd() % 2	      ? json_true() :
					json_false();
	}
}

static void test_random(void **state)
{
	(void)state;
	for (int i = 0; i < 3000; i++)
		same_new(rnd_tree(0));
}

/* --- a keep-alive connection's token --------------------------------------------- */

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
	snprintf(yaml, sizeof(yaml),
	    "host: {log_level: warn}\n"
	    "bus:\n"
	    "  listen: []\n"
	    "plugins:\n"
	    "  - {name: store, use: store-lmdb, config: {sync: false}}\n"
	    "  - name: apiserver\n"
	    "    use: apiserver\n"
	    "    config: {plain_http: true, listen: \"127.0.0.1:%d\"}\n",
	    port);
	struct kbt_host *h = kbt_host_start(yaml, err, sizeof(err));
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ascii),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_objects),
		cmocka_unit_test(test_random),
		cmocka_unit_test(test_connection_token),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
